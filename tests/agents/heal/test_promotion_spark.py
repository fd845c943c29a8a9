"""Two environments on real Spark: the tutorial's failure in PRD (the heal lab's local CDE) healed by a
fix proven in a second local CDE, DEV, which has the job, its data and its last good output but not its
failure, then promoted. The logic around it (approval, a fix failing in DEV, restarts) is tested on
played CDEs in test_promotion.py; this is the path as a user's two clusters run it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agents.config import Settings
from agents.healer import Healer
from agents.promote import MEASURE_SUFFIX
from cde_client import CdeClient
from cde_local import LocalCde, LocalCdeConfig
from sample_jobs import load_scenario
from tests.fixtures.heal import PASSWORD, TUTORIAL_JOB, USER

TABLE = "default.dynamic_incremental_target_table_large_overlap"


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CdeClient]:
    cde = LocalCde(LocalCdeConfig(data_dir=tmp_path_factory.mktemp("dev") / "cde", users={USER: PASSWORD})).start()
    client = CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD)
    try:
        loaded = load_scenario(client, "tutorial", fail=False)
        assert loaded.app_run_id is None and loaded.baseline_run_id is not None
        yield client
    finally:
        client.close()
        cde.stop()


def test_a_prd_failure_is_healed_by_a_fix_proven_in_dev_and_promoted(heal_lab, dev, tmp_path):
    failed = heal_lab.fresh_failure("tutorial")
    prd = heal_lab.client
    original = prd.get_job(TUTORIAL_JOB).raw
    values = {"CDE_ENVIRONMENTS": "dev,prd", "CDE_DEV_JOBS_API_URL": dev.jobs_api_url,
              "CDE_PRD_JOBS_API_URL": heal_lab.cde.jobs_api_url, "CDE_PRD_VERIFY_IN": "dev",
              "WORKLOAD_USER": USER, "WORKLOAD_PASSWORD": PASSWORD, "HEALER_DATA_DIR": str(tmp_path),
              "HEAL_PROMOTION": "auto", "HEAL_RUN_POLL_S": "0.5"}
    healer = Healer(Settings.from_env(values, dotenv=None))
    try:
        record = healer.heal(TUTORIAL_JOB, failed)
    finally:
        healer.close()
    assert record.state == "healed", record.reason
    attempt = record.attempts[-1]
    fix = attempt.fix_job
    # DEV: sandbox, then the fix's own run, each compared with DEV's last good output, DEV's check passed
    assert attempt.preflight.environment == "dev" and attempt.comparison_passed
    assert [r.id for r in dev.list_runs(filters=[f"job[eq]{fix}"])] == [attempt.proof.fix_run_id]
    assert attempt.proof.fix_run_status == "succeeded" and attempt.proof.check_passed
    assert {r.output for r in attempt.proof.production_comparison if r.metric == "rows"} >= {TABLE}
    # PRD: its outputs measured before the promoted run (the launcher in stats mode), then the run, compared
    # with them, and PRD's check
    promotion = attempt.promotion
    assert promotion.baseline_job == fix + MEASURE_SUFFIX and promotion.baseline.mode == "stats"
    assert TABLE in {o.name for o in promotion.baseline.outputs if o.stats is not None}
    assert [r.id for r in prd.list_runs(filters=[f"job[eq]{fix}"])] == [attempt.fix_run_id]
    assert attempt.fix_run_status == "succeeded" and attempt.check_passed
    assert attempt.production_comparison and all(r.ok for r in attempt.production_comparison)
    assert not [j for j in prd.list_jobs() if j.name.startswith(fix) and j.name.endswith("-preflight")]
    assert prd.get_job(TUTORIAL_JOB).raw == original  # the original job is never modified

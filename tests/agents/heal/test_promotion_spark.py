"""Promotion into a CDE that runs Spark: the tutorial's failure in PRD (the heal lab's local CDE, real
Spark) healed by a fix proven in DEV and promoted. DEV is a played local CDE (its runs ended by the
played cluster, as in test_promotion.py, which tests the logic on two of them), empty at first: the
healer copies the job, its check and their resources (the python environment built there) to it.
What runs for real is what promotion adds in PRD: the measuring job's `stats` run of PRD's outputs
before the promoted run, that run, its measurement and PRD's check. The whole path on real Spark in
both CDEs is `python -m app demo --environments dev,prd` (its figures in the README)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agents.config import Settings
from agents.healer import Healer
from agents.promote import MEASURE_SUFFIX
from tests.fixtures.heal import PASSWORD, TUTORIAL_JOB, USER, PlayedLab, played

TABLE = "default.dynamic_incremental_target_table_large_overlap"


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlayedLab]:
    with played(tmp_path_factory.mktemp("dev")) as lab:
        yield lab


def test_a_prd_failure_is_healed_by_a_fix_proven_in_dev_and_promoted(heal_lab, dev, tmp_path):
    failed = heal_lab.fresh_failure("tutorial")
    prd = heal_lab.client
    original = prd.get_job(TUTORIAL_JOB).raw
    values = {"CDE_ENVIRONMENTS": "dev,prd", "CDE_DEV_JOBS_API_URL": dev.cde.jobs_api_url,
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
    # DEV: the job, its check and their resources copied there; sandbox, then the fix's own run, DEV's check
    assert {f"{what} copied from prd to dev" for what in (f"job {TUTORIAL_JOB}", f"job {TUTORIAL_JOB}-check",
                                                         "resource failing-pipeline", "resource datagen-env")} <= set(
        record.staged)
    assert dev.client.get_resource("datagen-env").status == "ready"
    assert attempt.preflight.environment == "dev" and attempt.comparison_passed
    assert dev.runs_of(fix) == [attempt.proof.fix_run_id]
    assert attempt.proof.fix_run_status == "succeeded" and attempt.proof.check_passed
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

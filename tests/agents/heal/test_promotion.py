"""Two environments: a failure in PRD healed by a fix proven in DEV and promoted (agents/promote.py).

Two played labs (tests/fixtures/heal.py), each its own manual-mode local CDE: PRD has the tutorial's
jobs and a failed run with a real run's driver log; DEV starts with nothing of the job, so the healer
copies it there. Every run the healer starts is ended by the lab of the CDE it was started on. What
is tested is where each step happens and what reaches PRD; the real Spark path is the two-environment
demo's test (tests/app/test_demo_environments.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from agents.config import Settings
from agents.errors import EndIncident
from agents.fixjobs import ensure_resource
from agents.healer import Healer
from agents.promote import MEASURE_SUFFIX
from agents.record import RecordStore
from agents.stage import CRASH_EXIT_CODE
from app import views
from app.worker import environment_label
from tests.fixtures.heal import PASSWORD, TUTORIAL_JOB, USER, PlayedLab, played

JOB = TUTORIAL_JOB
FIX_RUNS = re.escape(JOB) + r"-fix-\d+"  # the played labs' pattern for fix runs (tests/fixtures/heal.py)


@pytest.fixture(scope="module")
def envs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PlayedLab, PlayedLab]]:
    with played(tmp_path_factory.mktemp("dev")) as dev, played(tmp_path_factory.mktemp("prd")) as prd:
        yield dev, prd


def variables(envs: tuple[PlayedLab, PlayedLab], data_dir: Path, **extra: str) -> dict[str, str]:
    """What a user sets for PRD's fixes proven in DEV."""
    dev, prd = envs
    return {"CDE_ENVIRONMENTS": "dev,prd", "CDE_DEV_JOBS_API_URL": dev.cde.jobs_api_url,
            "CDE_PRD_JOBS_API_URL": prd.cde.jobs_api_url, "CDE_PRD_VERIFY_IN": "dev",
            "WORKLOAD_USER": USER, "WORKLOAD_PASSWORD": PASSWORD, "HEALER_DATA_DIR": str(data_dir),
            "HEAL_RUN_POLL_S": "0.25", "HEAL_RUN_TIMEOUT_S": "600", **extra}


def healer(envs: tuple[PlayedLab, PlayedLab], data_dir: Path, **extra: str) -> Healer:
    return Healer(Settings.from_env(variables(envs, data_dir, **extra), dotenv=None))


def test_auto_promotion_heals_prd_with_a_fix_proven_in_dev(envs, tmp_path):
    dev, prd = envs
    failed = prd.fresh_failure("tutorial")
    prd_runs_before = {r.id for r in prd.client.list_runs()}
    h = healer(envs, tmp_path, HEAL_PROMOTION="auto")
    try:
        record = h.heal(JOB, failed)
    finally:
        h.close()
    assert record.state == "healed", record.reason
    assert (record.environment, record.proven_in) == ("prd", "dev")
    attempt = record.attempts[-1]
    fix = attempt.fix_job
    # DEV: the job and its check copied there, the fix pre-flighted, deployed and run
    assert any(f"job {JOB} copied from prd to dev" == s for s in record.staged)
    assert not (dev.client.get_job(JOB).raw.get("schedule") or {}).get("enabled")
    assert attempt.preflight.environment == "dev" and attempt.preflight.run_id in dev.runs_of(attempt.preflight.job)
    assert attempt.proof.environment == "dev" and dev.runs_of(fix) == [attempt.proof.fix_run_id]
    assert attempt.proof.check_passed and all(r.ok for r in attempt.proof.production_comparison)
    # PRD: no sandbox run of the application, the outputs measured before, then one run of the promoted fix
    assert prd.preflight_jobs(JOB) == []
    assert attempt.promotion.decided_by == "auto" and attempt.promotion.baseline is not None
    assert attempt.promotion.baseline_job == fix + MEASURE_SUFFIX
    assert prd.runs_of(fix) == [attempt.fix_run_id]
    assert attempt.check_passed and all(r.ok for r in attempt.production_comparison)
    assert "proven in dev" in record.reason and "promoted to prd (auto)" in record.reason
    # the healer's runs in PRD are the record's, never new incidents; DEV's run ids are not PRD's
    new_prd_runs = {r.id for r in prd.client.list_runs()} - prd_runs_before
    assert new_prd_runs == set(record.runs_started)
    # the dashboard says where each step happened
    assert "prd, fixes proven in dev" in views.incident_heading(record)
    timeline = views.timeline_html(record, datetime.now(timezone.utc))
    for label in ("preflight #1 · dev", "verify #1 · dev", "promote #1 · dev → prd", "verify #1 · prd"):
        assert label in timeline, label
    table = views.comparison_html(record)
    assert "pre-flight (dev)" in table and "run in dev" in table and "production (prd)" in table
    story = views.reasoning_markdown(record)
    assert f"Fix job `{fix}` in **dev** run {attempt.proof.fix_run_id}: succeeded" in story
    assert "Promotion **dev → prd** by auto" in story and f"Fix job `{fix}` in **prd** run {attempt.fix_run_id}" in story
    assert views.fixed_card(record).title == "Fixed job in prd (attempt 1)"
    assert environment_label(h.settings) == "prd · fixes proven in dev · promotion auto"


def test_approve_mode_waits_before_prd_and_a_rejection_leaves_prd_untouched(envs, tmp_path):
    dev, prd = envs
    failed = prd.fresh_failure("tutorial")
    prd_fix_jobs = prd.fix_jobs(JOB)
    h = healer(envs, tmp_path, HEAL_PROMOTION="approve")
    try:
        record = h.heal(JOB, failed)
        assert record.state == "awaiting_approval" and "promote it to prd?" in record.reason
        fix = record.attempts[-1].fix_job
        assert dev.runs_of(fix) and prd.fix_jobs(JOB) == prd_fix_jobs  # proven in DEV, nothing in PRD yet
        card = views.fixed_card(record)
        assert card.title == "Fixed job in dev (attempt 1)" and card.run_id == str(dev.runs_of(fix)[0])
        assert views.awaiting_approval(record) == record.incident_id  # the dashboard's Approve/Reject
        record = h.resume(record.incident_id, {"approved": False, "by": "carol", "reason": "not this week"})
    finally:
        h.close()
    assert record.state == "rejected" and "carol" in record.reason and "nothing was deployed to prd" in record.reason
    assert prd.fix_jobs(JOB) == prd_fix_jobs


def test_approve_mode_promotes_after_approval_across_a_restart(envs, tmp_path):
    dev, prd = envs
    failed = prd.fresh_failure("tutorial")
    h = healer(envs, tmp_path, HEAL_PROMOTION="approve")
    try:
        record = h.heal(JOB, failed)
        assert record.state == "awaiting_approval"
    finally:
        h.close()
    restarted = healer(envs, tmp_path, HEAL_PROMOTION="approve")
    try:
        record = restarted.resume(record.incident_id, {"approved": True, "by": "dana"})
    finally:
        restarted.close()
    assert record.state == "healed", record.reason
    attempt = record.attempts[-1]
    assert attempt.promotion.decided_by == "dana" and prd.runs_of(attempt.fix_job) == [attempt.fix_run_id]


def test_a_fix_failing_in_dev_never_reaches_prd(envs, tmp_path):
    dev, prd = envs
    failed = prd.fresh_failure("tutorial")
    prd_fix_jobs = prd.fix_jobs(JOB)
    dev.play(FIX_RUNS, "failed", "Traceback (most recent call last):\nRuntimeError: DEV's run of the fix failed\n")
    try:
        h = healer(envs, tmp_path, HEAL_PROMOTION="auto", HEAL_MAX_ATTEMPTS="2")
        try:
            record = h.heal(JOB, failed)
        finally:
            h.close()
    finally:
        dev.play(FIX_RUNS, "succeeded", "the fix's run, played\n")
    assert record.state == "escalated", record.reason
    assert record.attempts[0].verdict == "fix run in dev failed"
    assert all(a.promotion is None and a.fix_run_id is None for a in record.attempts)
    assert prd.fix_jobs(JOB) == prd_fix_jobs
    assert not [j for j in prd.client.list_jobs() if j.name.startswith(record.attempts[0].fix_job)]
    # the second attempt read the failed DEV run's log (not a PRD run of the same id): no rule knows it
    assert "no deterministic rule matches" in record.reason
    assert "DEV's run of the fix failed" in (record.attempts[1].evidence.distilled if record.attempts[1].evidence else "")


def test_killed_around_the_promotion_then_restarted_promotes_once(envs, tmp_path):
    """`python -m app heal` killed (os._exit) after DEV's verify, after PRD's measurement started, after
    the promotion and after PRD's fix job was made, each time resumed by the next process: one fix run
    in each environment, one measurement before the promoted run."""
    dev, prd = envs
    failed = prd.fresh_failure("tutorial")
    env = variables(envs, tmp_path / "healer", HEAL_PROMOTION="auto")
    args = ["heal", "--job", JOB, "--run", str(failed)]
    for point in ("verify", "promote.measure_started", "promote", "redeploy.job_created"):
        done = prd.cli(args, {**env, "HEALER_CRASH_AFTER": point})
        assert done.returncode == CRASH_EXIT_CODE, f"{point}: {done.stdout}\n{done.stderr}"
    done = prd.cli(args, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "promoted from dev to prd (auto)" in done.stdout and "fix job sql-select-fail-fix-" in done.stdout
    record = RecordStore(tmp_path / "healer").load(f"{JOB}--{failed}")
    assert record.state == "healed" and len(record.attempts) == 1
    attempt = record.attempts[0]
    assert dev.runs_of(attempt.fix_job) == [attempt.proof.fix_run_id]
    assert prd.runs_of(attempt.fix_job) == [attempt.fix_run_id]
    measured = prd.runs_of(attempt.promotion.baseline_job)
    assert sorted(measured) == sorted([attempt.promotion.baseline_run_id, attempt.production_stats_run_id])


def test_one_healer_per_watched_environment():
    from agents.errors import ConfigError

    values = {"CDE_ENVIRONMENTS": "dev,prd", "CDE_DEV_JOBS_API_URL": "http://dev.example/api/v1",
              "CDE_PRD_JOBS_API_URL": "http://prd.example/api/v1", "CDE_TOKEN": "t-1"}
    with pytest.raises(ConfigError, match="a healer watches one environment, not 2"):
        Settings.from_env(values, dotenv=None)
    settings = Settings.from_env({**values, "CDE_PRD_VERIFY_IN": "dev"}, dotenv=None)
    assert (settings.home.name, settings.proving.name, settings.jobs_api_url) == ("prd", "dev", "http://prd.example/api/v1")


def test_a_python_environment_that_cannot_be_built_where_fixes_are_proven_ends_the_incident(envs):
    """Staging copies a python environment; its build failing there is a reason for a person, not a
    failure to retry every cycle."""
    dev, prd = envs
    prd.client.create_resource("broken-env", type="python-env", python_version="python3")
    prd.client.upload_file("broken-env", "requirements.txt", b"pyspark @ file:///nonexistent/pyspark.whl\n")
    with pytest.raises(EndIncident, match="'broken-env' copied for the fix could not be built there"):
        ensure_resource(prd.client, dev.client, "broken-env", timeout_s=120)
    assert dev.client.get_resource("broken-env").type == "python-env"  # made, its build failed

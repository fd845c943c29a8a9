"""A healer killed at every stage and restarted creates exactly one fix job and one fix run (and one
pre-flight run, one sandboxed check run, one measurement run).

Each `python -m app heal` below is a real process that dies (os._exit, as a kill would leave it)
right after the named point; the next one resumes the incident from its checkpoint. The CDE is the
played lab's (tests/fixtures/heal.py): the tutorial's real failure log, every run the healer starts
ended by a played cluster, so that the test is about the checkpoints, not about Spark.
"""

from __future__ import annotations

import json

from agents.stage import CRASH_EXIT_CODE

JOB = "sql-select-fail"
CRASH_POINTS = ["monitor", "log_fetch", "diagnose", "patch", "preflight.name_chosen", "preflight.job_created",
                "preflight", "compare.check_started", "compare", "approval", "redeploy.job_created", "redeploy",
                "verify.stats_started", "verify.check_started"]


def test_killed_at_each_stage_then_restarted_heals_once(played_lab, tmp_path):
    run_id = played_lab.fresh_failure("tutorial")
    fix_jobs_before = set(played_lab.fix_jobs(JOB))
    preflight_jobs_before = set(played_lab.preflight_jobs(JOB))
    check_runs_before = len(played_lab.runs_of(f"{JOB}-check"))
    env = played_lab.env(tmp_path / "healer")
    args = ["heal", "--job", JOB, "--run", str(run_id)]

    for point in CRASH_POINTS:
        done = played_lab.cli(args, {**env, "HEALER_CRASH_AFTER": point})
        assert done.returncode == CRASH_EXIT_CODE, f"{point}: {done.stdout}\n{done.stderr}"
    done = played_lab.cli(args, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "healed" in done.stdout and "data comparison passed" in done.stdout

    record = json.loads((tmp_path / "healer" / "incidents" / f"{JOB}--{run_id}.json").read_text())
    assert record["state"] == "healed"
    assert len(record["attempts"]) == 1
    attempt = record["attempts"][0]
    new_fix_jobs = set(played_lab.fix_jobs(JOB)) - fix_jobs_before
    assert new_fix_jobs == {attempt["fix_job"]}
    assert played_lab.runs_of(attempt["fix_job"]) == [attempt["fix_run_id"]]
    # one pre-flight, one user check on its sandbox, one measurement of the production outputs
    preflight = attempt["preflight"]
    assert sorted(played_lab.runs_of(preflight["job"])) == [preflight["run_id"], attempt["production_stats_run_id"]]
    assert played_lab.runs_of(preflight["check_job"]) == [preflight["check_run_id"]]
    assert set(played_lab.preflight_jobs(JOB)) - preflight_jobs_before == {preflight["job"], preflight["check_job"]}
    # the patch stage ran twice (killed after it), yet its guard verdicts are recorded once
    rules = [v["rule"] for v in attempt["guard"]]
    assert rules and len(rules) == len(set(rules)), rules
    assert len(played_lab.runs_of(f"{JOB}-check")) == check_runs_before + 1
    # every restart is in the record: each crashed stage ran again, none was skipped
    stages = [s["stage"] for s in record["stages"]]
    for stage in ("monitor", "log_fetch", "diagnose", "patch", "preflight", "compare", "approval", "redeploy",
                  "verify"):
        assert stage in stages

    # and once healed, another run of the CLI does nothing but report it
    again = played_lab.cli(args, env)
    assert again.returncode == 0 and set(played_lab.fix_jobs(JOB)) - fix_jobs_before == new_fix_jobs

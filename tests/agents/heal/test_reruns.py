"""Transient failures: re-run unchanged, with a growing pause between re-runs, up to HEAL_MAX_RERUNS.

A failed run on a manual-mode local CDE whose log shows a lost executor; every re-run the healer
starts fails the same way, in its sandbox pre-flight already (the sandbox player), so the healer re-runs,
waits longer before each later re-run, and escalates once the re-runs are used up.
"""

from __future__ import annotations

from agents.config import Settings
from agents.healer import Healer
from agents.preflight import MAX_BACKOFF_S, rerun_backoff_s
from agents.record import Attempt, FailedRun, IncidentRecord, Patch
from cde_client import CdeClient
from tests.fixtures.cde_local import PASSWORD, USER, deploy_failed_run, unique

APP = "nightly_rollup.py"
CODE = "from pyspark.sql import SparkSession\n\nspark = SparkSession.builder.getOrCreate()\nspark.range(10).count()\n"
LOST = ("26/11/30 02:00:01 ERROR TaskSchedulerImpl: Lost executor 3 on 10.0.0.7: Container marked as failed\n"
        "org.apache.spark.SparkException: Job aborted due to stage failure: Task 2 in stage 4.0 failed 4 times, "
        "most recent failure: Lost task 2.3 in stage 4.0 (TID 41) (10.0.0.7 executor 3): ExecutorLostFailure "
        "(executor 3 exited caused by one of the running tasks) Reason: Container marked as failed\n")


def _record(reruns_before: int) -> IncidentRecord:
    attempts = [Attempt(number=n, patch=Patch(kind="rerun")) for n in range(1, reruns_before + 1)]
    attempts.append(Attempt(number=reruns_before + 1, patch=Patch(kind="rerun")))
    return IncidentRecord(incident_id="j--1", job="j", run_id=1, attempts=attempts,
                          failed_run=FailedRun(id=1, job="j", status="failed"))


def test_the_first_rerun_starts_at_once_and_each_later_one_waits_twice_as_long() -> None:
    assert [rerun_backoff_s(_record(k), k + 1, 30.0) for k in range(5)] == [0.0, 30.0, 60.0, 120.0, 240.0]
    assert rerun_backoff_s(_record(12), 13, 30.0) == MAX_BACKOFF_S


def test_reruns_stop_at_the_limit_and_the_incident_escalates(local_cde_manual, sandbox_player, tmp_path) -> None:
    cde = local_cde_manual
    client = CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD)
    job = unique("nightly-rollup")
    run_id = deploy_failed_run(cde, client, job, {APP: CODE}, LOST, [])
    sandbox_player.script(job, status="failed", log=LOST)  # the cluster: executors keep getting lost

    env = {"JOBS_API_URL": cde.jobs_api_url, "WORKLOAD_USER": USER, "WORKLOAD_PASSWORD": PASSWORD,
           "HEALER_DATA_DIR": str(tmp_path), "JOB_NAME": job, "HEAL_RUN_POLL_S": "0.1", "HEAL_RUN_TIMEOUT_S": "30",
           "HEAL_MAX_ATTEMPTS": "3", "HEAL_MAX_RERUNS": "2", "HEAL_RERUN_BACKOFF_S": "0.5"}
    healer = Healer(Settings.from_env(env, dotenv=None))
    try:
        record = healer.heal(job, run_id)
    finally:
        healer.close()
        client.close()

    assert record.state == "escalated"
    assert "already re-run 2 times unchanged (HEAL_MAX_RERUNS=2)" in record.reason
    reruns = [a for a in record.attempts if a.patch and a.patch.kind == "rerun"]
    # each re-run failed in its sandbox first: nothing reached production
    assert [a.number for a in reruns] == [1, 2] and all(a.preflight.status == "failed" for a in reruns)
    assert all(a.fix_run_id is None for a in reruns)
    assert record.attempts[-1].number == 3 and record.attempts[-1].patch is None
    # the second re-run started only after the pause: its pre-flight stage lasted at least the backoff
    preflights = [s for s in record.stages if s.stage == "preflight"]
    assert len(preflights) == 2 and preflights[1].duration_s >= 0.5

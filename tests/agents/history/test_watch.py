"""The watcher fills the run history, against a local CDE in manual run mode (runs ended by hand, no
Spark): every run it lists (succeeded or failed, in its one list call), the incidents its failures
open and the actions they took; the healer's own jobs are marked as such and never incidents; and
`python -m app watch`'s history is still there after a restart, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agents.config import Settings
from agents.healer import Healer
from agents.history import RunHistory, history_url
from agents.record import incident_id
from cde_client import CdeClient
from tests.fixtures.cde_local import poll
from tests.fixtures.counting import CountingFront
from tests.paths import REPO

USER, PASSWORD = "history-user", "history-password-1357"
JOB, OTHER = "nightly-history", "not-watched"
LIST_PATH = "/dex/api/v1/job-runs"
VC = "127.0.0.1"  # the history's key of the local CDE: the host of its Jobs API URL
WATCH_WAIT_S = 120.0


@pytest.fixture
def cde(local_cde_factory):
    cde = local_cde_factory(run_mode="manual", users={USER: PASSWORD})
    client = CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD)
    client.create_resource("history-app")
    client.upload_file("history-app", "app.py", b"import sys\nsys.exit(3)\n")
    for name in (JOB, OTHER, f"{JOB}-fix-1"):
        client.create_job({"name": name, "type": "spark", "mounts": [{"resourceName": "history-app"}],
                           "spark": {"file": "app.py", "driverMemory": "2g", "executorMemory": "3g",
                                     "numExecutors": 2}})
    client.close()
    return cde


def run(cde, status: str, job: str = JOB) -> int:
    """A run of `job` ended by hand (`failed` with a log no rule knows: escalated at once, no model)."""
    run_id = cde.backend.run_job(job, {}, USER)
    if status == "failed":
        cde.backend.write_run_log(run_id, "driver/stderr", "boom: nothing a rule knows\n")
    cde.backend.set_run_status(run_id, status)
    return run_id


def env(jobs_api_url: str, data_dir: Path, **more: str) -> dict[str, str]:
    return {"JOBS_API_URL": jobs_api_url, "WORKLOAD_USER": USER, "WORKLOAD_PASSWORD": PASSWORD,
            "HEALER_DATA_DIR": str(data_dir), **more}


def test_a_cycle_records_every_run_it_lists_in_one_call(cde, tmp_path):
    succeeded = [run(cde, "succeeded") for _ in range(2)]
    failed = [run(cde, "failed") for _ in range(2)]
    killed = run(cde, "killed")
    fix_run = run(cde, "failed", f"{JOB}-fix-1")  # the healer's job (by its name): history, never an incident
    still_running = cde.backend.run_job(JOB, {}, USER)
    cde.backend.set_run_status(still_running, "running")
    with CountingFront(cde) as front:
        healer = Healer(Settings.from_env(env(front.jobs_api_url, tmp_path), dotenv=None))  # JOB_NAME unset: all jobs
        try:
            front.clear()
            healer.cycle()
            lists = [r for r in front.api_requests() if r.method == "GET" and r.path == LIST_PATH]
            assert len(lists) == 1 and "status" not in lists[0].query  # one call, every status
            history = healer.history
            runs = {r.run_id: r for r in history.runs()}
        finally:
            healer.close()

    assert set(runs) == {*succeeded, *failed, killed, fix_run}  # not the running one: it has not ended
    assert {n: runs[n].status for n in runs} == {
        **dict.fromkeys(succeeded, "succeeded"), **dict.fromkeys(failed, "failed"), killed: "killed",
        fix_run: "failed"}
    assert runs[succeeded[0]].resources == {"driverMemory": "2g", "executorMemory": "3g", "driverCores": 1,
                                            "executorCores": 1, "numExecutors": 2}
    assert [n for n in runs if runs[n].healer_run] == [fix_run]
    assert runs[fix_run].incident_id is None
    for run_id in failed:
        key = incident_id(JOB, run_id)
        assert (runs[run_id].incident_id, runs[run_id].outcome) == (key, "escalated")
        incident = history.incident(key)
        assert incident is not None and incident.state == "escalated" and incident.ended_at is not None
        assert incident.failed_at == runs[run_id].ended
        assert [(a.attempt, a.action, a.policy) for a in history.actions(key)] == [(1, "escalate", "static")]
    assert runs[killed].incident_id is None and runs[succeeded[1]].incident_id is None
    seen = history.job_history(JOB)
    assert (seen.recent_failures, seen.last_worked, seen.last_escalated) == (2, None, True)
    assert len(seen.runs) == 5  # the job's own finished runs: not the fix job's


def _watch(environment: dict[str, str], log: Path) -> subprocess.Popen:
    """`python -m app watch` as a user runs it (this process's healer settings left out)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "JOBS_API", "WORKLOAD_", "HEAL", "CDE_"))}
    full.update(environment, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "app", "watch"], cwd=log.parent, env=full,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen, log: Path) -> None:
    process.send_signal(signal.SIGTERM)  # the watcher's clean stop
    try:
        assert process.wait(60) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def _ended(url: str, incidents: list[str]):
    """Reads the history (from outside the watcher) until every one of `incidents` has ended."""
    def read():
        with RunHistory(url, vc=VC) as history:
            return [history.incident(key) for key in incidents], history.runs()

    return poll(read, lambda found: all(row is not None and row.ended_at for row in found[0]), WATCH_WAIT_S,
                lambda found: f"incidents not all ended in the history: {found[0]}")


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_watch_command_fills_the_history_and_it_survives_a_restart(request, cde, tmp_path, database):
    data_dir = tmp_path / "healer"
    more = {"JOB_NAME": JOB, "HEAL_POLL_INTERVAL_S": "0.5"}
    if database == "postgresql":
        more["HEAL_HISTORY_URL"] = request.getfixturevalue("postgres_url")
    environment = env(cde.jobs_api_url, data_dir, **more)
    url = history_url(Settings.from_env(environment, dotenv=None))

    first = {"succeeded": [run(cde, "succeeded"), run(cde, "succeeded")], "failed": [run(cde, "failed"), run(cde, "failed")]}
    unwatched = run(cde, "succeeded", OTHER)
    log = tmp_path / "watch-1.log"
    process = _watch(environment, log)
    try:
        _, runs = _ended(url, [incident_id(JOB, n) for n in first["failed"]])
    finally:
        _stop(process, log)
    assert {r.run_id: r.status for r in runs} == {**dict.fromkeys(first["succeeded"], "succeeded"),
                                                  **dict.fromkeys(first["failed"], "failed")}
    assert unwatched not in {r.run_id for r in runs}  # JOB_NAME: the one list call asks for the watched job only
    said = log.read_text()
    if database == "sqlite":
        assert url == f"sqlite:///{data_dir.resolve() / 'history.sqlite3'}"
        assert (data_dir / "history.sqlite3").stat().st_mode & 0o777 == 0o600
        assert f"run history: {url}\n" in said
    else:
        assert not (data_dir / "history.sqlite3").exists()
        password = url.split("://", 1)[1].split("@")[0].split(":", 1)[1]
        assert password not in said and "run history: postgresql+psycopg://healer:***@127.0.0.1:" in said

    second = {"succeeded": [run(cde, "succeeded")], "failed": [run(cde, "failed")]}
    log = tmp_path / "watch-2.log"
    process = _watch(environment, log)  # restarted: the same history, opened again (no migration)
    try:
        _, runs = _ended(url, [incident_id(JOB, n) for n in second["failed"]])
    finally:
        _stop(process, log)
    every = {status: first[status] + second[status] for status in first}
    assert {r.run_id: r.status for r in runs} == {**dict.fromkeys(every["succeeded"], "succeeded"),
                                                  **dict.fromkeys(every["failed"], "failed")}
    with RunHistory(url, vc=VC) as history:
        assert history.version_found == history.version
        for run_id in every["failed"]:
            assert history.incident(incident_id(JOB, run_id)).state == "escalated"
            assert [a.action for a in history.actions(incident_id(JOB, run_id))] == ["escalate"]
        assert history.job_history(JOB).recent_failures == 3
        assert history.totals(1).escalated == 3


def test_the_dashboards_service_reads_the_metrics_the_healer_writes(cde, tmp_path):
    from app.server import start_stack

    settings = Settings.from_env(env(cde.jobs_api_url, tmp_path, JOB_NAME=JOB), dotenv=None)
    healer, worker, service = start_stack(settings, watch=False)  # commands only: no monitor cycles
    try:
        assert service.history is healer.history
        assert [d.closed for d in service.metrics(7)] == [0] * 7
        failed = run(cde, "failed")
        worker.heal_now(JOB, failed)
        assert worker.drain(WATCH_WAIT_S)
        today = service.metrics(7)[-1]
        assert (today.closed, today.escalated, today.healed, today.auto_resolution) == (1, 1, 0, 0.0)
        assert service.totals(30).escalated == 1
    finally:
        worker.stop()
        healer.close()

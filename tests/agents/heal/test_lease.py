"""Two healers on one incident, and what the healer leaves on disk, against a local CDE in manual run
mode (no Spark: the test fails the app's run by hand, with a real Spark log, and ends the fix run).

- One incident, one healer at a time: a second `Healer` (or process) on it is told `IncidentBusy` and
  leaves it alone; the stages run once, in order, and one fix job is made.
- The data directory is the healer's user's alone (0700 directories, 0600 files), and neither the
  checkpoints nor the records hold the healer's secrets, even when the job carries one.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest

from agents.config import Settings
from agents.errors import HealerError
from agents.healer import Healer
from cde_client import CdeClient
from tests.fixtures.agents import load_spark_log
from tests.fixtures.sandbox_runs import SandboxPlayer

USER, PASSWORD = "lease-user", "lease-password-4321"
JOB = "lease-app"
STAGES = ["monitor", "log_fetch", "diagnose", "patch", "preflight", "compare", "approval", "redeploy", "verify"]
WAIT_S = 60.0


@pytest.fixture
def lab(local_cde_factory):
    cde = local_cde_factory(run_mode="manual", users={USER: PASSWORD})
    client = CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD)
    try:
        with SandboxPlayer(cde):  # pre-flights and measurements pass; the fix run is this test's to end
            yield cde, client
    finally:
        client.close()


def failed_run(cde, client: CdeClient) -> int:
    """A run of JOB that failed with the tutorial's Spark error; the job hands the workload password
    to its application, as jobs that connect elsewhere do."""
    log = load_spark_log("unresolved_column")
    client.create_resource(JOB)
    client.upload_file(JOB, log.app_file_name, log.code.encode())
    client.create_job({"name": JOB, "type": "spark", "mounts": [{"resourceName": JOB}],
                       "spark": {"file": log.app_file_name, "args": ["--password", PASSWORD],
                                 "conf": {"spark.lease.secret": PASSWORD}}})
    run_id = client.run_job(JOB)
    cde.backend.write_run_log(run_id, "driver/stdout", log.stdout)
    cde.backend.write_run_log(run_id, "driver/stderr", log.stderr)
    cde.backend.set_run_status(run_id, "failed")
    return run_id


def make_healer(cde, data_dir: Path) -> Healer:
    return Healer(Settings.from_env({
        "JOBS_API_URL": cde.jobs_api_url, "WORKLOAD_USER": USER, "WORKLOAD_PASSWORD": PASSWORD,
        "HEALER_DATA_DIR": str(data_dir), "HEAL_RUN_POLL_S": "0.1", "HEAL_RUN_TIMEOUT_S": "120",
    }, dotenv=None))


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {WAIT_S:g} s")
        time.sleep(0.05)


def in_thread(action) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["record"] = action()
        except Exception as exc:  # handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_second_healer_leaves_the_incident_alone(lab, tmp_path):
    cde, client = lab
    run_id = failed_run(cde, client)
    first, second, watcher = (make_healer(cde, tmp_path) for _ in range(3))
    incident = f"{JOB}--{run_id}"
    try:
        healing, healed = in_thread(lambda: first.heal(JOB, run_id))
        # The first healer is now following its fix run (which only this test can end).
        wait_for(lambda: (r := first.records.load(incident)) is not None and r.state == "verifying",
                 "the first healer reaching verify")
        fix_job = first.records.load(incident).attempts[0].fix_job

        meddling, meddled = in_thread(lambda: second.heal(JOB, run_id))  # `python -m app heal`
        watching, watched = in_thread(watcher.cycle)  # a monitor cycle (`watch`, the dashboard)
        for thread in (meddling, watching):
            thread.join(10)  # they give up at once; without a lease they follow the fix run too

        [fix_run] = client.list_runs(filters=[f"job[eq]{fix_job}"])
        cde.backend.set_run_status(fix_run.id, "succeeded")
        for thread in (healing, meddling, watching):
            thread.join(WAIT_S)
    finally:
        for healer in (first, second, watcher):
            healer.close()

    assert "error" not in healed, healed.get("error")
    record = json.loads((tmp_path / "incidents" / f"{incident}.json").read_text())
    assert [s["stage"] for s in record["stages"]] == STAGES  # each once, in order
    assert all(s["ended"] for s in record["stages"])
    assert sorted(j.name for j in client.list_jobs() if j.name.startswith(f"{JOB}-fix-")) == [
        fix_job, f"{fix_job}-preflight"]
    assert len(client.list_runs(filters=[f"job[eq]{fix_job}"])) == 1
    assert healed["record"].state == record["state"] == "healed", record["reason"]
    error = meddled.get("error")
    assert isinstance(error, HealerError) and not isinstance(error, AssertionError), meddled
    assert "another healer" in str(error) and f"pid {os.getpid()}" in str(error)
    assert watched == {"record": []}  # skipped, not an error

    # Once the first is done, the incident is free: asking again just reports it.
    again = make_healer(cde, tmp_path)
    try:
        assert again.heal(JOB, run_id).state == "healed"
    finally:
        again.close()


def heal_to_the_end(cde, client: CdeClient, data_dir: Path) -> str:
    """Heals a fresh failure with one healer, ending its fix run as succeeded; the incident id."""
    run_id = failed_run(cde, client)
    incident = f"{JOB}--{run_id}"
    healer = make_healer(cde, data_dir)
    try:
        healing, healed = in_thread(lambda: healer.heal(JOB, run_id))
        wait_for(lambda: (r := healer.records.load(incident)) is not None and r.state == "verifying",
                 "the healer reaching verify")
        fix_job = healer.records.load(incident).attempts[0].fix_job
        assert client.get_job(fix_job).spark["args"] == ["--password", PASSWORD]  # the fix job is whole
        [fix_run] = client.list_runs(filters=[f"job[eq]{fix_job}"])
        cde.backend.set_run_status(fix_run.id, "succeeded")
        healing.join(WAIT_S)
    finally:
        healer.close()
    assert healed.get("record") is not None and healed["record"].state == "healed", healed
    return incident


def test_the_data_directory_is_the_healer_users_alone(lab, tmp_path):
    data_dir = tmp_path / "healer"
    incident = heal_to_the_end(*lab, data_dir)

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    for directory in (data_dir, data_dir / "incidents", data_dir / "leases"):
        assert mode(directory) == 0o700, directory
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert data_dir / "checkpoints.sqlite" in files and data_dir / "incidents" / f"{incident}.json" in files
    assert {str(p): oct(mode(p)) for p in files if mode(p) != 0o600} == {}


def test_checkpoints_and_records_hold_no_secret(lab, tmp_path):
    data_dir = tmp_path / "healer"
    incident = heal_to_the_end(*lab, data_dir)
    for path in (p for p in data_dir.rglob("*") if p.is_file()):  # the SQLite WAL too, if any
        assert PASSWORD.encode() not in path.read_bytes(), path
    with sqlite3.connect(data_dir / "checkpoints.sqlite") as db:
        rows = db.execute("SELECT checkpoint FROM checkpoints").fetchall()
        rows += db.execute("SELECT value FROM writes").fetchall()
    assert rows and not any(PASSWORD.encode() in bytes(value) for (value,) in rows if value)
    # The job's password argument was in the state, masked.
    assert healer_state(data_dir, incident)["base_spark"]["args"] == ["--password", "***"]


def healer_state(data_dir: Path, incident: str) -> dict:
    """The incident's graph state as a restarted healer reads it from the checkpoint."""
    settings = Settings.from_env({"JOBS_API_URL": "http://127.0.0.1:9/dex/api/v1", "CDE_TOKEN": "unused",
                                  "HEALER_DATA_DIR": str(data_dir)}, dotenv=None)
    reader = Healer(settings)
    try:
        return reader.graph.get_state({"configurable": {"thread_id": incident}}).values
    finally:
        reader.close()

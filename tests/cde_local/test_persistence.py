"""Local CDE: state survives a restart; runs cut off by a stop or a crash end `failed`."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.fixtures.cde_local import (
    SLEEPER_APP,
    CdeApi,
    live_processes_in_group,
    process_group_of,
    start_cli,
)


def test_state_survives_a_restart_and_a_stop_fails_the_running_run(local_cde_factory, tmp_path: Path) -> None:
    data_dir = tmp_path / "cde-restart"
    cde = local_cde_factory(data_dir=data_dir)
    api = CdeApi(cde)
    api.create_resource("apps", files={"sleeper.py": SLEEPER_APP, "deep/nested/data.bin": b"\x00\x01binary"})
    api.create_resource("env", type="python-env")
    api.upload("env", "requirements.txt", b"\n")
    assert api.wait_resource("env", ("ready", "failed"))["status"] == "ready"
    api.create_job(
        {
            "name": "sleepy",
            "mounts": [{"resourceName": "apps"}],
            "spark": {"file": "sleeper.py", "args": ["300"]},
        }
    )
    run_id = api.run("sleepy", {"requestID": "req-1"})
    api.wait_run(run_id, until=("running",))
    group = process_group_of(api.log(run_id, "submitter/stdout"))
    token = api.token
    before = {
        "job": api.get("/jobs/sleepy").json(),
        "apps": api.get("/resources/apps?includeFiles=true").json(),
        "env": api.get("/resources/env").json(),
    }

    cde.stop()
    assert live_processes_in_group(group) == []

    again = CdeApi(local_cde_factory(data_dir=data_dir))
    again.token = token  # tokens stay valid across a restart (the signing key is kept)
    assert again.get("/jobs/sleepy").json() == before["job"]
    assert again.get("/resources/apps?includeFiles=true").json() == before["apps"]
    assert again.get("/resources/env").json() == before["env"]
    assert again.get("/resources/apps/deep/nested/data.bin").content == b"\x00\x01binary"
    run = again.describe_run(run_id)
    assert run["status"] == "failed" and run["ended"] != "0001-01-01T00:00:00Z"
    assert "stopped while this run was running" in again.log(run_id, "submitter/stdout")
    reused = again.post("/jobs/sleepy/run", json={"requestID": "req-1"})
    assert reused.status_code == 409 and reused.json() == {"id": run_id}
    assert [r["id"] for r in again.get("/job-runs").json()["runs"]] == [run_id]


def test_a_crashed_server_fails_orphaned_runs_and_kills_their_processes_at_startup(tmp_path: Path) -> None:
    data_dir = tmp_path / "cde-crash"
    first = start_cli(data_dir, tmp_path / "first.log")
    try:
        api = first.api()
        api.create_resource("apps", files={"sleeper.py": SLEEPER_APP})
        api.create_job(
            {
                "name": "sleepy",
                "mounts": [{"resourceName": "apps"}],
                "spark": {"file": "sleeper.py", "args": ["300"]},
            }
        )
        run_id = api.run("sleepy")
        api.wait_run(run_id, until=("running",))
        group = process_group_of(api.log(run_id, "submitter/stdout"))
    finally:
        first.stop(signal.SIGKILL)  # a crash: no clean-up at all
    try:
        assert live_processes_in_group(group)  # the run's processes outlived the server
        second = start_cli(data_dir, tmp_path / "second.log")
        try:
            api = second.api()
            run = api.describe_run(run_id)
            assert run["status"] == "failed"
            submitter = api.log(run_id, "submitter/stdout")
            assert (
                "stopped unexpectedly" in submitter and f"leftover process group {group} killed" in submitter
            )
            assert live_processes_in_group(group) == []
        finally:
            assert second.stop() == 0
    finally:
        for pid in live_processes_in_group(group):  # never leave a sleeper behind, even on failure
            os.kill(pid, signal.SIGKILL)

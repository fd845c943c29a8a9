"""Client run calls against a local CDE in manual run mode (runs are records the test drives)."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from cde_client import ApiError, CdeClient, NotFound, RunTimeout
from cde_local import LocalCde
from tests.fixtures.cde_local import CdeApi, unique
from tests.fixtures.client import CLIENT_USER


@pytest.fixture
def job(client: CdeClient) -> str:
    name = unique("runjob")
    client.create_job(
        {
            "name": name,
            "type": "spark",
            "spark": {"file": "local:/jobs/app.py", "args": ["--day", "{{{day}}}"], "executorMemory": "1g"},
        }
    )
    return name


def test_run_job_and_get_run(client: CdeClient, job: str) -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0)  # the server keeps whole seconds
    run_id = client.run_job(job, overrides={"spark": {"executorMemory": "2g"}}, variables={"day": "2026-11-21"})
    assert [r.id for r in client.list_runs([f"job[eq]{job}"])] == [run_id]
    run = client.get_run(run_id)
    assert (run.id, run.job, run.type, run.status) == (run_id, job, "spark", "starting")
    assert run.user == CLIENT_USER  # who asked for the run
    assert run.started is not None and before <= run.started <= datetime.now(timezone.utc)
    assert run.ended is None  # the Go zero time while it runs
    assert run.spark_app_id is not None and run.spark_app_id.startswith("spark-")
    assert run.spec["executorMemory"] == "2g"
    assert run.spec["args"] == ["--day", "2026-11-21"]
    assert run.raw["id"] == run_id
    assert not run.is_terminal and not run.succeeded


def test_a_run_driven_to_an_end_is_terminal(client: CdeClient, cde, job: str) -> None:
    ok, bad = client.run_job(job), client.run_job(job)
    cde.backend.set_run_status(ok, "running")
    assert client.get_run(ok).status == "running"
    cde.backend.set_run_status(ok, "succeeded")
    cde.backend.set_run_status(bad, "failed")
    done, failed = client.get_run(ok), client.get_run(bad)
    assert done.is_terminal and done.succeeded
    assert done.started is not None and done.ended is not None and done.ended >= done.started
    assert failed.is_terminal and not failed.succeeded


def test_wait_run_polls_until_the_run_ends(client: CdeClient, cde, job: str) -> None:
    run_id = client.run_job(job)
    driver = threading.Timer(0.6, cde.backend.set_run_status, args=(run_id, "failed"))
    driver.start()
    try:
        run = client.wait_run(run_id, timeout_s=60, poll_s=0.1)
    finally:
        driver.join()
    assert run.status == "failed" and run.is_terminal


def test_wait_run_gives_up_with_run_timeout(client: CdeClient, job: str) -> None:
    run_id = client.run_job(job)
    with pytest.raises(RunTimeout) as caught:
        client.wait_run(run_id, timeout_s=0.3, poll_s=0.1)
    assert caught.value.run_id == run_id and caught.value.last_status == "starting"


def test_run_job_request_id_is_idempotent(client: CdeClient, job: str) -> None:
    request_id = unique("dag#run#task#1")
    first = client.run_job(job, request_id=request_id)
    assert client.run_job(job, request_id=request_id) == first
    assert [r.id for r in client.list_runs([f"job[eq]{job}"])] == [first]


def test_list_runs_pages_filters_orders_and_limits(client: CdeClient, cde, job: str) -> None:
    ids = [client.run_job(job) for _ in range(130)]
    for run_id in ids[:5]:
        cde.backend.set_run_status(run_id, "failed")
    cde.backend.set_run_status(ids[5], "killed")

    runs = client.list_runs([f"job[eq]{job}"])
    assert [r.id for r in runs] == sorted(ids, reverse=True)  # every page, newest first
    assert [r.id for r in client.list_runs([f"job[eq]{job}"], ascending=True)] == sorted(ids)
    assert [r.id for r in client.list_runs([f"job[eq]{job}"], limit=105)] == sorted(ids, reverse=True)[:105]
    assert client.list_runs([f"job[eq]{job}"], limit=0) == []

    ended = client.list_runs([f"job[eq]{job}", "status[in]failed,killed"])
    assert sorted(r.id for r in ended) == sorted(ids[:6])
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert len(client.list_runs([f"job[eq]{job}", f"started[gte]{today}"])) == 130
    assert client.list_runs([f"job[eq]{job}", "started[lt]2000-01-01"]) == []


def test_logs_and_log_types(client: CdeClient, cde: LocalCde, raw_api: CdeApi, job: str) -> None:
    run_id = client.run_job(job)
    text = "Traceback (most recent call last):\n  [UNRESOLVED_COLUMN.WITH_SUGGESTION] é\n"
    cde.backend.write_run_log(run_id, "driver/stdout", text)
    types = client.log_types(run_id)
    assert "driver/stdout" in types and types == raw_api.get(f"/job-runs/{run_id}/log-types").json()
    assert client.get_logs(run_id) == text  # driver/stdout, as written
    assert client.get_logs(run_id, "driver/stdout") == client.get_logs(run_id)
    with pytest.raises(NotFound):
        client.get_logs(run_id, "executor_9/nothing")


def test_kill_run(client: CdeClient, job: str) -> None:
    run_id = client.run_job(job)
    client.kill_run(run_id)
    assert client.get_run(run_id).status == "killed"
    with pytest.raises(ApiError) as caught:
        client.kill_run(run_id)  # an ended run cannot be killed again
    assert caught.value.status == 400 and "killed" in caught.value.message


def test_unknown_runs_are_not_found(client: CdeClient) -> None:
    missing = 10**9
    for call in (client.get_run, client.log_types, client.get_logs, client.kill_run):
        with pytest.raises(NotFound):
            call(missing)


@pytest.mark.parametrize("bad", ["12", -1, 1.5, True])
def test_a_bad_run_id_is_a_clear_error(client: CdeClient, bad) -> None:
    with pytest.raises(ValueError, match="run id"):
        client.get_run(bad)

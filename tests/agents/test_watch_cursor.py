"""The watcher's cursor, against a local CDE in manual run mode (runs failed by hand, no Spark).

- The cursor is an end time: a long run started before newer ones and failing after them is found.
- An idle cycle is one list call, counted at the server (`CountingFront`), asking only for the runs
  (of every status: the run history records them all) that ended since the cursor less the overlap;
  more pages only when more runs than a page match.
- The cursor is stored and a restarted healer goes on from it; another set of watched jobs, or a
  cursor older than the lookback, lists the lookback.
- Failures left for the next cycle by HEAL_MAX_NEW_PER_CYCLE are listed again.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from agents.config import Settings
from agents.healer import Healer
from agents.monitor import list_since, open_incident, scan_failures
from agents.record import FailedRun, IncidentRecord, RecordStore, incident_id
from agents.watch_cursor import CURSOR_FILE, WatchCursor, load_cursor, save_cursor
from cde_client import CdeClient
from tests.fixtures.counting import CountingFront

USER, PASSWORD = "watch-user", "watch-password-2468"
JOB = "nightly-watch"
LIST_PATH = "/dex/api/v1/job-runs"
NEXT_SECOND_S = 1.1  # CDE's times are whole seconds


@pytest.fixture
def cde(local_cde_factory):
    return local_cde_factory(run_mode="manual", users={USER: PASSWORD})


@pytest.fixture
def front(cde):
    with CountingFront(cde) as counting:
        yield counting


@pytest.fixture
def client(front):
    client = CdeClient(front.jobs_api_url, user=USER, password=PASSWORD)
    client.create_resource("watch-app")
    client.upload_file("watch-app", "app.py", b"import sys\nsys.exit(3)\n")
    for name in (JOB, "other-job"):
        client.create_job({"name": name, "type": "spark", "mounts": [{"resourceName": "watch-app"}],
                           "spark": {"file": "app.py"}})
    yield client
    client.close()


def settings(front: CountingFront, data_dir: Path, **env: str) -> Settings:
    return Settings.from_env({
        "JOBS_API_URL": front.jobs_api_url, "WORKLOAD_USER": USER, "WORKLOAD_PASSWORD": PASSWORD,
        "HEALER_DATA_DIR": str(data_dir), "JOB_NAME": JOB, **env}, dotenv=None)


def start(cde, job: str = JOB) -> int:
    return cde.backend.run_job(job, {}, USER)


def fail(cde, run_id: int) -> None:
    cde.backend.write_run_log(run_id, "driver/stderr", "boom: nothing a rule knows\n")
    cde.backend.set_run_status(run_id, "failed")


def ended(client: CdeClient, run_id: int) -> datetime:
    run = client.get_run(run_id)
    assert run.ended is not None
    return run.ended


def list_calls(front: CountingFront) -> list[dict[str, list[str]]]:
    """The query parameters of every run list the server answered."""
    return [parse_qs(r.query) for r in front.api_requests() if r.method == "GET" and r.path == LIST_PATH]


def stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def record_for(job: str, run_id: int) -> IncidentRecord:
    return IncidentRecord(incident_id=incident_id(job, run_id), job=job, run_id=run_id, state="healed",
                          failed_run=FailedRun(id=run_id, job=job, status="failed"))


def test_a_long_run_failing_after_newer_runs_is_still_found(cde, front, client, tmp_path):
    watch = settings(front, tmp_path, HEAL_WATCH_OVERLAP_S="0")
    records = RecordStore(tmp_path)
    long_run = start(cde)  # started first, runs on
    time.sleep(NEXT_SECOND_S)  # so that it started strictly before the cursor, to the second
    newer = start(cde)
    fail(cde, newer)

    first = scan_failures(client, watch, records, None)
    assert [run.id for run in first.runs] == [newer]
    assert first.cursor == ended(client, newer)
    open_incident(records, client, JOB, newer, mode="auto", model=None)

    fail(cde, long_run)  # the long run fails after the newer one: a lower id, an earlier start
    front.clear()
    second = scan_failures(client, watch, records, first.cursor)
    assert [run.id for run in second.runs] == [long_run]  # a cursor on run id or start time misses it
    assert second.cursor == ended(client, long_run)
    (call,) = list_calls(front)
    assert set(call["filter"]) == {f"ended[gte]{stamp(first.cursor)}", f"job[in]{JOB}"}  # every status


def test_an_idle_cycle_is_one_list_call_from_the_cursor(cde, front, client, tmp_path):
    failed = start(cde)
    fail(cde, failed)
    healer = Healer(settings(front, tmp_path, HEAL_WATCH_OVERLAP_S="60", HEAL_LOOKBACK_H="5"))
    try:
        before = datetime.now(timezone.utc)
        healer.watched_cycle()  # the first cycle: no cursor, the lookback; heals the failure
        assert healer.watch_status.last_error == ""
        assert healer.records.load(incident_id(JOB, failed)).state == "escalated"  # no rule, no model
        (first_list,) = list_calls(front)
        lookback_from = datetime.fromisoformat(
            next(f for f in first_list["filter"] if f.startswith("ended[gte]"))[len("ended[gte]"):] + "+00:00")
        assert before - timedelta(hours=5, seconds=5) <= lookback_from <= before - timedelta(hours=5) + timedelta(seconds=5)
        assert healer.cursor == ended(client, failed)

        for _ in range(3):
            front.clear()
            healer.watched_cycle()
            assert healer.watch_status.last_error == ""
            calls = front.api_requests()
            assert [(r.method, r.path) for r in calls] == [("GET", LIST_PATH)]  # one call, nothing else
            (query,) = list_calls(front)
            assert f"ended[gte]{stamp(healer.cursor - timedelta(seconds=60))}" in query["filter"]
            assert query["limit"] == ["100"]
    finally:
        healer.close()


def test_more_failures_than_a_page_are_paged_then_the_cursor_lists_only_new_ones(cde, front, client, tmp_path):
    records = RecordStore(tmp_path)
    for _ in range(130):  # each already has its incident: only listing is measured
        run_id = start(cde)
        fail(cde, run_id)
        records.save(record_for(JOB, run_id))
    time.sleep(NEXT_SECOND_S)  # the cursor's second is listed again (gte): keep the 130 out of it
    newest = start(cde)
    fail(cde, newest)
    records.save(record_for(JOB, newest))
    healer = Healer(settings(front, tmp_path, HEAL_WATCH_OVERLAP_S="0"))
    try:
        front.clear()
        healer.watched_cycle()
        assert len(list_calls(front)) == 2  # 131 runs in the lookback: two pages of 100
        assert healer.cursor == ended(client, newest)
        fresh = start(cde)
        fail(cde, fresh)
        front.clear()
        healer.watched_cycle()
        assert len(list_calls(front)) == 1  # only the runs that ended since the cursor
        assert healer.records.exists(incident_id(JOB, fresh))
    finally:
        healer.close()


def test_the_cursor_survives_a_restart_and_belongs_to_its_watched_jobs(cde, front, client, tmp_path):
    failed = start(cde)
    fail(cde, failed)
    first = Healer(settings(front, tmp_path))
    try:
        first.watched_cycle()
    finally:
        first.close()
    cursor = ended(client, failed)
    assert load_cursor(tmp_path, (JOB,)) == cursor
    assert (tmp_path / CURSOR_FILE).stat().st_mode & 0o777 == 0o600

    restarted = Healer(settings(front, tmp_path))
    try:
        assert restarted.cursor == cursor
        front.clear()
        restarted.watched_cycle()
        (query,) = list_calls(front)
        assert f"ended[gte]{stamp(cursor - timedelta(seconds=300))}" in query["filter"]  # not the 24 h lookback
    finally:
        restarted.close()

    elsewhere = Healer(settings(front, tmp_path, JOB_NAME=f"{JOB},other-job"))  # other jobs: their lookback
    try:
        assert elsewhere.cursor is None
    finally:
        elsewhere.close()


def test_failures_left_by_the_cap_are_listed_again(cde, front, client, tmp_path):
    watch = settings(front, tmp_path, HEAL_WATCH_OVERLAP_S="0", HEAL_MAX_NEW_PER_CYCLE="2")
    records = RecordStore(tmp_path)
    early = [start(cde) for _ in range(3)]
    for run_id in early:
        fail(cde, run_id)
    time.sleep(NEXT_SECOND_S)
    late = start(cde)
    fail(cde, late)

    first = scan_failures(client, watch, records, None)
    assert [run.id for run in first.runs] == early[:2]
    assert first.cursor == ended(client, early[2])  # the first one left, not the newest listed
    for run in first.runs:
        records.save(record_for(run.job, run.id))
    second = scan_failures(client, watch, records, first.cursor)
    assert [run.id for run in second.runs] == [early[2], late]


def test_the_lookback_bounds_an_old_cursor(tmp_path):
    watch = Settings.from_env({"JOBS_API_URL": "http://127.0.0.1:9/dex/api/v1", "CDE_TOKEN": "t",
                               "HEAL_LOOKBACK_H": "24", "HEAL_WATCH_OVERLAP_S": "300"}, dotenv=None)
    now = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    assert list_since(watch, None, now) == now - timedelta(hours=24)
    assert list_since(watch, now - timedelta(hours=1), now) == now - timedelta(hours=1, minutes=5)
    assert list_since(watch, now - timedelta(days=3), now) == now - timedelta(hours=24)

    save_cursor(tmp_path, WatchCursor(now - timedelta(hours=1), ("b", "a")))
    assert load_cursor(tmp_path, ("a", "b")) == now - timedelta(hours=1)
    assert load_cursor(tmp_path, ("a",)) is None
    (tmp_path / CURSOR_FILE).write_text("{not json")
    assert load_cursor(tmp_path, ("a", "b")) is None  # unreadable: the lookback, never a crash

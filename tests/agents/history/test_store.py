"""The run history (`agents/history`), the same behaviour on SQLite and on a real PostgreSQL server:
runs recorded once, incidents and their actions from real records, the policy's view of a job,
metrics with known numbers, experience tuples, migrations, and data that outlives the process."""

from __future__ import annotations

import stat
import threading
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from agents.errors import HistoryError
from agents.history import RunHistory
from agents.history.migrations import LATEST, MIGRATIONS
from agents.history.schema import metadata
from agents.policy.decision import HISTORY_WINDOW, PolicyState
from agents.record import Attempt, PolicyChoice
from tests.agents.history.records import (
    T0,
    at,
    cde_run,
    diagnosis,
    healed_in_two_attempts,
    incident,
    model_patch,
    rerun,
    rule_fix,
)

VC = "vc-1.cde-abc.example.com"
SECRET = "hunter2-secret"


@pytest.fixture
def history(database_url):
    with RunHistory(database_url, vc=VC, secrets=(SECRET,)) as opened:
        yield opened


def _password(url: str) -> str | None:
    return url.split("://", 1)[1].split("@")[0].split(":")[1] if "@" in url else None


# --- runs ------------------------------------------------------------------------------------------


def test_runs_are_recorded_once_with_their_resources(history):
    listed = [
        cde_run("etl", 7, "succeeded", at(0), at(90), driverMemory="2g", executorMemory="4g", driverCores=1,
                executorCores=2, numExecutors=3),
        cde_run("etl", 8, "failed", at(100), at(130)),
        cde_run("etl-fix-1", 9, "succeeded", at(140), at(200)),
        cde_run("etl", 10, "running", at(150), None),
    ]
    assert history.record_runs(listed, healer_runs={9}) == 4
    assert history.record_runs(listed) == 4  # again: the same rows, and 9 stays the healer's

    found = {run.run_id: run for run in history.runs()}
    assert sorted(found) == [7, 8, 9, 10]
    assert found[7].resources == {"driverMemory": "2g", "executorMemory": "4g", "driverCores": 1,
                                  "executorCores": 2, "numExecutors": 3}
    assert found[7].status == "succeeded" and found[7].duration_s == 90.0
    assert found[7].started == at(0) and found[7].ended == at(90) and found[7].started.tzinfo is not None
    assert found[8].resources == {} and found[8].incident_id is None
    assert [found[n].healer_run for n in (7, 8, 9, 10)] == [False, False, True, False]
    assert found[10].ended is None and found[10].duration_s is None

    history.record_runs([cde_run("etl", 10, "killed", at(150), at(400))])  # the running one ended since
    assert [(r.run_id, r.status, r.duration_s) for r in history.runs("etl")] == [
        (10, "killed", 250.0), (8, "failed", 30.0), (7, "succeeded", 90.0)]  # newest end first


# --- incidents and their actions -----------------------------------------------------------------


def test_an_incident_and_the_actions_it_took_come_from_its_record(history):
    history.record_runs([cde_run("sales-daily", 41, "failed", T0 - timedelta(seconds=60), T0, driverMemory="1g")])
    record = healed_in_two_attempts()
    record.reason += f" (password {SECRET} seen in a log)"  # an unredacted record must not leak it
    history.record_incident(record)
    history.record_incident(record)  # idempotent

    row = history.incident("sales-daily--41")
    assert row is not None
    assert (row.job, row.run_id, row.state, row.attempts) == ("sales-daily", 41, "healed", 2)
    assert row.failed_at == T0 and row.opened_at == T0 + timedelta(seconds=5)
    assert row.ended_at == T0 + timedelta(seconds=600)
    assert (row.failure_condition, row.failure_category) == ("SPARK_MEMORY", "config")
    assert SECRET not in row.reason and "***" in row.reason

    first, second = history.actions("sales-daily--41")
    # attempt 1, recorded before the policy existed: the static order's model patch; its pre-flights
    # (the current candidate's once, the second candidate's and its sandbox check) and 2 model calls
    assert (first.attempt, first.action, first.policy, first.q_values) == (1, "model-patch", "static", {})
    assert (first.cluster_s, first.model_tokens, first.model_s) == (40.0 + 25.0 + 5.0, 1200 + 800, 4.0)
    assert first.verdict == "pre-flight failed"
    assert (first.started, first.ended) == (T0 + timedelta(seconds=7), T0 + timedelta(seconds=90))
    # attempt 2: the learned policy's rule fix: pre-flight, fix run, its check and the measurement
    assert (second.attempt, second.action, second.policy) == (2, "rule-fix", "learned")
    assert second.q_values == {"rule-fix": 0.8, "escalate": -0.2} and second.reason == "rule fixes worked here"
    assert (second.cluster_s, second.model_tokens, second.model_s) == (30.0 + 120.0 + 15.0 + 10.0, 550, 1.0)
    assert second.verdict == "healed" and second.ended == T0 + timedelta(seconds=600)

    (run,) = history.runs("sales-daily")
    assert (run.incident_id, run.outcome, run.failure_condition, run.failure_category) == (
        "sales-daily--41", "healed", "SPARK_MEMORY", "config")
    assert run.resources == {"driverMemory": "1g"}  # the listing's columns are kept


def test_an_incident_is_recorded_at_each_step_and_keeps_its_first_end(history):
    record = incident("ingest", 5, state="diagnosing", failed_at=T0, attempts=[Attempt(number=1)])
    history.record_incident(record)  # no run listed: the incident makes the failed run's row
    row = history.incident("ingest--5")
    assert (row.state, row.ended_at, history.actions("ingest--5")) == ("diagnosing", None, [])  # nothing chosen yet
    (run,) = history.runs("ingest")
    assert (run.status, run.ended, run.resources, run.outcome) == ("failed", T0, None, "diagnosing")

    record.state = "awaiting_approval"
    record.attempts[0].diagnosis, record.attempts[0].patch = diagnosis(), rule_fix()
    history.record_incident(record)
    assert history.incident("ingest--5").ended_at is None  # paused: not ended
    assert [a.action for a in history.actions("ingest--5")] == ["rule-fix"]

    record.state, record.updated_at = "rejected", "2026-03-09T11:00:00.000000Z"
    history.record_incident(record)
    record.updated_at = "2026-03-09T12:30:00.000000Z"  # rewritten later (a tool): the end stays
    history.record_incident(record)
    row = history.incident("ingest--5")
    assert (row.state, row.ended_at) == ("rejected", datetime(2026, 3, 9, 11, 0, tzinfo=timezone.utc))
    assert history.runs("ingest")[0].outcome == "rejected"


@pytest.mark.parametrize(("attempt", "action"), [
    (Attempt(number=1, patch=rerun()), "rerun"),
    (Attempt(number=1, patch=rule_fix("config")), "rule-fix"),
    (Attempt(number=1, patch=rule_fix("code")), "rule-fix"),
    (Attempt(number=1, patch=model_patch()), "model-patch"),
    (Attempt(number=1, diagnosis=diagnosis(category="data")), "escalate"),  # ended without a patch
    (Attempt(number=1, patch=rerun(), policy=PolicyChoice(action="rerun-backoff", policy="static")), "rerun-backoff"),
])
def test_the_action_of_an_attempt(history, attempt, action):
    history.record_incident(incident("j", 1, state="escalated", failed_at=T0, attempts=[attempt]))
    assert [a.action for a in history.actions("j--1")] == [action]


# --- what the policy reads ---------------------------------------------------------------------


def test_job_history_gives_the_policy_its_fields(history):
    assert history.job_history("etl") == type(history.job_history("etl"))(0, None, False, [])
    statuses = ["failed", "succeeded", "failed", "failed", "succeeded", "succeeded", "failed", "succeeded",
                "succeeded", "failed", "succeeded", "failed"]  # 12 runs, oldest first; the last 10 hold 5 failures
    listed = [cde_run("etl", n, status, at(100 * n), at(100 * n + 50)) for n, status in enumerate(statuses, start=1)]
    listed += [cde_run("etl-fix-1", 90, "failed", at(5000), at(5050)),  # the healer's: another job, never counted
               cde_run("etl", 91, "running", at(5000), None),  # not finished
               cde_run("other", 92, "failed", at(5000), at(5050))]
    history.record_runs(listed, healer_runs={90})
    assert HISTORY_WINDOW == 10

    healed = healed_in_two_attempts(job="etl", run_id=3, failed_at=at(350), healed_after_s=400)  # ended at 750
    history.record_incident(healed)
    seen = history.job_history("etl")
    assert [r.run_id for r in seen.runs] == list(range(12, 2, -1))  # newest end first, the last 10
    assert (seen.recent_failures, seen.last_worked, seen.last_escalated) == (5, "rule-fix", False)
    assert history.job_history("etl", window=3).recent_failures == 2  # runs 12, 11, 10

    history.record_incident(incident("etl", 7, state="escalated", failed_at=at(750), ended_at=at(900),
                                     attempts=[Attempt(number=1, diagnosis=diagnosis(category="data"))]))
    assert (history.job_history("etl").last_worked, history.job_history("etl").last_escalated) == ("rule-fix", True)

    resources = Attempt(number=1, patch=rule_fix("config"), verdict="healed",
                        policy=PolicyChoice(action="raise-resources", policy="learned"))
    history.record_incident(incident("etl", 10, state="healed", failed_at=at(1050), ended_at=at(1200),
                                     attempts=[resources]))
    history.record_incident(incident("etl", 12, state="awaiting_approval", failed_at=at(1250)))  # not finished
    seen = history.job_history("etl")
    assert (seen.last_worked, seen.last_escalated) == ("raise-resources", False)
    assert history.job_history("other") .recent_failures == 1 and history.job_history("other").last_worked is None


def test_metrics_per_day_and_over_the_window(history):
    now = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)

    def closed(run_id: int, state: str, failed: datetime, recover_s: float) -> None:
        history.record_incident(incident("etl", run_id, state=state, failed_at=failed,
                                         ended_at=failed + timedelta(seconds=recover_s)))

    closed(1, "healed", datetime(2026, 3, 9, 10, 0, tzinfo=timezone.utc), 100)
    closed(2, "healed", datetime(2026, 3, 9, 11, 0, tzinfo=timezone.utc), 300)
    closed(3, "escalated", datetime(2026, 3, 9, 11, 30, tzinfo=timezone.utc), 1800)
    closed(4, "healed", datetime(2026, 3, 10, 8, 0, tzinfo=timezone.utc), 600)
    closed(5, "rejected", datetime(2026, 3, 10, 8, 30, tzinfo=timezone.utc), 900)
    closed(6, "healed", datetime(2026, 3, 7, 23, 0, tzinfo=timezone.utc), 60)  # the day before the window
    closed(7, "healed", datetime(2026, 3, 10, 12, 30, tzinfo=timezone.utc), 60)  # after `now`
    history.record_incident(incident("etl", 8, state="awaiting_approval", failed_at=datetime(2026, 3, 10, 9, 0,
                                                                                              tzinfo=timezone.utc)))

    days = history.metrics(3, now=now)
    assert [d.day for d in days] == [date(2026, 3, 8), date(2026, 3, 9), date(2026, 3, 10)]
    empty, ninth, tenth = days
    assert (empty.closed, empty.auto_resolution, empty.mttr_median_s, empty.mttr_p90_s) == (0, None, None, None)
    assert (ninth.closed, ninth.healed, ninth.escalated, ninth.rejected) == (3, 2, 1, 0)
    assert ninth.auto_resolution == pytest.approx(2 / 3)
    assert (ninth.mttr_median_s, ninth.mttr_p90_s) == (pytest.approx(200), pytest.approx(280))  # of 100 and 300
    assert (tenth.closed, tenth.healed, tenth.rejected, tenth.auto_resolution) == (2, 1, 1, 0.5)
    assert (tenth.mttr_median_s, tenth.mttr_p90_s) == (600, 600)

    total = history.totals(3, now=now)
    assert (total.day, total.closed, total.healed, total.escalated, total.rejected) == (None, 5, 3, 1, 1)
    assert total.auto_resolution == pytest.approx(0.6)
    assert (total.mttr_median_s, total.mttr_p90_s) == (pytest.approx(300), pytest.approx(540))  # of 100, 300, 600
    assert len(history.metrics(30, now=now)) == 30 and history.totals(30, now=now).closed == 6


def test_experience_tuples_round_trip(history):
    state = PolicyState(category="transient", condition=None, attempt=1, attempts_left=2, rule_fix="rerun",
                        model=False, reruns_left=2, recent_failures=3, last_worked="rerun", last_escalated=False)
    first = history.add_experience("etl--7", 1, state, "rerun", -0.5, next_state={"category": "transient", "attempt": 2})
    second = history.add_experience("etl--7", 2, {"category": "transient", "attempt": 2}, "rerun-backoff", 10.0)
    assert second > first
    found = history.experiences()
    assert [(e.id, e.incident_id, e.attempt, e.action, e.reward) for e in found] == [
        (first, "etl--7", 1, "rerun", -0.5), (second, "etl--7", 2, "rerun-backoff", 10.0)]
    assert found[0].state["recent_failures"] == 3 and found[0].state["tried"] == []
    assert found[0].next_state == {"category": "transient", "attempt": 2} and found[1].next_state is None
    assert history.experiences(since_id=first) == found[1:]

    again = history.add_experience("etl--7", 1, state, "rerun", 1.0)  # replaced, under a new id
    assert again > second
    assert [(e.attempt, e.reward) for e in history.experiences()] == [(2, 10.0), (1, 1.0)]
    assert [e.id for e in history.experiences(since_id=second)] == [again]


def test_clusters_keep_their_own_rows(history, database_url):
    history.record_runs([cde_run("etl", 7, "failed", at(0), at(10))])
    history.record_incident(healed_in_two_attempts(job="etl", run_id=7))
    with RunHistory(database_url, vc="other-vc.example.com") as other:
        other.record_runs([cde_run("etl", 7, "succeeded", at(0), at(20))])  # the same job name and run id
        assert [r.status for r in other.runs()] == ["succeeded"]
        assert other.incident("etl--7") is None and other.job_history("etl").last_worked is None
    assert [r.status for r in history.runs()] == ["failed"]


# --- the database ----------------------------------------------------------------------------------


def test_data_survives_closing_and_reopening(database_url):
    with RunHistory(database_url, vc=VC) as first:
        assert (first.version_found, first.version) == (0, LATEST)  # created
        first.record_runs([cde_run("etl", 7, "succeeded", at(0), at(10))])
        first.record_incident(healed_in_two_attempts())
        first.add_experience("sales-daily--41", 2, {"attempt": 2}, "rule-fix", 5.0)
    with RunHistory(database_url, vc=VC) as again:
        assert (again.version_found, again.version) == (LATEST, LATEST)  # nothing to migrate
        assert [r.run_id for r in again.runs()] == [7, 41]
        assert again.incident("sales-daily--41").state == "healed"
        assert len(again.actions("sales-daily--41")) == 2 and len(again.experiences()) == 1


def test_the_migrations_make_the_declared_schema(database_url):
    assert [m.number for m in MIGRATIONS] == list(range(1, LATEST + 1))
    RunHistory(database_url).close()
    engine = create_engine(database_url)
    try:
        found = inspect(engine)
        for table in metadata.sorted_tables:
            columns = {c["name"]: c for c in found.get_columns(table.name)}
            assert list(columns) == [c.name for c in table.columns], table.name
            assert {n: c["nullable"] for n, c in columns.items()} == {c.name: c.nullable for c in table.columns}
            assert found.get_pk_constraint(table.name)["constrained_columns"] == [c.name for c in table.primary_key]
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version FROM schema_version")).scalars().all() == [LATEST]
    finally:
        engine.dispose()


V1 = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE runs (vc VARCHAR(255) NOT NULL, job VARCHAR(255) NOT NULL, run_id BIGINT NOT NULL,
  status VARCHAR(32) NOT NULL, started TIMESTAMP WITH TIME ZONE, ended TIMESTAMP WITH TIME ZONE, duration_s FLOAT,
  resources TEXT, failure_condition VARCHAR(255), failure_category VARCHAR(32), incident_id VARCHAR(255),
  outcome VARCHAR(32), healer_run BOOLEAN NOT NULL, recorded_at TIMESTAMP WITH TIME ZONE NOT NULL,
  PRIMARY KEY (vc, job, run_id));
CREATE TABLE incidents (vc VARCHAR(255) NOT NULL, incident_id VARCHAR(255) NOT NULL, job VARCHAR(255) NOT NULL,
  run_id BIGINT NOT NULL, failed_at TIMESTAMP WITH TIME ZONE, opened_at TIMESTAMP WITH TIME ZONE NOT NULL,
  ended_at TIMESTAMP WITH TIME ZONE, state VARCHAR(32) NOT NULL, attempts INTEGER NOT NULL, reason TEXT NOT NULL,
  failure_condition VARCHAR(255), failure_category VARCHAR(32), mode VARCHAR(32) NOT NULL, model VARCHAR(255),
  updated_at TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY (vc, incident_id));
CREATE TABLE actions (vc VARCHAR(255) NOT NULL, incident_id VARCHAR(255) NOT NULL, attempt INTEGER NOT NULL,
  action VARCHAR(32) NOT NULL, policy VARCHAR(32) NOT NULL, reason TEXT NOT NULL, overridden TEXT NOT NULL,
  q_values TEXT NOT NULL, verdict TEXT NOT NULL, cluster_s FLOAT NOT NULL, model_tokens INTEGER NOT NULL,
  model_s FLOAT NOT NULL, started TIMESTAMP WITH TIME ZONE, ended TIMESTAMP WITH TIME ZONE,
  PRIMARY KEY (vc, incident_id, attempt));
INSERT INTO schema_version (version) VALUES (1);
INSERT INTO runs VALUES ('{vc}', 'etl', 7, 'failed', '{t}', '{t}', 0, '{{}}', 'DIVIDE_BY_ZERO', 'code', 'etl--7',
  'healed', FALSE, '{t}');
INSERT INTO incidents VALUES ('{vc}', 'etl--7', 'etl', 7, '{t}', '{t}', '{t}', 'healed', 1, '', 'DIVIDE_BY_ZERO',
  'code', 'auto', NULL, '{t}');
INSERT INTO actions VALUES ('{vc}', 'etl--7', 1, 'rule-fix', 'static', '', '', '{{}}', 'healed', 42.5, 0, 0,
  '{t}', '{t}');
"""


def _by_hand(url: str, script: str) -> None:
    """A database as an older healer left it: statements written out, not through our code."""
    engine = create_engine(url)
    moment = "2026-03-01 10:00:00" + ("+00" if url.startswith("postgresql") else "")
    try:
        with engine.begin() as conn:
            for statement in script.format(vc=VC, t=moment).split(";"):
                if statement.strip():
                    conn.execute(text(statement))
    finally:
        engine.dispose()


def test_a_database_of_an_older_version_is_migrated_at_open(database_url):
    _by_hand(database_url, V1)
    with RunHistory(database_url, vc=VC) as history:
        assert (history.version_found, history.version) == (1, LATEST)
        (run,) = history.runs()
        assert (run.run_id, run.status, run.ended, run.incident_id) == (
            7, "failed", datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc), "etl--7")
        assert history.job_history("etl").last_worked == "rule-fix"
        assert [a.cluster_s for a in history.actions("etl--7")] == [42.5]
        assert history.add_experience("etl--7", 1, {"attempt": 1}, "rule-fix", 1.0) >= 1  # version 2's table
        history.record_incident(healed_in_two_attempts(job="etl", run_id=8))
    with RunHistory(database_url, vc=VC) as again:
        assert again.version_found == LATEST and len(again.experiences()) == 1


def test_a_newer_schema_than_the_code_knows_is_refused(database_url):
    _by_hand(database_url, "CREATE TABLE schema_version (version INTEGER NOT NULL);"
                           f"INSERT INTO schema_version (version) VALUES ({LATEST + 97})")
    with pytest.raises(HistoryError) as refused:
        RunHistory(database_url, vc=VC)
    message = str(refused.value)
    assert f"has schema version {LATEST + 97}, newer than this healer's {LATEST}" in message
    assert "upgrade this healer" in message
    password = _password(database_url)
    assert password is None or (password not in message and ":***@" in message)
    engine = create_engine(database_url)
    try:
        assert inspect(engine).get_table_names() == ["schema_version"]  # nothing touched
    finally:
        engine.dispose()


def test_the_url_is_shown_without_its_password(database_url):
    with RunHistory(database_url, vc=VC) as history:
        password = _password(database_url)
        if password is not None:
            assert password not in history.shown and password not in repr(history) and ":***@" in history.shown
        else:
            path = Path(database_url.removeprefix("sqlite:///"))
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            history.record_runs([cde_run("etl", 1, "succeeded", at(0), at(1))])
            for companion in path.parent.glob(path.name + "-*"):  # WAL and shared-memory files
                assert stat.S_IMODE(companion.stat().st_mode) == 0o600, companion


def test_the_worker_and_the_dashboard_share_one_history(history):
    """The healer's worker writes while the dashboard's threads read, on one RunHistory."""
    errors: list[BaseException] = []

    def guarded(work) -> None:
        try:
            work()
        except BaseException as exc:  # reported below, with the thread's failure
            errors.append(exc)

    def write(base: int) -> None:
        for n in range(25):
            history.record_runs([cde_run("etl", base + n, "failed" if n % 5 == 0 else "succeeded", at(n), at(n + 1))])
            history.record_incident(healed_in_two_attempts(job="etl", run_id=base + n))

    def read() -> None:
        for _ in range(25):
            history.metrics(7, now=T0 + timedelta(days=1))
            history.job_history("etl")

    threads = [threading.Thread(target=guarded, args=(lambda b=b: write(b),)) for b in (1000, 2000)]
    threads += [threading.Thread(target=guarded, args=(read,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert len(history.runs("etl")) == 50
    assert history.totals(7, now=T0 + timedelta(days=1)).healed == 50


def test_a_database_that_cannot_be_opened_stops_the_start_with_a_clear_error(tmp_path):
    with pytest.raises(HistoryError) as refused:
        RunHistory("postgresql+psycopg://healer:sekrit-99@127.0.0.1:9/heal")  # nobody listens on port 9
    assert str(refused.value).startswith(
        "the run history at postgresql+psycopg://healer:***@127.0.0.1:9/heal cannot be opened: connection failed")
    assert "sekrit-99" not in str(refused.value)
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_text("not a database " * 100)
    with pytest.raises(HistoryError, match="cannot be opened: file is not a database"):
        RunHistory(f"sqlite:///{garbage}")
    with pytest.raises(HistoryError, match="keeps to SQLite or PostgreSQL"):
        RunHistory("mysql://root:pw@db/heal")

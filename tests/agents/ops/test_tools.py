"""The ops query tools against a small hand-built history, on SQLite and PostgreSQL: exact numbers,
the SQL each answer shows, window edges (a window includes its start and excludes its end), the
cluster's rows only, and nothing but selects."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError
from sqlalchemy import create_engine, update

from agents.history import RunHistory
from agents.history.schema import incidents
from agents.ops import tools
from agents.ops.tools import TOOLS, run_tool, span
from agents.record import (
    AnomalyEvidence,
    Attempt,
    Diagnosis,
    FailedRun,
    IncidentRecord,
    PolicyChoice,
    RecordStore,
)
from agents.times import UTC_PRECISE
from tests.agents.history.records import cde_run, incident

VC, OTHER_VC = "vc-a.cde.example.com", "vc-b.cde.example.com"
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
COLUMN, ZERO = "customer_id was renamed to account_id upstream", "the share divides by a count that can be zero"
LOCKED = "another run held the table's lock"
ROWS_LOW = "rows written 80% below the job's usual"


def h(hours: float) -> datetime:
    """`hours` before NOW."""
    return NOW - timedelta(hours=hours)


def failed(job: str, run_id: int, state: str, at: datetime, ended_after_s: float | None, category: str,
           condition: str, reason: str = ""):
    """A failure incident's record as the healer leaves it, diagnosed by a rule in its first attempt."""
    causes = {"UNRESOLVED_COLUMN": COLUMN, "DIVIDE_BY_ZERO": ZERO, "CONCURRENT_QUERY": LOCKED}
    attempt = Attempt(number=1, diagnosis=Diagnosis(category=category, root_cause=causes[condition], confidence=0.9,
                                                    source="rule", condition=condition),
                      policy=PolicyChoice(action="rerun" if category == "transient" else "rule-fix", policy="static"),
                      verdict="healed" if state == "healed" else "")
    return incident(job, run_id, state=state, failed_at=at, attempts=[attempt], reason=reason,
                    ended_at=None if ended_after_s is None else at + timedelta(seconds=ended_after_s))


def anomaly(job: str, run_id: int, at: datetime, summary: str) -> IncidentRecord:
    """A succeeded run the detector flagged, waiting for a person's choice."""
    stamp = at.strftime(UTC_PRECISE)
    return IncidentRecord(incident_id=f"{job}--{run_id}", job=job, run_id=run_id, kind="anomaly", state="flagged",
                          opened_at=stamp, updated_at=stamp, anomaly=AnomalyEvidence(judgement={"summary": summary}),
                          failed_run=FailedRun(id=run_id, job=job, status="succeeded", ended=stamp))


@pytest.fixture
def lab(database_url, tmp_path):
    """The history of vc A, the same job names under vc B, and the records of vc A's healer."""
    records = RecordStore(tmp_path / "healer")
    with RunHistory(database_url, vc=VC) as history, RunHistory(database_url, vc=OTHER_VC) as other:
        history.record_runs([
            cde_run("sales-daily", 1, "succeeded", h(50), h(49.5)),
            cde_run("sales-daily", 2, "failed", h(26), h(25)),  # an hour before the 24 hours
            cde_run("sales-daily", 3, "failed", h(24.5), h(24)),  # ends at the 24 hours' start: in
            cde_run("sales-daily", 4, "succeeded", h(2), h(1)),
            cde_run("sales-daily", 5, "failed", h(0.5), NOW),  # ends at the end: out
            cde_run("inventory-sync", 10, "failed", h(5), h(4)),
            cde_run("inventory-sync", 11, "failed", h(3), h(2.5)),
            cde_run("inventory-sync", 12, "killed", h(1), h(0.9)),
            cde_run("inventory-sync", 13, "running", h(0.2), None),  # counted at its start
            cde_run("sales-daily-fix-1", 20, "failed", h(23), h(22.5)),  # the healer's: never counted
        ], healer_runs={20})
        from_record = failed("sales-daily", 3, "escalated", h(24), 1800, "code", "DIVIDE_BY_ZERO",
                             reason="attempts used up: the fix failed its pre-flight")
        for record in (failed("sales-daily", 2, "healed", h(25), 600, "code", "UNRESOLVED_COLUMN"), from_record,
                       failed("inventory-sync", 10, "healed", h(4), 1200, "transient", "CONCURRENT_QUERY"),
                       failed("inventory-sync", 11, "healed", h(2.5), 3000, "transient", "CONCURRENT_QUERY"),
                       failed("sales-daily", 5, "diagnosing", NOW, None, "code", "UNRESOLVED_COLUMN")):
            history.record_incident(record)
        records.save(from_record)
        history.record_incident(anomaly("sales-daily", 4, at=h(1), summary=ROWS_LOW))
        other.record_runs([cde_run("sales-daily", 3, "failed", h(3), h(2))])
        other.record_incident(failed("sales-daily", 3, "escalated", h(2), 60, "data", "UNRESOLVED_COLUMN",
                                     reason="the other cluster's"))
        engine = create_engine(database_url)
        try:
            with engine.begin() as conn:
                # sales-daily--3 as a row written before the history kept root causes: its record has it
                conn.execute(update(incidents).where(incidents.c.vc == VC, incidents.c.incident_id == "sales-daily--3")
                             .values(root_cause=None))
        finally:
            engine.dispose()
        yield history, other, records


def ask(history, name, records=None, **args):
    return run_tool(history, name, args, NOW, records=records)


# --- windows -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("window", "now", "start", "end"), [
    ("24h", NOW, h(24), NOW),
    ("24 hours", NOW, h(24), NOW),
    ("7d", NOW, NOW - timedelta(days=7), NOW),
    ("this_week", NOW, NOW - timedelta(days=7), NOW),
    ("this month", NOW, NOW - timedelta(days=30), NOW),
    ("today", NOW, datetime(2026, 3, 10, tzinfo=timezone.utc), NOW),
    ("yesterday", NOW, datetime(2026, 3, 9, tzinfo=timezone.utc), datetime(2026, 3, 10, tzinfo=timezone.utc)),
    ("last-night", NOW, datetime(2026, 3, 9, 18, tzinfo=timezone.utc), datetime(2026, 3, 10, 8, tzinfo=timezone.utc)),
    ("last night", datetime(2026, 3, 10, 6, 30, tzinfo=timezone.utc),  # still night: it ends now
     datetime(2026, 3, 9, 18, tzinfo=timezone.utc), datetime(2026, 3, 10, 6, 30, tzinfo=timezone.utc)),
])
def test_windows_are_the_docstring_table(window, now, start, end):
    found = span(window, now)
    assert (found.start, found.end) == (start, end)


@pytest.mark.parametrize("window", ["0h", "2161h", "0d", "91d", "fortnight", "", "-3d", "7 weeks"])
def test_windows_out_of_bounds_or_unknown_are_refused(window):
    with pytest.raises(ValueError, match="window"):
        span(window, NOW)
    with pytest.raises(ValidationError):
        TOOLS["mttr"].args(window=window)


def test_the_prompt_shows_the_docstring_table_and_every_tool():
    table = tools.window_table()
    assert table.splitlines()[0].startswith("the question says") and "last-night" in table
    assert table in "\n".join(line.strip() for line in tools.__doc__.splitlines())
    menu = tools.describe_tools()
    assert [line.split("(")[0][2:] for line in menu.splitlines()] == list(TOOLS)
    assert "window: window = 24h" in menu and "status: starting|running|succeeded|failed|killed|unknown" in menu


# --- arguments -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "args", "message"), [
    ("count_runs", {"job": "../etc/passwd"}, "is not a job name"),
    ("count_runs", {"job": " sales-daily"}, "is not a job name"),
    ("count_runs", {"status": "exploded"}, "status"),
    ("count_runs", {"category": "cosmic-rays"}, "category"),
    ("count_runs", {"limit": 3}, "Extra inputs"),
    ("list_runs", {"limit": 0}, "greater than or equal to 1"),
    ("top_failing_jobs", {"limit": 51}, "less than or equal to 50"),
    ("incident", {}, "either incident_id or job"),
    ("incident", {"incident_id": "sales-daily--3", "job": "sales-daily"}, "either incident_id or job"),
    ("incident", {"incident_id": "sales-daily-3"}, "an incident id is <job>--<run id>"),
])
def test_arguments_are_validated(name, args, message):
    with pytest.raises(ValidationError, match=message):
        TOOLS[name].args.model_validate(args)


def test_a_status_is_one_of_cde_s():
    from cde_client import RUN_TERMINAL_STATUSES

    assert set(tools.RunStatus.__args__) == {"starting", "running", *RUN_TERMINAL_STATUSES}


# --- the tools -----------------------------------------------------------------------------------


def test_count_runs_by_status_with_its_window_edges(lab):
    history, _, _ = lab
    found = ask(history, "count_runs")
    assert found.rows == [{"status": "failed", "runs": 3}, {"status": "killed", "runs": 1},
                          {"status": "running", "runs": 1}, {"status": "succeeded", "runs": 1}]
    assert found.text == ("6 runs of all jobs in the last 24 hours (2026-03-09 12:00 → 2026-03-10 12:00 UTC): "
                          "3 failed, 1 killed, 1 running, 1 succeeded.")
    (sql,) = found.sql
    assert f"runs.vc = '{VC}'" in sql and "GROUP BY runs.status" in sql
    assert "2026-03-09 12:00:00" in sql and "2026-03-10 12:00:00" in sql  # the window, inlined
    assert found.args == {"window": "24h"}

    sales = ask(history, "count_runs", job="sales-daily", status="failed", window="24 hours")
    assert sales.rows == [{"status": "failed", "runs": 1}]  # run 3 at the start: in; 2 before, 5 at the end: out
    assert sales.text.startswith("1 failed run of sales-daily in the last 24 hours (")
    assert "runs.job = 'sales-daily'" in sales.sql[0] and "runs.status = 'failed'" in sales.sql[0]
    assert ask(history, "count_runs", job="sales-daily", status="failed", window="7d").rows[0]["runs"] == 2
    transient = ask(history, "count_runs", status="failed", category="transient", window="7d")
    assert transient.rows == [{"status": "failed", "runs": 2}]
    assert transient.text.startswith("2 failed runs with failure category transient of all jobs in the last 7 days")
    assert ask(history, "count_runs", status="succeeded", window="30h").text.startswith("1 succeeded run of all")
    nothing = ask(history, "count_runs", job="sales-daily", status="killed")
    assert nothing.rows == [] and nothing.text.startswith("0 killed runs of sales-daily in the last 24 hours")


def test_list_runs_newest_first(lab):
    history, _, _ = lab
    found = ask(history, "list_runs", job="inventory-sync", window="24h", limit=3)
    assert [(r["run_id"], r["status"]) for r in found.rows] == [(13, "running"), (12, "killed"), (11, "failed")]
    assert found.rows[2] == {"job": "inventory-sync", "run_id": 11, "status": "failed", "started": "2026-03-10T09:00:00Z",
                             "ended": "2026-03-10T09:30:00Z", "duration_s": 1800.0,
                             "failure_condition": "CONCURRENT_QUERY", "failure_category": "transient",
                             "incident_id": "inventory-sync--11", "outcome": "healed"}
    lines = found.text.splitlines()
    assert lines[0].startswith("The 3 latest runs of inventory-sync in the last 24 hours")
    assert lines[1] == "- inventory-sync run 13 running, started 2026-03-10 11:48 UTC"
    assert lines[3] == ("- inventory-sync run 11 failed, ended 2026-03-10 09:30 UTC (CONCURRENT_QUERY, transient; "
                        "incident inventory-sync--11: healed)")
    assert "LIMIT 3" in found.sql[0]
    assert [r["run_id"] for r in ask(history, "list_runs", status="failed", window="30d").rows] == [11, 10, 3, 2]
    assert ask(history, "list_runs", job="nightly").text == "No runs of nightly in the last 7 days (" \
        "2026-03-03 12:00 → 2026-03-10 12:00 UTC)."


def test_incident_by_id_with_its_root_cause_from_the_record(lab):
    history, _, records = lab
    found = ask(history, "incident", records, incident_id="sales-daily--3")
    (row,) = found.rows
    assert (row["state"], row["attempts"], row["kind"], row["root_cause"]) == ("escalated", 1, "failure", ZERO)
    assert row["actions"] == [{"attempt": 1, "action": "rule-fix", "policy": "static", "verdict": ""}]
    assert found.text.splitlines()[:5] == [
        "Incident sales-daily--3 (failure) of sales-daily run 3: escalated after 1 attempt.",
        "Failed 2026-03-09 12:00 UTC; opened 2026-03-09 12:00 UTC; ended 2026-03-09 12:30 UTC.",
        "Failure: DIVIDE_BY_ZERO (code).",
        f"Root cause: {ZERO}",
        "Reason: attempts used up: the fix failed its pre-flight"]
    assert len(found.sql) == 2 and "incidents.incident_id = 'sales-daily--3'" in found.sql[0]
    assert "actions.incident_id = 'sales-daily--3'" in found.sql[1]
    assert ask(history, "incident", incident_id="sales-daily--3").rows[0]["root_cause"] is None  # no records given

    healed = ask(history, "incident", records, incident_id="inventory-sync--11")
    assert healed.rows[0]["recovery_s"] == 3000.0 and "recovered in 50 min (3000 s)" in healed.text
    latest = ask(history, "incident", records, job="sales-daily")  # the latest opened: run 5, still diagnosing
    assert (latest.rows[0]["incident_id"], latest.rows[0]["state"]) == ("sales-daily--5", "diagnosing")
    assert "not ended" in latest.text
    assert ask(history, "incident", incident_id="sales-daily--99").text == \
        "No incident sales-daily--99 in the run history."


def test_failures_grouped_by_cause(lab):
    history, _, records = lab
    found = ask(history, "failures_root_causes", records, window="24h")
    assert found.rows == [
        {"category": "transient", "condition": "CONCURRENT_QUERY", "failures": 2, "jobs": ["inventory-sync"],
         "incidents": ["inventory-sync--10", "inventory-sync--11"], "root_causes": [LOCKED]},
        {"category": "code", "condition": "DIVIDE_BY_ZERO", "failures": 1, "jobs": ["sales-daily"],
         "incidents": ["sales-daily--3"], "root_causes": [ZERO]},  # at the start: in; sales-daily--5 at the end: out
    ]
    assert found.text.splitlines() == [
        "3 failures in the last 24 hours (2026-03-09 12:00 → 2026-03-10 12:00 UTC), by cause:",
        "- transient / CONCURRENT_QUERY: 2 (inventory-sync)", f"  root cause: {LOCKED}",
        "- code / DIVIDE_BY_ZERO: 1 (sales-daily)", f"  root cause: {ZERO}"]
    assert all("incidents.kind = 'failure'" in sql for sql in found.sql)  # the anomaly is not a failure
    week = ask(history, "failures_root_causes", window="7d", job="sales-daily")
    assert [(g["condition"], g["failures"]) for g in week.rows] == [("DIVIDE_BY_ZERO", 1), ("UNRESOLVED_COLUMN", 1)]
    assert ask(history, "failures_root_causes", window="today", job="inventory-sync").rows[0]["failures"] == 2
    assert ask(history, "failures_root_causes", window="2h").text.startswith("No failures in the last 2 hours (")


def test_mttr_is_metrics_definition_over_healed_failures(lab):
    history, _, _ = lab
    week = ask(history, "mttr", window="7d")
    (row,) = week.rows
    # healed: 600, 1200, 3000 s; the escalated one is closed, not healed; the anomaly is no failure
    assert (row["closed"], row["healed"], row["escalated"]) == (4, 3, 1)
    assert (row["mttr_median_s"], row["mttr_p90_s"]) == (1200.0, 2640.0)
    assert row["recovery_s"] == {"sales-daily--2": 600.0, "inventory-sync--10": 1200.0, "inventory-sync--11": 3000.0}
    assert week.text == ("MTTR in the last 7 days (2026-03-03 12:00 → 2026-03-10 12:00 UTC): median 20 min "
                         "(1200 s), p90 44 min (2640 s), over 3 healed incidents (4 closed: 3 healed, 1 escalated).")
    day = ask(history, "mttr", window="24h").rows[0]  # sales-daily--2 ended before the 24 hours
    assert (day["healed"], day["mttr_median_s"], day["mttr_p90_s"]) == (2, 2100.0, 2820.0)
    sales = ask(history, "mttr", window="24h", job="sales-daily")
    assert sales.text.startswith("No failure of sales-daily was healed in the last 24 hours")
    assert sales.text.endswith("no MTTR (1 incident closed: 1 escalated).")


def test_top_failing_jobs(lab):
    history, _, _ = lab
    found = ask(history, "top_failing_jobs", window="7d")
    assert found.rows == [{"job": "inventory-sync", "failed": 2, "runs": 4},  # a tie: by name
                          {"job": "sales-daily", "failed": 2, "runs": 4}]  # run 5 ends now: out; fix job: never
    assert found.text.splitlines()[1:] == ["1. inventory-sync: 2 failed of 4 runs (50%)",
                                           "2. sales-daily: 2 failed of 4 runs (50%)"]
    assert ask(history, "top_failing_jobs", window="24h", limit=1).rows == [
        {"job": "inventory-sync", "failed": 2, "runs": 4}]
    assert ask(history, "top_failing_jobs", window="1h").text.startswith("No run failed in the last hour")


def test_escalations_and_anomalies(lab):
    history, _, records = lab
    found = ask(history, "escalations", records, window="7d")
    assert [(r["incident_id"], r["kind"], r["reason"], r["root_cause"], r["at"]) for r in found.rows] == [
        ("sales-daily--3", "failure", "attempts used up: the fix failed its pre-flight", ZERO, "2026-03-09T12:30:00Z")]
    assert found.text.splitlines() == [
        "1 incident was escalated in the last 7 days (2026-03-03 12:00 → 2026-03-10 12:00 UTC): sales-daily 1.",
        "- sales-daily run 3 (sales-daily--3), 2026-03-09 12:30 UTC, escalated after 1 attempt [DIVIDE_BY_ZERO, code]: "
        "attempts used up: the fix failed its pre-flight",
        f"  root cause: {ZERO}"]
    assert len(found.sql) == 2 and all("incidents.state = 'escalated'" in sql for sql in found.sql)
    assert ask(history, "escalations", window="7d", job="inventory-sync").text.startswith(
        "No incident of inventory-sync was escalated in the last 7 days (")

    anomalies = ask(history, "anomalies", window="7d")
    assert [(r["incident_id"], r["state"], r["at"], r["root_cause"]) for r in anomalies.rows] == [
        ("sales-daily--4", "flagged", "2026-03-10T11:00:00Z", ROWS_LOW)]  # at its run's end
    assert anomalies.text.startswith("1 anomaly in the last 7 days (2026-03-03 12:00 → 2026-03-10 12:00 UTC): "
                                     "sales-daily 1.")
    assert ask(history, "anomalies", window="24h", job="inventory-sync").rows == []


def test_each_cluster_sees_its_own_rows_only(lab):
    history, other, records = lab
    assert ask(other, "count_runs", status="failed").rows == [{"status": "failed", "runs": 1}]
    assert ask(history, "count_runs", job="sales-daily", status="failed").rows[0]["runs"] == 1  # not 2
    assert [r["condition"] for r in ask(other, "failures_root_causes").rows] == ["UNRESOLVED_COLUMN"]
    assert ask(other, "escalations").rows[0]["reason"] == "the other cluster's"
    assert ask(other, "incident", records, incident_id="inventory-sync--10").rows == []
    assert ask(other, "anomalies").rows == [] and ask(other, "mttr").rows[0]["closed"] == 1
    assert tools.known_jobs(history) == ["inventory-sync", "sales-daily"]  # the healer's fix job is not one
    assert tools.known_jobs(other) == ["sales-daily"]
    known, sql = tools.job_known(other, "inventory-sync")
    assert not known and f"'{OTHER_VC}'" in sql


def test_tools_only_read(lab):
    history, _, records = lab
    every = [ask(history, name, records, **({"job": "sales-daily"} if name == "incident" else {})) for name in TOOLS]
    assert all(sql.lstrip().upper().startswith("SELECT") for result in every for sql in result.sql)
    with history.reading() as conn, pytest.raises(TypeError, match="selects only"):
        tools._Reader(conn).rows(update(incidents).values(state="healed"))  # type: ignore[arg-type]
    assert ask(history, "count_runs").rows[0] == {"status": "failed", "runs": 3}


def test_now_must_be_aware(lab):
    history, _, _ = lab
    with pytest.raises(ValueError, match="aware"):
        run_tool(history, "mttr", {}, NOW.replace(tzinfo=None))

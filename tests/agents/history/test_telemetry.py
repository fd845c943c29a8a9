"""The run history's telemetry (migration 3): what succeeded runs did, the detector's verdicts, people's
labels, and incidents of kind anomaly, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import create_engine, text

from agents.history import RunHistory
from agents.history.migrations import LATEST
from agents.record import AnomalyEvidence, FailedRun, IncidentRecord
from tests.agents.history.records import T0, at, cde_run, diagnosis, incident, stamp
from tests.agents.history.test_store import V1, _by_hand

VC = "vc-1.cde-abc.example.com"


@pytest.fixture
def history(database_url):
    with RunHistory(database_url, vc=VC, secrets=("hunter2-secret",)) as opened:
        yield opened


def figures(rows: float) -> dict[str, float]:
    return {"rows_written": rows, "bytes_written": rows * 40, "duration_s": 12.0}


def test_telemetry_is_kept_per_run_with_its_end_time(history):
    history.record_runs([cde_run("sales", n, "succeeded", at(100 * n), at(100 * n + 50)) for n in (1, 2, 3)])
    for n in (1, 2, 3):
        history.record_telemetry("sales", n, figures(1000 * n), ["shop.daily"], complete=True)
    history.record_telemetry("other", 4, figures(5), [], complete=False)  # never listed: no end time

    asked = [("sales", 1), ("sales", 9), ("other", 4), ("other", 1)]
    assert {key for key in asked if history.telemetry_of(*key) is not None} == {("sales", 1), ("other", 4)}
    found = history.job_telemetry("sales")
    assert [(r.run_id, r.features["rows_written"], r.tables_written, r.ended) for r in found] == [
        (n, 1000.0 * n, ["shop.daily"], at(100 * n + 50)) for n in (1, 2, 3)]  # oldest first
    assert [r.run_id for r in history.job_telemetry("sales", limit=2)] == [2, 3]  # the last two
    assert [r.run_id for r in history.job_telemetry("sales", before_run=3)] == [1, 2]
    assert history.telemetry_of("other", 4).ended is None and not history.telemetry_of("other", 4).complete
    assert history.telemetry_of("sales", 7) is None

    history.record_telemetry("sales", 2, figures(7), [], complete=True)  # fetched again: replaced
    assert history.telemetry_of("sales", 2).features["rows_written"] == 7.0


def test_the_backlog_is_the_jobs_own_succeeded_runs_without_telemetry_oldest_first(history):
    history.record_runs([cde_run("sales", n, "succeeded", at(100 * n), at(100 * n + 50)) for n in (1, 2, 3, 4, 5)]
                        + [cde_run("sales", 6, "failed", at(600), at(650)),
                           cde_run("sales", 7, "running", at(700), None),
                           cde_run("sales-fix-1", 8, "succeeded", at(800), at(850))],
                        healer_runs={8})
    history.record_telemetry("sales", 2, figures(10), [], complete=True)  # read already
    history.record_telemetry("sales", 3, {}, [], complete=False)  # asked for: it had no event log
    assert [r.run_id for r in history.runs_without_telemetry(at(0), limit=10)] == [1, 4, 5]
    assert [r.run_id for r in history.runs_without_telemetry(at(0), limit=2)] == [1, 4]
    assert [r.run_id for r in history.runs_without_telemetry(at(160), limit=10)] == [4, 5]  # ended since


def test_a_verdict_and_a_label_stay_when_the_figures_are_fetched_again(history):
    history.record_telemetry("sales", 5, figures(0), ["shop.daily"], complete=True)
    assert history.telemetry_of("sales", 5).anomalous is None  # not judged yet
    history.judge_run("sales", 5, True, {"summary": "rows written 0"}, incident_id="sales--5")
    flagged = history.telemetry_of("sales", 5)
    assert (flagged.anomalous, flagged.judgement, flagged.incident_id, flagged.normal) == (
        True, {"summary": "rows written 0"}, "sales--5", False)

    history.label_run("sales", 5, "expected")
    history.record_telemetry("sales", 5, figures(0), ["shop.daily"], complete=True)
    again = history.telemetry_of("sales", 5)
    assert (again.anomalous, again.label, again.normal) == (True, "expected", True)  # a person called it normal
    with pytest.raises(ValueError, match="expected or dismissed"):
        history.label_run("sales", 5, "fine")


def anomaly(job: str, run_id: int, state: str) -> IncidentRecord:
    return IncidentRecord(
        incident_id=f"{job}--{run_id}", job=job, run_id=run_id, kind="anomaly", state=state,  # type: ignore[arg-type]
        reason="rows written 0", opened_at=stamp(at(60)), updated_at=stamp(at(120)),
        failed_run=FailedRun(id=run_id, job=job, status="succeeded", started=stamp(at(0)), ended=stamp(at(50))),
        anomaly=AnomalyEvidence(judgement={"summary": "rows written 0, where the job never wrote 0"}))


def test_anomaly_incidents_are_kept_apart_from_recovery_metrics(history):
    history.record_incident(incident("sales", 1, state="healed", failed_at=T0, ended_at=at(600),
                                     attempts=[_diagnosed()]))
    history.record_incident(anomaly("sales", 2, "dismissed"))
    with history.reading() as conn:
        kinds = dict(conn.execute(text("SELECT incident_id, kind FROM incidents")).all())
        causes = dict(conn.execute(text("SELECT incident_id, root_cause FROM incidents")).all())
        status = conn.execute(text("SELECT status FROM runs WHERE run_id = 2")).scalar()
    assert kinds == {"sales--1": "failure", "sales--2": "anomaly"}
    assert causes == {"sales--1": "a cause", "sales--2": "rows written 0, where the job never wrote 0"}
    assert status == "succeeded"
    totals = history.totals(30, now=T0 + timedelta(days=1))
    assert (totals.closed, totals.healed) == (1, 1)  # the dismissed anomaly is not a closed failure
    assert history.job_history("sales").last_escalated is False


def _diagnosed():
    from agents.record import Attempt

    return Attempt(number=1, diagnosis=diagnosis(), verdict="healed")


def test_a_version_1_database_gets_the_telemetry_table_and_incident_kinds(database_url):
    _by_hand(database_url, V1)
    with RunHistory(database_url, vc=VC) as history:
        assert (history.version_found, history.version) == (1, LATEST)
        assert history.incident("etl--7") is not None
        with history.reading() as conn:
            assert conn.execute(text("SELECT kind FROM incidents WHERE incident_id = 'etl--7'")).scalar() == "failure"
        history.record_telemetry("etl", 8, figures(3), [], complete=True)
        assert history.telemetry_of("etl", 8) is not None
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version FROM schema_version")).scalar() == LATEST
    finally:
        engine.dispose()

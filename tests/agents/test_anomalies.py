"""Silent failures through the watcher (`agents/anomalies.py`), against a local CDE in manual run mode:
succeeded runs ended by hand with their event logs (`driver/event`) written as Spark writes them. The
cycle fetches each new succeeded run's event log once, keeps its figures in the run history, judges it
against the job's good runs, and opens an `anomaly` incident (no patch) for a run that wrote nothing
where the job always wrote; a person's dismiss / expected / heal then ends it, moves the job's normal,
or heals it through the graph."""

from __future__ import annotations

import random

import pytest

from agents.config import Settings
from agents.errors import InvalidInput
from agents.healer import Healer
from agents.record import incident_id
from tests.fixtures.counting import CountingFront
from tests.fixtures.eventlogs import event_log

USER, PASSWORD = "anomaly-user", "anomaly-password-2468"
JOB = "sales-daily"


@pytest.fixture
def cde(local_cde_factory):
    cde = local_cde_factory(run_mode="manual", users={USER: PASSWORD})
    from cde_client import CdeClient

    with CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD) as client:
        client.create_resource("sales-app")
        client.upload_file("sales-app", "app.py", b"print('daily sales')\n")
        client.create_job({"name": JOB, "type": "spark", "mounts": [{"resourceName": "sales-app"}],
                           "spark": {"file": "app.py"}})
    return cde


def succeeded(cde, rows: int, bytes_per_row: float = 40.0, log: bool = True) -> int:
    run_id = cde.backend.run_job(JOB, {}, USER)
    if log:
        cde.backend.write_run_log(run_id, "driver/event", event_log(rows, int(rows * bytes_per_row),
                                                                    rows_read=rows * 3))
    cde.backend.set_run_status(run_id, "succeeded")
    return run_id


def ordinary_days(cde, days: int, seed: int = 7) -> list[int]:
    noise = random.Random(seed)
    return [succeeded(cde, int(10_000 * noise.uniform(0.85, 1.15))) for _ in range(days)]


@pytest.fixture
def healer(cde, tmp_path):
    settings = Settings.from_env({"JOBS_API_URL": cde.jobs_api_url, "WORKLOAD_USER": USER,
                                  "WORKLOAD_PASSWORD": PASSWORD, "HEALER_DATA_DIR": str(tmp_path / "healer")},
                                 dotenv=None)
    made = Healer(settings)
    yield made
    made.close()


def test_a_run_that_writes_nothing_opens_an_anomaly_and_ordinary_runs_none(cde, healer):
    ordinary = ordinary_days(cde, 12)
    empty = succeeded(cde, 0)
    flagged = healer.cycle()

    assert [(r.incident_id, r.kind, r.state) for r in flagged] == [(incident_id(JOB, empty), "anomaly", "flagged")]
    record = healer.records.load(incident_id(JOB, empty))
    judgement = record.anomaly.judgement
    assert judgement["anomalous"] and judgement["findings"][0]["feature"] in ("rows_written", "tables_written")
    assert "0" in judgement["summary"] and record.reason == judgement["summary"]
    assert record.failed_run.status == "succeeded" and record.attempts == []  # no patch, nothing run
    assert [point["run_id"] for point in record.anomaly.series] == [*ordinary, empty]
    assert [point["flagged"] for point in record.anomaly.series].count(True) == 1
    # every run's figures are kept, each judged once; only the empty one is anomalous
    rows = healer.history.job_telemetry(JOB)
    assert [r.run_id for r in rows] == [*ordinary, empty]
    assert [r.anomalous for r in rows] == [False] * 12 + [True]
    assert healer.open_incidents() == []  # a flagged anomaly waits for a person, not for the graph
    assert healer.history.incident(incident_id(JOB, empty)).state == "flagged"


def event_log_calls(front: CountingFront) -> int:
    return sum(r.path.endswith("/logs") and "event" in r.query for r in front.api_requests())


def test_each_event_log_is_asked_for_once_and_a_run_without_one_is_never_judged(cde, tmp_path):
    with CountingFront(cde) as front:
        settings = Settings.from_env({"JOBS_API_URL": front.jobs_api_url, "WORKLOAD_USER": USER,
                                      "WORKLOAD_PASSWORD": PASSWORD, "HEALER_DATA_DIR": str(tmp_path / "h")},
                                     dotenv=None)
        healer = Healer(settings)
        try:
            ordinary_days(cde, 4)
            silent = succeeded(cde, 10_000, log=False)  # event logs off on this cluster: not judged, no error
            assert healer.cycle() == []
            assert event_log_calls(front) == 5  # four logs read, one asked for and missing
            front.clear()
            assert healer.cycle() == []  # the overlap lists them again: none is asked for again
            assert event_log_calls(front) == 0
            assert any(r.path.endswith("/job-runs") for r in front.api_requests())  # it did list them
            missing = healer.history.telemetry_of(JOB, silent)
            assert (missing.complete, missing.features, missing.anomalous) == (False, {}, None)
        finally:
            healer.close()


def test_a_backlog_of_event_logs_is_read_over_several_cycles_oldest_first(cde, tmp_path):
    settings = Settings.from_env({"JOBS_API_URL": cde.jobs_api_url, "WORKLOAD_USER": USER,
                                  "WORKLOAD_PASSWORD": PASSWORD, "HEALER_DATA_DIR": str(tmp_path / "h"),
                                  "HEAL_ANOMALY_MAX_FETCH": "2"}, dotenv=None)
    healer = Healer(settings)
    try:
        days = ordinary_days(cde, 4)
        empty = succeeded(cde, 0)
        seen = []
        for _ in range(3):
            flagged = healer.cycle()
            seen.append([r.run_id for r in healer.history.job_telemetry(JOB)])
        assert seen == [days[:2], days, [*days, empty]]  # two a cycle, each judged against the ones before
        assert [r.run_id for r in flagged] == [empty]
    finally:
        healer.close()


def test_dismissed_and_expected_anomalies_teach_the_detector(cde, healer):
    ordinary_days(cde, 5)
    bigger = succeeded(cde, 100_000)  # ten times the usual: a new feed, as it turns out
    (first,) = healer.cycle()
    assert first.run_id == bigger and first.anomaly.judgement["method"] == "guard"

    ended = healer.decide_anomaly(first.incident_id, "expected")
    assert (ended.state, ended.anomaly.decision) == ("dismissed", "expected")
    assert "expected" in ended.reason
    assert healer.history.telemetry_of(JOB, bigger).label == "expected"
    # the new normal: the next big runs are judged against it and its successors, not the old days
    noise = random.Random(3)
    for _ in range(4):
        succeeded(cde, int(100_000 * noise.uniform(0.9, 1.1)))
    assert healer.cycle() == []
    with pytest.raises(InvalidInput, match="already decided"):
        healer.decide_anomaly(first.incident_id, "dismiss")

    empty = succeeded(cde, 0)
    (second,) = healer.cycle()
    assert second.run_id == empty
    healer.decide_anomaly(second.incident_id, "dismiss")
    assert healer.history.telemetry_of(JOB, empty).label == "dismissed"
    assert healer.history.totals(30).closed == 0  # anomalies are not failures in the recovery metrics


def test_heal_now_makes_the_anomaly_a_failure_incident_with_its_evidence(cde, healer):
    ordinary_days(cde, 4)
    empty = succeeded(cde, 0)
    (flagged,) = healer.cycle()
    healed = healer.decide_anomaly(flagged.incident_id, "heal")
    # no model configured: the graph reads the run and its evidence, no rule applies, and it escalates
    assert (healed.kind, healed.state, healed.anomaly.decision) == ("failure", "escalated", "heal")
    assert "no model is configured" in healed.reason
    assert healed.evidence.distilled.startswith("The run succeeded (exit 0) but did what the job's good runs")
    assert healed.run_id == empty and healed.original is not None  # the job's code was read to heal it


def test_an_unknown_or_failure_incident_cannot_be_decided_as_an_anomaly(cde, healer):
    with pytest.raises(InvalidInput, match="no incident"):
        healer.decide_anomaly(incident_id(JOB, 999), "dismiss")
    with pytest.raises(InvalidInput, match="dismissed, marked expected or healed"):
        healer.decide_anomaly(incident_id(JOB, 999), "ignore")

"""Silent failures: succeeded runs that did what the job's good runs never did.

Each monitor cycle, for every watched run that *succeeded* and is new to the run history's telemetry
(the healer's own runs excepted), the healer fetches the run's Spark event log (`driver/event`, one
call per new run: the only call detection adds to a cycle), keeps its figures in the history
(`agents/telemetry.py`), and judges them against the job's last good runs (`agents/anomaly`: robust
guards from 3 runs, a per-job Isolation Forest from HEAL_ANOMALY_MIN_HISTORY). A run judged
anomalous opens an incident of kind `anomaly` in state `flagged`: no patch, no redeploy; its evidence
(`AnomalyEvidence`) is the judgement, the run's figures and the job's recent runs for the plot. A
person then decides (`decide`):

- dismiss: a false alarm; the run counts as normal from now on (the detector learns from it);
- expected: a real change that is the new normal (a bigger feed); the runs after it are judged against
  it and the runs that follow it, not against the runs before it (the detector relearns: guards from
  3 such runs, the forest from HEAL_ANOMALY_MIN_HISTORY);
- heal: the incident becomes a failure incident and goes through the graph from log-fetch, its
  evidence saying what the run did wrong (the run exited 0, so there is no error to read).

A run without an event log (event logs turned off on the cluster) is skipped, never an error: it is
logged once per cycle with the count.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from agents.anomaly import derive, judge
from agents.config import Settings
from agents.errors import InvalidInput
from agents.history import RunHistory, TelemetryRow
from agents.record import (
    AnomalyDecision,
    AnomalyEvidence,
    FailedRun,
    IncidentRecord,
    RecordStore,
    incident_id,
)
from agents.telemetry import as_features, parse_event_log
from agents.times import utc_now, utc_stamp
from cde_client import CdeClient, CdeError, JobRun

log = logging.getLogger("healer.anomalies")

EVENT_LOG = "driver/event"
SERIES_RUNS = 30  # the job's runs the evidence keeps for the plot
SEED = 0  # the detector's: the same history judges a run the same way every time


@dataclass(frozen=True)
class TelemetryScan:
    fetched: int  # event logs read
    missing: int  # succeeded runs without one
    flagged: list[IncidentRecord]  # anomaly incidents opened


def scan_succeeded(client: CdeClient, settings: Settings, history: RunHistory, records: RecordStore,
                   listed: Iterable[JobRun], healer_runs: Iterable[int]) -> TelemetryScan:
    """Telemetry of the listed runs that succeeded and have none yet; a verdict on each; anomaly incidents."""
    mine = set(healer_runs)
    fresh = [run for run in listed if run.status == "succeeded" and run.id not in mine]
    known = history.with_telemetry((run.job, run.id) for run in fresh)
    fetched = missing = 0
    flagged = []
    for run in sorted(fresh, key=lambda r: r.id):
        if (run.job, run.id) in known:
            continue
        try:
            text = client.get_logs(run.id, EVENT_LOG)
        except CdeError:  # NotFound: no event log on this cluster; anything else: the next cycle's overlap
            missing += 1
            continue
        fetched += 1
        found = parse_event_log(text.splitlines())
        history.record_telemetry(run.job, run.id, as_features(found), found.tables_written, found.complete)
        record = judge_run(history, records, settings, run)
        if record is not None:
            flagged.append(record)
    if missing:
        log.info("%d succeeded runs have no %s log: not judged", missing, EVENT_LOG)
    return TelemetryScan(fetched=fetched, missing=missing, flagged=flagged)


def good_runs(history: RunHistory, job: str, before_run: int, window: int) -> list[TelemetryRow]:
    """The job's last `window` runs the detector may learn from, before `before_run`, oldest first: runs
    not flagged, and flagged runs a person called normal. A run marked expected starts a new normal:
    the runs before it are no longer what the job does."""
    found = [row for row in history.job_telemetry(job, limit=window * 3, before_run=before_run)
             if row.normal and row.complete]
    shifts = [i for i, row in enumerate(found) if row.label == "expected"]
    if shifts:
        found = found[shifts[-1]:]
    return found[-window:]


def judge_run(history: RunHistory, records: RecordStore, settings: Settings, run: JobRun) -> IncidentRecord | None:
    """Judges a run whose telemetry is recorded; opens its anomaly incident when it is one."""
    current = history.telemetry_of(run.job, run.id)
    if current is None or not current.complete:
        return None
    past = good_runs(history, run.job, run.id, settings.anomaly_window)
    judgement = judge([derive(row.features) for row in past], derive(current.features),
                      min_history=settings.anomaly_min_history, seed=SEED)
    if not judgement.anomalous:
        history.judge_run(run.job, run.id, False, judgement.to_dict())
        return None
    key = incident_id(run.job, run.id)
    record = records.load(key)
    if record is None:
        series = [{"run_id": row.run_id, "ended": utc_stamp(row.ended) if row.ended else None,
                   "features": derive(row.features), "flagged": False} for row in past[-(SERIES_RUNS - 1):]]
        series.append({"run_id": run.id, "ended": utc_stamp(run.ended) if run.ended else None,
                       "features": derive(current.features), "flagged": True})
        record = IncidentRecord(
            incident_id=key, job=run.job, run_id=run.id, kind="anomaly", state="flagged",
            mode=settings.heal_mode, reason=judgement.summary,  # type: ignore[arg-type]
            failed_run=FailedRun(id=run.id, job=run.job, status=run.status,
                                 started=utc_stamp(run.started) if run.started else None,
                                 ended=utc_stamp(run.ended) if run.ended else None, user=run.user),
            anomaly=AnomalyEvidence(judgement=judgement.to_dict(), features=derive(current.features), series=series))
        records.save(record)
    history.judge_run(run.job, run.id, True, judgement.to_dict(), incident_id=key)
    history.record_incident(record)
    return record


def decide(history: RunHistory, records: RecordStore, incident: str, decision: AnomalyDecision) -> IncidentRecord:
    """A person's choice on a flagged anomaly. dismiss and expected end it and teach the detector that
    the run is normal; heal turns it into a failure incident for the graph (the caller drives it)."""
    record = records.load(incident)
    if record is None:
        raise InvalidInput(f"no incident {incident!r}")
    if record.kind != "anomaly" or record.anomaly is None:
        raise InvalidInput(f"incident {incident!r} is not an anomaly")
    if record.state != "flagged":
        raise InvalidInput(f"anomaly {incident!r} was already decided ({record.state})")
    record.anomaly.decision = decision
    record.anomaly.decided_at = utc_now()
    if decision == "heal":
        record.kind = "failure"
        record.state = "open"
        record.reason = ""
    else:
        record.state = "dismissed"
        record.reason = ("dismissed: a false alarm" if decision == "dismiss"
                         else "marked as expected: the new normal") + f" ({record.anomaly.judgement.get('summary', '')})"
        history.label_run(record.job, record.run_id, "dismissed" if decision == "dismiss" else "expected")
    records.save(record)
    history.record_incident(record)
    return record


def evidence_text(record: IncidentRecord) -> str:
    """What a healed anomaly gives the diagnosis instead of an error: the run exited 0."""
    if record.anomaly is None:
        return ""
    judgement = record.anomaly.judgement
    lines = [f"The run succeeded (exit 0) but did what the job's good runs never did: {judgement.get('summary', '')}"]
    lines += [f"- {finding.get('why', '')}" for finding in judgement.get("findings", [])]
    return "\n".join(lines)

"""Silent failures: succeeded runs that did what the job's good runs never did.

Each monitor cycle, after its failures are healed, the healer takes the watched runs that *succeeded*
and have no telemetry yet from the run history (the cycle has just recorded what it listed; the
healer's own runs excepted), oldest first, at most HEAL_ANOMALY_MAX_FETCH a cycle (a first start
over a busy lookback catches up over several cycles instead of holding one for minutes), fetches
each one's Spark event log (`driver/event`, one call per run: the only calls detection adds to a
cycle), keeps its figures in the history (`agents/telemetry.py`), and judges them against the job's
last good runs (`agents/anomaly`: robust guards from 3 runs, a per-job Isolation Forest from
HEAL_ANOMALY_MIN_HISTORY; with HEAL_ANOMALY_ALIAS the registered version's parameters, given by the
healer as `parameters`). A run judged
anomalous opens an incident of kind `anomaly` in state `flagged`: no patch, no redeploy; its evidence
(`AnomalyEvidence`) is the judgement, the run's figures and the job's recent runs for the plot. A
person then decides (`decide`):

- dismiss: a false alarm; the run counts as normal from now on (the detector learns from it);
- expected: a real change that is the new normal (a bigger feed); the runs after it are judged against
  it and the runs that follow it, not against the runs before it (the detector relearns: guards from
  3 such runs, the forest from HEAL_ANOMALY_MIN_HISTORY);
- heal: the incident becomes a failure incident and goes through the graph from log-fetch, its
  evidence saying what the run did wrong (the run exited 0, so there is no error to read).

A run without an event log (event logs turned off on the cluster: NotFound) gets an incomplete
telemetry row, so it is asked for once, and is never judged; the cycle logs how many. Any other CDE
error leaves the run for the next cycle.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from agents.anomaly import DEFAULT_PARAMETERS, DetectorParameters, derive, judge
from agents.config import Settings
from agents.errors import InvalidInput
from agents.history import RunHistory, RunRow, TelemetryRow
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
from cde_client import CdeClient, CdeError, NotFound

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
                   parameters: DetectorParameters | None = None) -> TelemetryScan:
    """Telemetry of the recorded succeeded runs that have none yet (see the module's docstring), a
    verdict on each, anomaly incidents. `parameters`: the detector's (default: `detector_parameters`)."""
    since = datetime.now(timezone.utc) - timedelta(hours=settings.lookback_h)
    fetched = missing = 0
    flagged = []
    for run in history.runs_without_telemetry(since, settings.anomaly_max_fetch):
        try:
            text = client.get_logs(run.run_id, EVENT_LOG)
        except NotFound:  # event logs off on this cluster: asked for once, never judged
            missing += 1
            history.record_telemetry(run.job, run.run_id, {}, (), complete=False)
            continue
        except CdeError as exc:  # passes with time: the run stays without telemetry for the next cycle
            log.info("event log of run %s not read (%s); next cycle", run.run_id, exc)
            break
        fetched += 1
        found = parse_event_log(text.splitlines())
        features = as_features(found)
        history.record_telemetry(run.job, run.run_id, features, found.tables_written, found.complete)
        record = judge_run(history, records, settings, run, features, parameters) if found.complete else None
        if record is not None:
            flagged.append(record)
    if missing:
        log.info("%d succeeded runs have no %s log: not judged", missing, EVENT_LOG)
    return TelemetryScan(fetched=fetched, missing=missing, flagged=flagged)


def detector_parameters(settings: Settings) -> DetectorParameters:
    """The built-in parameters with HEAL_ANOMALY_MIN_HISTORY and HEAL_ANOMALY_WINDOW."""
    return replace(DEFAULT_PARAMETERS, min_history=settings.anomaly_min_history, window=settings.anomaly_window)


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


def judge_run(history: RunHistory, records: RecordStore, settings: Settings, run: RunRow,
              features: Mapping[str, float], parameters: DetectorParameters | None = None) -> IncidentRecord | None:
    """Judges a run whose telemetry (`features`, from a complete event log) is recorded; opens its
    anomaly incident when it is one."""
    p = parameters or detector_parameters(settings)
    past = good_runs(history, run.job, run.run_id, p.window)
    past_figures = [derive(row.features) for row in past]
    figures = derive(features)
    judgement = judge(past_figures, figures, seed=SEED, parameters=p)
    if not judgement.anomalous:
        history.judge_run(run.job, run.run_id, False, judgement.to_dict())
        return None
    key = incident_id(run.job, run.run_id)
    record = records.load(key)
    if record is None:
        series = [{"run_id": row.run_id, "ended": _stamp(row.ended), "features": row_figures, "flagged": False}
                  for row, row_figures in list(zip(past, past_figures, strict=True))[-(SERIES_RUNS - 1):]]
        series.append({"run_id": run.run_id, "ended": _stamp(run.ended), "features": figures, "flagged": True})
        record = IncidentRecord(
            incident_id=key, job=run.job, run_id=run.run_id, kind="anomaly", state="flagged",
            mode=settings.heal_mode, reason=judgement.summary,  # type: ignore[arg-type]
            failed_run=FailedRun(id=run.run_id, job=run.job, status=run.status, started=_stamp(run.started),
                                 ended=_stamp(run.ended)),
            anomaly=AnomalyEvidence(judgement=judgement.to_dict(), features=figures, series=series))
        records.save(record)
    history.judge_run(run.job, run.run_id, True, judgement.to_dict(), incident_id=key)
    history.record_incident(record)
    return record


def _stamp(moment: datetime | None) -> str | None:
    return utc_stamp(moment) if moment else None


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

"""The run history's rows, made from what CDE listed and from incident records (pure).

A run's row comes from CDE's run object: its status, times and the resources its effective Spark
spec names. An incident's row and the rows of its attempts' actions come from its record:

- the action of an attempt is `Attempt.policy.action`; records made before the policy existed get
  the one the static order took: `rerun` for a re-run patch, `rule-fix` for a rule's code or config
  fix, `model-patch` for the model's, `escalate` when the attempt ended without a patch. An attempt
  of an open incident with neither a policy choice nor a patch has no action yet (no row).
- its cluster seconds are the runs it started, start to end as CDE reports them: the fix run, every
  pre-flight (each candidate's), the checks (of the fix and of the sandbox) and the measurement of
  the production outputs; runs still going count when they end.
- its model cost is the record's model calls of that attempt: tokens as the endpoint reported them
  (prompt + completion; the offline estimate of the prompt when it reported no usage), and seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from agents.record import Attempt, IncidentRecord
from agents.redact import redact
from cde_client import JobRun

# what a run's effective Spark spec says of the resources it was given
RESOURCE_KEYS = ("driverMemory", "executorMemory", "driverCores", "executorCores", "numExecutors")
ACTION_ROW_TEXT = ("reason", "overridden", "verdict")  # written redacted


def moment(stamp: str | None) -> datetime | None:
    """A record's UTC stamp (`...Z`) as an aware datetime; None when absent or unreadable."""
    if not stamp:
        return None
    try:
        parsed = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def resources(spec: dict[str, Any]) -> dict[str, Any]:
    """The resources a run's Spark spec names (those it names)."""
    return {key: spec[key] for key in RESOURCE_KEYS if spec.get(key) not in (None, "")}


def run_row(vc: str, run: JobRun, healer_run: bool, now: datetime) -> dict[str, Any]:
    duration = None
    if run.started is not None and run.ended is not None and run.ended >= run.started:
        duration = round((run.ended - run.started).total_seconds(), 3)
    return {"vc": vc, "job": run.job, "run_id": run.id, "status": run.status, "started": run.started,
            "ended": run.ended, "duration_s": duration, "resources": as_json(resources(run.spec)),
            "healer_run": healer_run, "recorded_at": now}


def static_action(attempt: Attempt) -> str:
    """The action the static order took in an attempt recorded before the policy choice existed."""
    patch = attempt.patch
    if patch is None:
        return "escalate"
    if patch.kind == "rerun":
        return "rerun"
    return "rule-fix" if patch.source == "rule" else "model-patch"


def cluster_seconds(attempt: Attempt) -> float:
    """Seconds of every run the attempt started, start to end (those not yet ended count 0)."""
    # each candidate's pre-flight once: the current one's live copy (the attempt's) over its entry's
    found = [c.preflight for c in attempt.candidates] + [attempt.preflight]
    preflights = {p.job: p for p in found if p is not None}
    seconds = [attempt.fix_run_duration_s, attempt.check_run_duration_s, attempt.production_stats_duration_s]
    for preflight in preflights.values():
        seconds += [preflight.duration_s, preflight.check_duration_s]
    return round(sum(s for s in seconds if s), 3)


def model_cost(record: IncidentRecord, number: int) -> tuple[int, float]:
    """(tokens, seconds) of the model calls made for attempt `number` (calls before any attempt: the first's)."""
    tokens, seconds = 0, 0.0
    for call in record.llm_calls:
        if max(call.attempt, 1) != number:
            continue
        prompt = call.prompt_tokens if call.prompt_tokens is not None else call.estimated_prompt_tokens
        tokens += prompt + (call.completion_tokens or 0)
        seconds += call.latency_s
    return tokens, round(seconds, 3)


def attempt_span(record: IncidentRecord, number: int) -> tuple[datetime | None, datetime | None]:
    """The first start and the last end of the attempt's stages."""
    starts = [m for t in record.stages if t.attempt == number if (m := moment(t.started))]
    ends = [m for t in record.stages if t.attempt == number if (m := moment(t.ended))]
    return (min(starts) if starts else None), (max(ends) if ends else None)


def failure(record: IncidentRecord) -> tuple[str | None, str | None]:
    """The failed run's error condition and category, from the first attempt's diagnosis (else the evidence)."""
    first = record.attempts[0] if record.attempts else None
    diagnosis = first.diagnosis if first and first.diagnosis else (first.rule_finding if first else None)
    condition = (diagnosis.condition if diagnosis else None) or (record.evidence.error_class if record.evidence else None)
    category = diagnosis.category if diagnosis else None
    return condition, category


def root_cause(record: IncidentRecord) -> str | None:
    """What the incident found: the last diagnosis's root cause (an anomaly's: the detector's summary)."""
    if record.kind == "anomaly":
        return record.anomaly.judgement.get("summary") if record.anomaly else None
    diagnosed = [a.diagnosis or a.rule_finding for a in record.attempts if a.diagnosis or a.rule_finding]
    return diagnosed[-1].root_cause if diagnosed else None


def incident_row(vc: str, record: IncidentRecord, secrets: Iterable[str]) -> dict[str, Any]:
    condition, category = failure(record)
    cause = root_cause(record)
    opened = moment(record.opened_at) or datetime.now(timezone.utc)
    updated = moment(record.updated_at) or opened
    return {"vc": vc, "incident_id": record.incident_id, "job": record.job, "run_id": record.run_id,
            "failed_at": moment(record.failed_run.ended), "opened_at": opened,
            "ended_at": updated if record.is_terminal else None, "state": record.state,
            "attempts": len(record.attempts), "reason": redact(record.reason, secrets),
            "failure_condition": condition, "failure_category": category, "mode": record.mode,
            "model": record.model, "updated_at": updated, "kind": record.kind,
            "root_cause": redact(cause, secrets) if cause else None}


def failed_run_row(vc: str, record: IncidentRecord, now: datetime) -> dict[str, Any]:
    """The incident's run's row as the incident knows it (the watcher's listing, when it saw the run,
    has more); an anomaly's run is a succeeded one."""
    run = record.failed_run
    condition, category = failure(record)
    started, ended = moment(run.started), moment(run.ended)
    duration = round((ended - started).total_seconds(), 3) if started and ended and ended >= started else None
    return {"vc": vc, "job": record.job, "run_id": record.run_id, "status": run.status or "failed",
            "started": started, "ended": ended, "duration_s": duration, "resources": None,
            "failure_condition": condition, "failure_category": category, "incident_id": record.incident_id,
            "outcome": record.state, "healer_run": False, "recorded_at": now}


def action_rows(vc: str, record: IncidentRecord, secrets: Iterable[str]) -> list[dict[str, Any]]:
    """One row per attempt whose action is known."""
    rows = []
    secrets = tuple(secrets)
    for attempt in record.attempts:
        choice = attempt.policy
        if choice is None and attempt.patch is None and not record.is_terminal and attempt is record.latest_attempt:
            continue  # still being diagnosed: no action taken yet
        tokens, seconds = model_cost(record, attempt.number)
        started, ended = attempt_span(record, attempt.number)
        row = {"vc": vc, "incident_id": record.incident_id, "attempt": attempt.number,
               "action": choice.action if choice else static_action(attempt),
               "policy": choice.policy if choice else "static",
               "reason": choice.reason if choice else "", "overridden": choice.overridden if choice else "",
               "q_values": as_json(choice.q_values if choice else {}), "verdict": attempt.verdict,
               "cluster_s": cluster_seconds(attempt), "model_tokens": tokens, "model_s": seconds,
               "started": started, "ended": ended}
        rows.append({k: redact(v, secrets) if k in ACTION_ROW_TEXT else v for k, v in row.items()})
    return rows

"""monitor: find failed runs that have no incident yet, and open an incident for one.

One list call per cycle covers every watched job. Runs of jobs the healer created (fix jobs, their
pre-flights in the sandbox, output checks) are never new incidents: their own incident verifies them.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from langgraph.graph import END
from langgraph.types import Command

from agents.config import Settings
from agents.errors import InvalidInput
from agents.fixjobs import PREFLIGHT_SUFFIX
from agents.record import FailedRun, IncidentRecord, RecordStore, incident_id
from agents.state import Deps, HealState
from agents.times import utc_stamp
from cde_client import CdeClient, JobRun

# `<job>-fix-<n>`, and its sandbox runs `<job>-fix-<n>-preflight`, `<job>-fix-<n>-check-preflight`
FIX_JOB_PATTERN = re.compile(r"-fix-\d+(?:(?:-[\w.]+)*" + re.escape(PREFLIGHT_SUFFIX) + r")?$")


def healer_owned(job: str, check_suffix: str) -> bool:
    """Jobs the healer creates or runs for verification, by their names."""
    return bool(FIX_JOB_PATTERN.search(job)) or job.endswith(check_suffix)


def find_new_failures(client: CdeClient, settings: Settings, records: RecordStore) -> list[JobRun]:
    """Failed runs of watched jobs, oldest first, that have no incident. One list call."""
    since = datetime.now(timezone.utc) - timedelta(hours=settings.lookback_h)
    filters = ["status[eq]failed", f"started[gte]{since.strftime('%Y-%m-%dT%H:%M:%S')}"]
    if settings.watched_jobs:
        filters.append("job[in]" + ",".join(settings.watched_jobs))
    runs = client.list_runs(filters=filters, order_by="ID", ascending=True)
    own_runs = {run_id for record in records.all() for run_id in _runs_started_by(record)}
    fresh = [
        run for run in runs
        if settings.watches(run.job)
        and not healer_owned(run.job, settings.check_job_suffix)
        and run.id not in own_runs
        and not records.exists(incident_id(run.job, run.id))
    ]
    return fresh[: settings.max_new_incidents_per_cycle]


def _runs_started_by(record: IncidentRecord) -> list[int]:
    runs = [(a.fix_run_id, a.check_run_id, a.production_stats_run_id) for a in record.attempts]
    runs += [(a.preflight.run_id, a.preflight.check_run_id) for a in record.attempts if a.preflight]
    runs += [(c.preflight.run_id, c.preflight.check_run_id) for a in record.attempts for c in a.candidates
             if c.preflight]
    return [rid for group in runs for rid in group if rid is not None]


def open_incident(records: RecordStore, client: CdeClient, job: str, run_id: int, *,
                  mode: str, model: str | None) -> IncidentRecord:
    """Creates the incident's record, once. An existing record is returned unchanged."""
    key = incident_id(job, run_id)
    existing = records.load(key)
    if existing is not None:
        return existing
    run = client.get_run(run_id)
    if run.job != job:
        raise InvalidInput(f"run {run_id} belongs to job {run.job!r}, not {job!r}")
    if run.status != "failed":
        raise InvalidInput(f"run {run_id} of job {job!r} is {run.status!r}; only failed runs are healed")
    record = IncidentRecord(
        incident_id=key, job=job, run_id=run_id, mode=mode, model=model,  # type: ignore[arg-type]
        failed_run=FailedRun(id=run.id, job=run.job, status=run.status, started=_iso(run.started),
                             ended=_iso(run.ended), user=run.user),
    )
    records.save(record)
    return record


def _iso(moment: datetime | None) -> str | None:
    return utc_stamp(moment) if moment else None


def monitor(state: HealState, deps: Deps, record: IncidentRecord) -> Command:
    """First node of every incident: a finished incident is never healed again."""
    if record.is_terminal:
        return Command(goto=END, update={"outcome": record.state, "reason": record.reason})
    return Command(goto="log_fetch", update={
        "attempt": state.get("attempt") or 1,
        "analyzed_run_id": state.get("analyzed_run_id") or state["run_id"],
        "feedback": state.get("feedback", ""),
    })

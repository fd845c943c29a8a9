"""monitor: find failed runs that have no incident yet, and open an incident for one.

One list call per cycle covers every watched job: the runs, whatever their status, that *ended*
since the watcher's cursor (`agents/watch_cursor.py`) less `HEAL_WATCH_OVERLAP_S`, or within
`HEAL_LOOKBACK_H` when there is no cursor or it is older. More pages are read only when more runs
than a page match. Every run listed goes to the run history (`FailureScan.listed`, recorded by the
healer); the failed ones are the candidates for incidents. Runs listed again in the overlap already
have incidents: the index answers that (`RecordStore.known`), no record is read. Runs of jobs the
healer created (fix jobs, their pre-flights in the sandbox, output checks) and runs it started are
never new incidents: their own incident verifies them (the history marks them `healer_runs`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class FailureScan:
    """One cycle's look at the runs that ended."""

    runs: list[JobRun]  # the failures to open incidents for now, earliest end first
    cursor: datetime | None  # where the next cycle starts once these have incidents (None: no run seen yet)
    listed: list[JobRun] = field(default_factory=list)  # every watched job's run that ended: for the run history
    healer_runs: frozenset[int] = frozenset()  # those of `listed` the healer created or started


def list_since(settings: Settings, cursor: datetime | None, now: datetime | None = None) -> datetime:
    """The earliest end time the next list asks for: the cursor less the overlap, never before the lookback."""
    lookback = (now or datetime.now(timezone.utc)) - timedelta(hours=settings.lookback_h)
    if cursor is None:
        return lookback
    return max(cursor - timedelta(seconds=settings.watch_overlap_s), lookback)


def scan_failures(client: CdeClient, settings: Settings, records: RecordStore,
                  cursor: datetime | None = None) -> FailureScan:
    """The watched jobs' runs that ended since `cursor` (see `list_since`), and the failed ones among
    them that have no incident."""
    since = list_since(settings, cursor)
    filters = [f"ended[gte]{since.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%S')}"]
    if settings.watched_jobs:
        filters.append("job[in]" + ",".join(settings.watched_jobs))
    runs = [run for run in client.list_runs(filters=filters, order_by="ID", ascending=True) if run.ended]
    watched = [run for run in runs if settings.watches(run.job)]
    by_name = {run.id for run in watched if healer_owned(run.job, settings.check_job_suffix)}
    healer_runs = by_name | records.started_by_healer(run.id for run in watched if run.id not in by_name)
    candidates = [run for run in watched if run.status == "failed" and run.id not in healer_runs]
    known = records.known(incident_id(run.job, run.id) for run in candidates)
    fresh = sorted((run for run in candidates if incident_id(run.job, run.id) not in known),
                   key=lambda run: (run.ended, run.id))
    cap = settings.max_new_incidents_per_cycle
    if len(fresh) > cap:  # the rest wait for the next cycle, which lists again from the first of them
        next_cursor: datetime | None = fresh[cap].ended
    else:
        ends = [run.ended for run in runs if run.ended] + ([cursor] if cursor else [])
        next_cursor = max(ends) if ends else None
    return FailureScan(runs=fresh[:cap], cursor=next_cursor, listed=watched, healer_runs=frozenset(healer_runs))


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
    record.environment, record.proven_in = deps.home, (deps.proving if deps.promotes else None)
    return Command(goto="log_fetch", update={
        "attempt": state.get("attempt") or 1,
        "analyzed_run_id": state.get("analyzed_run_id") or state["run_id"],
        "feedback": state.get("feedback", ""),
    })

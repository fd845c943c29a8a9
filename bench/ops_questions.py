"""`python -m bench ops [--db FILE] [--cli] [--limit N]`: operators' questions over a generated run
history, answered by `agents.ops.ask` without a model (the patterns) and through the scripted model,
each answer checked against facts this module knows from what it generated. In process by default;
with `--cli` each question goes through the real command line, `python -m app ask "..." --json`, one
process per question (see "through the command line" below).

The history is deterministic: five jobs on fixed schedules over the 14 days before `NOW`, the
failures of `FAILURES` (conditions, categories, incidents healed, escalated, rejected or still open,
with reasons and root causes; two failed runs never got an incident), the healer's own fix runs
(never counted), and two anomalies. It is written through `RunHistory`'s writers (`record_runs`,
`record_incident`) and the incidents' records through `RecordStore`; one older incident's row has
its root cause removed, as written before the history kept it, so its answer comes from the record.

The expected answers (`questions`) are computed here from the plan with plain Python and the windows
spelled as moments (`windows`: at `NOW`, today is March 16 00:00 to 09:30), never by calling the tools,
so a wrong SQL filter or window shows as a wrong answer.
Each question says whether the patterns must answer it, and what the scripted model answers: the
choice a good model makes, or, for a few, a wrong one (an unknown tool, a bad window, a misspelt
job, one corrected after a re-ask) whose validation and fall-back the answer must show.

Through the command line, the CLI answers at the real time, not at `NOW`: the history is generated
moved by whole seconds so that its `NOW` is the moment it is generated (`Plan.shift`), and each
question's expected answers are computed at the moment it is asked. The relative windows (24h, 7d,
30d, ...) then cover the same runs as in process (no run or incident is within 2 hours after the
start of one at `NOW`, so the minutes the questions take and the seconds each process needs before it
reads the clock move nothing); the calendar ones (today, yesterday, last night, UTC) cut the moved
history where the real day's midnight falls, so their expected figures depend on the time of day of
the run and can differ from the in-process ones. A question whose process starts just before
midnight UTC and reads the clock after it is graded against the wrong day. The CLI gets the
settings of this history only (`cli_environment`): none is inherited.

Exit status: 0 when every answer is right, 1 when any is wrong, 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import create_engine, update

from agents.config import table
from agents.history import RunHistory
from agents.history.schema import incidents
from agents.llm import HealerLLM
from agents.ops import Answer, ask
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
from bench.errors import BenchUsageError
from bench.scripted_llm import ScriptedLLM
from cde_client import JobRun

UTC = timezone.utc
NOW = datetime(2026, 3, 16, 9, 30, tzinfo=UTC)  # a Monday morning
VC = "ops-bench.cde.example.com"
FIRST_DAY = date(2026, 3, 2)
FIRST_RUN_ID = 1001
REPO = Path(__file__).resolve().parent.parent
SCRIPTED_MODEL, SCRIPTED_KEY, MODEL_TIMEOUT_S = "scripted", "ops-bench-model-key", 10  # the scripted model's client
CLI_TIMEOUT_S = 120  # one `python -m app ask` process at most


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """March `day`, 2026, at hour:minute UTC."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


# --- what is generated ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    job: str
    hours: tuple[int, ...]  # UTC hours its runs start at, every day
    minute: int
    duration_min: int


SCHEDULES = (
    Schedule("sales-daily", (1,), 0, 25),
    Schedule("clickstream-daily-users", (2,), 30, 40),
    Schedule("inventory-sync", (0, 6, 12, 18), 0, 10),
    Schedule("payments-reconcile", (22,), 0, 15),
    Schedule("marketing-attribution", (5,), 0, 30),
)
STILL_RUNNING = ("marketing-attribution", at(16, 5))  # today's run has not ended


@dataclass(frozen=True)
class Failure:
    """A run that failed (or was killed) and what the healer made of it (`state` None: no incident)."""

    job: str
    start: datetime
    state: str | None
    category: str | None = None
    condition: str | None = None
    root_cause: str | None = None
    reason: str = ""
    after_s: float = 0  # from the failure to the incident's end
    actions: tuple[str, ...] = ()  # the action of each attempt
    status: str = "failed"


COLUMN = "The report selects customer_id; the orders table renamed it to account_id."
SHARE = "The daily share divides by the count of returns, which is zero on days without returns."
MEMORY = "Executors ran out of memory joining the full ledger; executorMemory was raised to 8g."
LOCK = "Another run of the same query held the table; a re-run succeeded."
FEED = "The supplier feed for the 18:00 sync was not delivered."
PARTITION = "The input partition dt=2026-03-11 does not exist."

FAILURES = (
    Failure("sales-daily", at(5, 1), "healed", "config", "INTERNAL_ERROR_MEMORY", MEMORY,
            "sales-daily-fix-1 succeeded; outputs match the last good run", 2400, ("raise-resources",)),
    Failure("sales-daily", at(10, 1), "escalated", "code", "DIVIDE_BY_ZERO", SHARE,
            "attempts used up: both fixes failed their pre-flight", 5400, ("model-patch", "model-patch")),
    Failure("sales-daily", at(13, 1), "rejected", "config", "INTERNAL_ERROR_MEMORY", MEMORY,
            "rejected by alice: no more memory before the ledger migration", 7200, ("raise-resources",)),
    Failure("sales-daily", at(15, 1), "healed", "code", "UNRESOLVED_COLUMN", COLUMN,
            "sales-daily-fix-1 succeeded; outputs match the last good run", 1200, ("rule-fix",)),
    Failure("sales-daily", at(16, 1), "healed", "code", "UNRESOLVED_COLUMN", COLUMN,
            "sales-daily-fix-1 succeeded; outputs match the last good run", 900, ("rule-fix",)),
    Failure("clickstream-daily-users", at(3, 2, 30), "escalated", "code", "DIVIDE_BY_ZERO", SHARE,
            "attempts used up: the fix failed its data comparison", 3600, ("model-patch", "model-patch")),
    Failure("clickstream-daily-users", at(12, 2, 30), "escalated", "data", "PATH_NOT_FOUND", PARTITION,
            "not healable by a code or configuration change (data): the input partition is missing", 300, ("escalate",)),
    Failure("clickstream-daily-users", at(16, 2, 30), "healed", "transient", "CONCURRENT_QUERY", LOCK,
            "the re-run succeeded", 600, ("rerun",)),
    Failure("inventory-sync", at(9, 12), "healed", "code", "UNRESOLVED_COLUMN", COLUMN,
            "inventory-sync-fix-1 succeeded; outputs match the last good run", 1800, ("model-patch",)),
    Failure("inventory-sync", at(14, 12), "healed", "transient", "CONCURRENT_QUERY", LOCK,
            "the re-run succeeded", 420, ("rerun",)),
    Failure("inventory-sync", at(15, 18), "escalated", "data", "PATH_NOT_FOUND", FEED,
            "not healable by a code or configuration change (data): the supplier feed is missing", 240, ("escalate",)),
    Failure("inventory-sync", at(16, 0), "healed", "transient", "CONCURRENT_QUERY", LOCK,
            "the re-run succeeded", 300, ("rerun",)),
    Failure("inventory-sync", at(16, 6), "diagnosing"),  # open: not diagnosed yet
    Failure("payments-reconcile", at(5, 22), None, status="killed"),  # killed by its owner: no incident
    Failure("payments-reconcile", at(8, 22), None),  # failed while the healer was paused: no incident
    Failure("payments-reconcile", at(15, 22), "healed", "config", "INTERNAL_ERROR_MEMORY", MEMORY,
            "payments-reconcile-fix-1 succeeded; outputs match the last good run", 1500, ("raise-resources",)),
)
OLD_ROW = ("sales-daily", at(5, 1))  # its incidents row predates the root_cause column: the record has it


@dataclass(frozen=True)
class Anomaly:
    job: str
    start: datetime  # of the succeeded run the detector flagged
    state: str  # flagged (waiting for a person) | dismissed
    summary: str
    reason: str = ""
    after_s: float = 0


ANOMALIES = (
    Anomaly("marketing-attribution", at(11, 5), "dismissed", "the run took 4.1 times its usual duration",
            "dismissed by bob: the quarterly backfill ran alongside", 3600),
    Anomaly("clickstream-daily-users", at(14, 2, 30), "flagged", "rows written 82% below the job's usual"),
)


@dataclass(frozen=True)
class Run:
    job: str
    run_id: int
    status: str
    started: datetime
    ended: datetime | None
    healer: bool = False
    category: str | None = None

    @property
    def moment(self) -> datetime:
        return self.ended or self.started


@dataclass(frozen=True)
class Incident:
    incident_id: str
    job: str
    run_id: int
    kind: str
    state: str
    failed_at: datetime
    ended_at: datetime | None
    attempts: int
    reason: str
    category: str | None
    condition: str | None
    root_cause: str | None


@dataclass(frozen=True)
class Plan:
    runs: tuple[Run, ...]
    incidents: tuple[Incident, ...]
    shift: timedelta = timedelta(0)  # how much later than the dates written here every moment is

    @property
    def now(self) -> datetime:
        return NOW + self.shift

    @property
    def jobs(self) -> list[str]:
        return sorted({r.job for r in self.runs if not r.healer})

    def incident_of(self, job: str, start: datetime) -> Incident:
        """The incident of `job`'s run started at `start`, a date as written here (before the shift)."""
        run = next(r for r in self.runs if r.job == job and r.started == start + self.shift and not r.healer)
        return next(i for i in self.incidents if i.run_id == run.run_id)

    def moved(self, by: timedelta) -> Plan:
        """The same plan with every moment `by` later."""
        def later(moment: datetime | None) -> datetime | None:
            return None if moment is None else moment + by

        return Plan(tuple(replace(r, started=r.started + by, ended=later(r.ended)) for r in self.runs),
                    tuple(replace(i, failed_at=i.failed_at + by, ended_at=later(i.ended_at)) for i in self.incidents),
                    self.shift + by)


def plan() -> Plan:
    """Every run and incident the history will hold, in the order they happened."""
    failures = {(f.job, f.start): f for f in FAILURES}
    anomalies = {(a.job, a.start): a for a in ANOMALIES}
    starts = []
    for day in range((NOW.date() - FIRST_DAY).days + 1):
        when = FIRST_DAY + timedelta(days=day)
        for schedule in SCHEDULES:
            for hour in schedule.hours:
                start = datetime(when.year, when.month, when.day, hour, schedule.minute, tzinfo=UTC)
                if start < NOW:
                    starts.append((start, schedule))
    runs: list[Run] = []
    found: list[Incident] = []
    next_id = FIRST_RUN_ID
    for start, schedule in sorted(starts, key=lambda s: (s[0], s[1].job)):
        end = None if (schedule.job, start) == STILL_RUNNING else start + timedelta(minutes=schedule.duration_min)
        failure = failures.get((schedule.job, start))
        run_id, next_id = next_id, next_id + 1
        runs.append(Run(schedule.job, run_id, failure.status if failure else "running" if end is None else "succeeded",
                        start, end, category=failure.category if failure else None))
        incident_id = f"{schedule.job}--{run_id}"
        if failure and failure.state:
            assert end is not None
            ended = end + timedelta(seconds=failure.after_s) if failure.state != "diagnosing" else None
            found.append(Incident(incident_id, schedule.job, run_id, "failure", failure.state, end, ended,
                                  max(1, len(failure.actions)), failure.reason, failure.category, failure.condition,
                                  failure.root_cause))
            if ended is not None:  # the healer's fix run: its own job, never counted
                runs.append(Run(f"{schedule.job}-fix-1", next_id, "succeeded" if failure.state == "healed" else "failed",
                                end + timedelta(seconds=60), ended - timedelta(seconds=30), healer=True))
                next_id += 1
        if (anomaly := anomalies.get((schedule.job, start))) is not None:
            assert end is not None
            ended = end + timedelta(seconds=anomaly.after_s) if anomaly.state == "dismissed" else None
            found.append(Incident(incident_id, schedule.job, run_id, "anomaly", anomaly.state, end, ended, 0,
                                  anomaly.reason, None, None, anomaly.summary))
    return Plan(tuple(runs), tuple(found))


# --- writing it -----------------------------------------------------------------------------------


def _stamp(moment: datetime | None) -> str | None:
    return moment.strftime(UTC_PRECISE) if moment else None


def _job_run(run: Run) -> JobRun:
    raw: dict[str, Any] = {"id": run.run_id, "job": run.job, "type": "spark", "status": run.status, "user": "etl",
                           "started": run.started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                           "spark": {"spec": {"file": "app.py", "driverMemory": "2g", "executorMemory": "4g"}}}
    if run.ended is not None:
        raw["ended"] = run.ended.strftime("%Y-%m-%dT%H:%M:%SZ")
    return JobRun.from_api(raw)


def _record(incident: Incident, run: Run, failure: Failure | None) -> IncidentRecord:
    """The record the healer would have left for the incident."""
    opened = incident.failed_at + timedelta(seconds=30)
    record = IncidentRecord(
        incident_id=incident.incident_id, job=incident.job, run_id=incident.run_id, kind=incident.kind,  # type: ignore[arg-type]
        state=incident.state, reason=incident.reason, opened_at=_stamp(opened),  # type: ignore[arg-type]
        updated_at=_stamp(incident.ended_at or opened + timedelta(seconds=5)),
        failed_run=FailedRun(id=run.run_id, job=run.job, status=run.status, started=_stamp(run.started),
                             ended=_stamp(run.ended)))
    if incident.kind == "anomaly":
        record.anomaly = AnomalyEvidence(judgement={"summary": incident.root_cause})
        return record
    assert failure is not None
    diagnosis = None
    if incident.category is not None:
        diagnosis = Diagnosis(category=incident.category, root_cause=incident.root_cause or "", confidence=0.9,  # type: ignore[arg-type]
                              source="rule", condition=incident.condition)
    actions = failure.actions or ("",)
    for number, action in enumerate(actions, start=1):
        last = number == len(actions)
        record.attempts.append(Attempt(
            number=number, diagnosis=diagnosis,
            policy=PolicyChoice(action=action, policy="static") if action else None,
            verdict=("healed" if incident.state == "healed" else "") if last else "pre-flight failed"))
    return record


def generate(db: Path, shift: timedelta = timedelta(0)) -> Plan:
    """Writes the plan's history, `shift` later, into the SQLite file `db` (new) and its records
    beside it (`<db stem>-records/incidents`); returns the plan written."""
    if db.exists():
        raise BenchUsageError(f"{db} exists: the ops benchmark writes a new history (give another --db)")
    found = plan().moved(shift)
    failures = {(f.job, f.start): f for f in FAILURES}
    records = RecordStore(records_dir(db))
    by_id = {r.run_id: r for r in found.runs}
    with RunHistory(f"sqlite:///{db.resolve()}", vc=VC) as history:
        history.record_runs([_job_run(r) for r in found.runs], healer_runs={r.run_id for r in found.runs if r.healer})
        for incident in found.incidents:
            run = by_id[incident.run_id]
            record = _record(incident, run, failures.get((run.job, run.started - shift)))
            history.record_incident(record)
            records.save(record)
    old = found.incident_of(*OLD_ROW).incident_id
    engine = create_engine(f"sqlite:///{db.resolve()}")
    try:
        with engine.begin() as conn:
            conn.execute(update(incidents).where(incidents.c.vc == VC, incidents.c.incident_id == old)
                         .values(root_cause=None))
    finally:
        engine.dispose()
    return found


def records_dir(db: Path) -> Path:
    return db.parent / f"{db.stem}-records"


# --- the expected answers, from the plan ----------------------------------------------------------

Window = tuple[datetime, datetime]


@dataclass(frozen=True)
class Windows:
    """The question set's windows at a moment, from its start (included) to its end (excluded)."""

    h24: Window
    h48: Window
    today: Window
    yesterday: Window
    last_night: Window  # yesterday 18:00 to today 08:00 (or now, if earlier)
    week: Window
    d14: Window
    month: Window


def windows(now: datetime) -> Windows:
    """The windows at `now`, UTC days (at `NOW`: today is `at(16, 0)` to `NOW`, last night `at(15, 18)`
    to `at(16, 8)`)."""
    now = now.astimezone(UTC)
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC)
    return Windows(h24=(now - timedelta(hours=24), now), h48=(now - timedelta(hours=48), now), today=(midnight, now),
                   yesterday=(midnight - timedelta(days=1), midnight),
                   last_night=(midnight - timedelta(hours=6), min(now, midnight + timedelta(hours=8))),
                   week=(now - timedelta(days=7), now), d14=(now - timedelta(days=14), now),
                   month=(now - timedelta(days=30), now))


def _in(moment: datetime | None, window: Window) -> bool:
    return moment is not None and window[0] <= moment < window[1]


def own_runs(p: Plan, window: Window, job: str | None = None, status: str | None = None,
             category: str | None = None) -> list[Run]:
    return [r for r in p.runs if not r.healer and _in(r.moment, window) and job in (None, r.job)
            and status in (None, r.status) and category in (None, r.category)]


def count_facts(p: Plan, window: Window, **filters: Any) -> dict[str, Any]:
    return {"total": len(own_runs(p, window, **filters))}


def list_facts(p: Plan, window: Window, limit: int, **filters: Any) -> dict[str, Any]:
    found = sorted(own_runs(p, window, **filters), key=lambda r: (r.moment, r.run_id), reverse=True)
    return {"runs": [r.run_id for r in found[:limit]]}


def root_cause_facts(p: Plan, window: Window, job: str | None = None) -> dict[str, Any]:
    failed = [i for i in p.incidents if i.kind == "failure" and _in(i.failed_at, window) and job in (None, i.job)]
    groups: dict[str, int] = {}
    for i in failed:
        key = f"{i.category}/{i.condition}"
        groups[key] = groups.get(key, 0) + 1
    return {"groups": groups, "root_causes": sorted({i.root_cause for i in failed if i.root_cause})}


def mttr_facts(p: Plan, window: Window, job: str | None = None) -> dict[str, Any]:
    closed = [i for i in p.incidents if i.kind == "failure" and i.ended_at and _in(i.ended_at, window)
              and job in (None, i.job)]
    recoveries = sorted((i.ended_at - i.failed_at).total_seconds() for i in closed if i.state == "healed")  # type: ignore[operator]
    median = statistics.median(recoveries) if recoveries else None
    p90 = statistics.quantiles(recoveries, n=10, method="inclusive")[8] if len(recoveries) > 1 else median
    return {"closed": len(closed), "healed": len(recoveries), "median_s": median, "p90_s": p90}


def top_facts(p: Plan, window: Window, limit: int) -> dict[str, Any]:
    jobs: dict[str, list[int]] = {}
    for run in own_runs(p, window):
        counts = jobs.setdefault(run.job, [0, 0])
        counts[0] += run.status == "failed"
        counts[1] += 1
    ranked = sorted(((job, f, n) for job, (f, n) in jobs.items() if f), key=lambda t: (-t[1], t[0]))
    return {"jobs": [list(t) for t in ranked[:limit]]}


def escalation_facts(p: Plan, window: Window, job: str | None = None) -> dict[str, Any]:
    found = sorted((i for i in p.incidents if i.state == "escalated" and _in(i.ended_at, window) and job in (None, i.job)),
                   key=lambda i: (-i.ended_at.timestamp(), i.incident_id))  # type: ignore[union-attr]
    return {"incidents": [i.incident_id for i in found], "reasons": [i.reason for i in found]}


def anomaly_facts(p: Plan, window: Window, job: str | None = None) -> dict[str, Any]:
    found = sorted((i for i in p.incidents if i.kind == "anomaly" and _in(i.failed_at, window) and job in (None, i.job)),
                   key=lambda i: (-i.failed_at.timestamp(), i.incident_id))
    return {"incidents": [i.incident_id for i in found]}


def incident_facts(incident: Incident) -> dict[str, Any]:
    return {"incident_id": incident.incident_id, "state": incident.state, "attempts": incident.attempts,
            "root_cause": incident.root_cause, "reason": incident.reason}


def latest_incident(p: Plan, job: str) -> Incident:
    return max((i for i in p.incidents if i.job == job), key=lambda i: (i.failed_at, i.incident_id))


@dataclass(frozen=True)
class Question:
    text: str
    tool: str | None  # None: the help answer
    args: dict[str, Any]  # the validated arguments the answer must show (a subset)
    facts: dict[str, Any]
    pattern: bool  # the patterns must answer it
    model: tuple[dict[str, Any], ...] = ()  # the scripted model's answers; () = the good choice
    model_source: str = "model"  # the answer's source through the model
    model_note: str = ""  # how the answer through the model must start (a fall-back's note)


def questions(p: Plan, now: datetime | None = None) -> list[Question]:
    """The question set, each with its expected answer computed from the plan, asked at `now`
    (default: the plan's `now`)."""
    w = windows(now or p.now)
    f3 = p.incident_of("sales-daily", at(10, 1))
    old = p.incident_of(*OLD_ROW)
    return [
        Question("How many runs of sales-daily failed in the last 24 hours?", "count_runs",
                 {"job": "sales-daily", "status": "failed", "window": "24h"},
                 count_facts(p, w.h24, job="sales-daily", status="failed"), True),
        Question("How many runs failed today?", "count_runs", {"status": "failed", "window": "today"},
                 count_facts(p, w.today, status="failed"), True),
        Question("What was the root cause of last night's failures?", "failures_root_causes",
                 {"window": "last-night"}, root_cause_facts(p, w.last_night), True),
        Question("Which jobs were escalated this week and why?", "escalations", {"window": "7d"},
                 escalation_facts(p, w.week), True),
        Question("What is the MTTR over the last 7 days?", "mttr", {"window": "7d"}, mttr_facts(p, w.week), True),
        Question("Top failing jobs this month", "top_failing_jobs", {"window": "30d", "limit": 5},
                 top_facts(p, w.month, 5), True),
        Question("Any anomalies this week?", "anomalies", {"window": "7d"}, anomaly_facts(p, w.week), True),
        Question("What is the MTTR of sales-daily over the last 14 days?", "mttr", {"job": "sales-daily", "window": "14d"},
                 mttr_facts(p, w.d14, "sales-daily"), True),
        Question("How many runs of clickstream-daily-users failed in the last 7 days?", "count_runs",
                 {"job": "clickstream-daily-users", "status": "failed", "window": "7d"},
                 count_facts(p, w.week, job="clickstream-daily-users", status="failed"), True),
        Question(f"What happened in {f3.incident_id}?", "incident", {"incident_id": f3.incident_id},
                 incident_facts(f3), True),
        Question(f"Root cause of incident {old.incident_id}?", "incident", {"incident_id": old.incident_id},
                 incident_facts(old), True),
        Question("Top 3 failing jobs in the last 14 days", "top_failing_jobs", {"window": "14d", "limit": 3},
                 top_facts(p, w.d14, 3), True),
        Question("How many runs of payments-reconcile were killed this month?", "count_runs",
                 {"job": "payments-reconcile", "status": "killed", "window": "30d"},
                 count_facts(p, w.month, job="payments-reconcile", status="killed"), True),
        Question("Show me the last 5 runs of inventory-sync", "list_runs",
                 {"job": "inventory-sync", "window": "7d", "limit": 5}, list_facts(p, w.week, 5, job="inventory-sync"), True),
        Question("What went wrong with payments-reconcile last night?", "failures_root_causes",
                 {"job": "payments-reconcile", "window": "last-night"},
                 root_cause_facts(p, w.last_night, "payments-reconcile"), False),
        Question("How many config failures were there in the last 14 days?", "count_runs",
                 {"status": "failed", "category": "config", "window": "14d"},
                 count_facts(p, w.d14, status="failed", category="config"), True),
        Question("Is anything running right now?", "list_runs", {"status": "running"},
                 list_facts(p, w.week, 10, status="running"), True,
                 model=({"tool": "list_runs", "status": "running", "window": "24h"},)),
        Question("How many runs succeeded yesterday?", "count_runs", {"status": "succeeded", "window": "yesterday"},
                 count_facts(p, w.yesterday, status="succeeded"), True),
        Question("Why was inventory-sync escalated?", "escalations", {"job": "inventory-sync", "window": "30d"},
                 escalation_facts(p, w.month, "inventory-sync"), False),
        Question("Which anomalies did clickstream-daily-users have this month?", "anomalies",
                 {"job": "clickstream-daily-users", "window": "30d"},
                 anomaly_facts(p, w.month, "clickstream-daily-users"), True),
        Question("What is the latest incident of sales-daily?", "incident", {"job": "sales-daily"},
                 incident_facts(latest_incident(p, "sales-daily")), True),
        Question("What is the p90 time to recover this month?", "mttr", {"window": "30d"}, mttr_facts(p, w.month), True),
        Question("How often did things break overnight, by cause?", "failures_root_causes", {"window": "last-night"},
                 root_cause_facts(p, w.last_night), False),
        Question("What's the weather in Paris?", None, {}, {}, True, model=({"tool": "none"},), model_source="help",
                 model_note="(The model found no tool for this question"),
        # the scripted model answers these wrongly: validation and fall-back
        Question("How many runs of inventory-sync failed in the last 48 hours?", "count_runs",
                 {"job": "inventory-sync", "status": "failed", "window": "48h"},
                 count_facts(p, w.h48, job="inventory-sync", status="failed"), True,
                 model=({"tool": "count_failures", "job": "inventory-sync", "hours": 48},) * 3,
                 model_source="pattern", model_note="(The model could not answer: no valid ToolChoice"),
        Question("Top failing jobs this week", "top_failing_jobs", {"window": "7d", "limit": 5}, top_facts(p, w.week, 5),
                 True, model=({"tool": "top_failing_jobs", "window": "fortnight-ish"},), model_source="pattern",
                 model_note="(The model's choice was not valid: top_failing_jobs window: a window is"),
        Question("How many runs of sales-dialy failed today?", "count_runs",
                 {"job": "sales-dialy", "status": "failed", "window": "today"},
                 {"unknown_job": "sales-dialy", "close_names": ["sales-daily"]}, True,
                 model=({"tool": "count_runs", "job": "sales-dialy", "status": "failed", "window": "today"},)),
        Question("failures so far today?", "count_runs", {"status": "failed", "window": "today"},
                 count_facts(p, w.today, status="failed"), False,
                 model=({"tool": "failure_count", "window": "today"},
                        {"tool": "count_runs", "status": "failed", "window": "today"})),
    ]


# --- checking answers -----------------------------------------------------------------------------


def facts_of(answer: Answer) -> dict[str, Any]:
    """The figures of an answer, from its rows, in the shape of the expected facts."""
    rows = answer.rows
    if rows and "unknown_job" in rows[0]:
        return dict(rows[0])
    tool = answer.tool
    if tool is None:
        return {}
    if tool == "count_runs":
        return {"total": sum(r["runs"] for r in rows)}
    if tool == "list_runs":
        return {"runs": [r["run_id"] for r in rows]}
    if tool == "incident":
        return {k: rows[0][k] for k in ("incident_id", "state", "attempts", "root_cause", "reason")} if rows else {}
    if tool == "failures_root_causes":
        return {"groups": {f"{g['category']}/{g['condition']}": g["failures"] for g in rows},
                "root_causes": sorted({c for g in rows for c in g["root_causes"]})}
    if tool == "mttr":
        row = rows[0]
        return {"closed": row["closed"], "healed": row["healed"], "median_s": row["mttr_median_s"],
                "p90_s": row["mttr_p90_s"]}
    if tool == "top_failing_jobs":
        return {"jobs": [[r["job"], r["failed"], r["runs"]] for r in rows]}
    if tool == "escalations":
        return {"incidents": [r["incident_id"] for r in rows], "reasons": [r["reason"] for r in rows]}
    return {"incidents": [r["incident_id"] for r in rows]}  # anomalies


def text_figures(question: Question) -> list[str]:
    """What the answer's text must say for the facts (its numbers, formatted by our code)."""
    facts = question.facts
    if "total" in facts:
        return [f"{facts['total']} "]
    if "jobs" in facts:
        return [f"{job}: {failed} failed of {runs} run" for job, failed, runs in facts["jobs"]]
    if facts.get("median_s") is not None:
        return [_seconds(facts["median_s"]), _seconds(facts["p90_s"])]
    if "reasons" in facts:
        return list(facts["reasons"])
    if "groups" in facts:
        return [f": {n} (" for n in facts["groups"].values()] + list(facts["root_causes"])
    if "close_names" in facts:
        return [f"Close names: {', '.join(facts['close_names'])}."]
    return []


def _seconds(value: float) -> str:
    """Exact seconds as an answer shows them: "(1200 s)", "(2640.5 s)"."""
    return f"({value:.0f} s)" if float(value).is_integer() else f"({value:.1f} s)"


@dataclass
class Outcome:
    mode: str
    question: Question
    answer: Answer | None
    problems: list[str]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.problems


def check(question: Question, answer: Answer, mode: str) -> list[str]:
    """What is wrong with the answer (nothing: right)."""
    problems = []
    source = "pattern" if mode == "pattern" else question.model_source
    if question.tool is None and mode == "pattern":
        source = "help"
    if (answer.tool, answer.source) != (question.tool, source):
        problems.append(f"tool/source {answer.tool}/{answer.source}, expected {question.tool}/{source}")
    wrong_args = {k: answer.args.get(k) for k, v in question.args.items() if answer.args.get(k) != v}
    if wrong_args:
        problems.append(f"args {wrong_args}, expected {question.args}")
    found = facts_of(answer)
    if found != question.facts:
        problems.append(f"facts {found}, expected {question.facts}")
    problems += [f"the text does not say {s!r}" for s in text_figures(question) if s not in answer.text]
    if mode == "model" and question.model_note and not answer.text.startswith(question.model_note):
        problems.append(f"the text does not start with {question.model_note!r}")
    if question.tool is not None and "unknown_job" not in question.facts and not answer.sql:
        problems.append("no SQL shown")
    return problems


def _timed(mode: str, question: Question, run: Callable[[], Answer]) -> Outcome:
    started = time.perf_counter()
    try:
        answer: Answer | None = run()
        problems = check(question, answer, mode)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - a benchmark row, not a crash: the row says what happened
        answer, problems = None, [f"{type(exc).__name__}: {exc}"]
    return Outcome(mode, question, answer, problems, time.perf_counter() - started)


@dataclass
class OpsBenchResult:
    outcomes: list[Outcome] = field(default_factory=list)
    model_requests: int = 0
    plan: Plan | None = None
    via: str = "in process"  # how the questions were asked

    @property
    def wrong(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def text(self) -> str:
        return report(self)


class Asker(Protocol):
    """Where the questions are asked: in process, or through the command line."""

    def now(self) -> datetime:
        """The moment the next answer is computed at: its expected answers are computed at it."""
        ...

    def ask(self, text: str, model: ScriptedLLM | None) -> Answer:
        """The answer to `text` without a model (None), or through the scripted model `model`."""
        ...


@dataclass
class InProcess:
    """`agents.ops.ask` in this process, at a fixed moment."""

    history: RunHistory
    records: RecordStore
    at: datetime

    def now(self) -> datetime:
        return self.at

    def ask(self, text: str, model: ScriptedLLM | None) -> Answer:
        if model is None:
            return ask(text, history=self.history, records=self.records, now=self.at)
        llm = HealerLLM(base_url=model.base_url, api_key=SCRIPTED_KEY, model=SCRIPTED_MODEL, timeout_s=MODEL_TIMEOUT_S,
                        max_retries=0)
        try:
            return ask(text, history=self.history, records=self.records, llm=llm, now=self.at)
        finally:
            llm.close()


class CliFailed(RuntimeError):
    """`python -m app ask` exited with an error, or printed no answer."""


@dataclass
class ThroughTheCli:
    """`python -m app ask "..." --json`, one process per question, at the real time, in `cwd`: an empty
    directory, since the CLI reads `./.env` (the code comes from PYTHONPATH)."""

    db: Path
    cwd: Path

    def now(self) -> datetime:
        return datetime.now(UTC)

    def ask(self, text: str, model: ScriptedLLM | None) -> Answer:
        done = subprocess.run([sys.executable, "-m", "app", "ask", text, "--json"], cwd=self.cwd,
                              env=cli_environment(self.db, model), capture_output=True, text=True,
                              timeout=CLI_TIMEOUT_S, check=False)
        if done.returncode != 0:
            raise CliFailed(f"exit {done.returncode}: {done.stderr.strip()[-500:]}")
        return Answer(**json.loads(done.stdout))


def cli_environment(db: Path, model: ScriptedLLM | None) -> dict[str, str]:
    """This process's environment without any healer setting (`agents.config.table()`: none may leak
    in, no LLM_* for the patterns above all), then the settings under which `RunHistory.open` opens
    `db` with the rows of `VC` (the host of JOBS_API_URL) and the records beside it are read, and,
    with `model`, the scripted model asked as the in-process client asks it."""
    names = {name for s in table() for name in s.env}
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update(PYTHONPATH=str(REPO), JOBS_API_URL=f"https://{VC}/dex/api/v1", WORKLOAD_USER="ops-bench",
               WORKLOAD_PASSWORD="ops-bench-unused-password", HEALER_DATA_DIR=str(records_dir(db).resolve()),
               HEAL_HISTORY_URL=f"sqlite:///{db.resolve()}")
    if model is not None:
        env.update(LLM_ENDPOINT_BASE_URL=model.base_url, LLM_MODEL_ID=SCRIPTED_MODEL, LLM_API_KEY=SCRIPTED_KEY,
                   LLM_TIMEOUT_S=str(MODEL_TIMEOUT_S), LLM_MAX_RETRIES="0")
    return env


def run_ops_bench(db: Path | None = None, *, cli: bool = False, limit: int | None = None) -> OpsBenchResult:
    """Generates the history (into `db`, else a temporary file) and asks the questions in both modes
    (the first `limit` of each; None: all): in process at `NOW`, or with `cli` through
    `python -m app ask` at the real time, the history moved to end at it."""
    with tempfile.TemporaryDirectory(prefix="ops-bench-") as tmp:
        path = db or Path(tmp) / "history.sqlite3"
        if not cli:
            generated = generate(path)
            with RunHistory(f"sqlite:///{path.resolve()}", vc=VC) as history:
                asker = InProcess(history, RecordStore(records_dir(path)), generated.now)
                return _ask_all(generated, asker, limit, "in process")
        generated = generate(path, shift=datetime.now(UTC).replace(microsecond=0) - NOW)
        cwd = Path(tmp) / "cwd"
        cwd.mkdir()
        return _ask_all(generated, ThroughTheCli(path, cwd), limit,
                        "through `python -m app ask --json`, one process per question")


def _ask_all(p: Plan, asker: Asker, limit: int | None, via: str) -> OpsBenchResult:
    """The questions the patterns must answer without a model, then every question through the
    scripted model (the first `limit` of each), each graded at the moment it is asked."""
    result = OpsBenchResult(plan=p, via=via)
    asked = questions(p)
    for mode in ("pattern", "model"):
        for number in [n for n, q in enumerate(asked) if mode == "model" or q.pattern][:limit]:
            question = questions(p, asker.now())[number]
            if mode == "pattern":
                result.outcomes.append(_timed(mode, question, lambda q=question: asker.ask(q.text, None)))
                continue
            outcome, requests = _through_the_model(question, asker)
            result.outcomes.append(outcome)
            result.model_requests += requests
    return result


def _through_the_model(question: Question, asker: Asker) -> tuple[Outcome, int]:
    """The question through a scripted server of its own (its script cannot leak into the next
    question's): the outcome, and the requests the model got."""
    with ScriptedLLM() as server:
        for answer in question.model or (_good_choice(question),):
            server.add(answer)
        outcome = _timed("model", question, lambda: asker.ask(question.text, server))
        if server.remaining:
            outcome.problems.append(f"{server.remaining} scripted answers left unused")
        return outcome, len(server.requests)


def _good_choice(question: Question) -> dict[str, Any]:
    return {"tool": question.tool or "none", **question.args}


def report(result: OpsBenchResult) -> str:
    """The table of every answer, then accuracy per mode and the figures."""
    p = result.plan
    lines = []
    if p is not None:
        own = [r for r in p.runs if not r.healer]
        lines.append(f"ops questions over a generated history at {p.now:%Y-%m-%d %H:%M} UTC, asked {result.via}: "
                     f"{len(p.jobs)} jobs, {len(own)} runs ({sum(r.status == 'failed' for r in own)} failed) and "
                     f"{sum(r.healer for r in p.runs)} healer runs over 14 days, "
                     f"{sum(i.kind == 'failure' for i in p.incidents)} incidents, "
                     f"{sum(i.kind == 'anomaly' for i in p.incidents)} anomalies")
        lines.append("")
    lines.append(f"{'mode':<8} {'ok':<3} {'source':<8} {'tool':<21} {'ms':>6}  question")
    for o in result.outcomes:
        tool = (o.answer.tool or "-") if o.answer else "-"
        source = o.answer.source if o.answer else "-"
        lines.append(f"{o.mode:<8} {'✓' if o.ok else '✗':<3} {source:<8} {tool:<21} {o.seconds * 1000:6.1f}  "
                     f"{o.question.text[:60]}")
        lines += [f"{'':<12}✗ {problem}" for problem in o.problems]
    lines.append("")
    for mode, label in (("pattern", "patterns (no model)"), ("model", "scripted model")):
        done = [o for o in result.outcomes if o.mode == mode]
        right = sum(o.ok for o in done)
        times = sorted(o.seconds * 1000 for o in done)
        lines.append(f"{label}: {right}/{len(done)} right ({right / len(done):.0%}); answer time median "
                     f"{statistics.median(times):.1f} ms, max {times[-1]:.1f} ms" if done else f"{label}: none")
    model = [o for o in result.outcomes if o.mode == "model"]
    fell_back = sum(1 for o in model if o.answer and o.answer.source == "pattern")
    unknown = sum(1 for o in model if o.answer and o.answer.rows and "unknown_job" in o.answer.rows[0])
    reasked = sum(1 for o in model if len(o.question.model) > 1 and o.question.model_source == "model")
    lines.append(f"scripted wrong choices: {fell_back} fell back to the patterns, {unknown} named a job not in the "
                 f"history (answered with the close names), {reasked} corrected after a re-ask; "
                 f"{result.model_requests} model requests for {len(model)} questions")
    lines.append("every answer right" if not result.wrong else f"{len(result.wrong)} answers WRONG")
    return "\n".join(lines)


# --- command line ---------------------------------------------------------------------------------


def add_parser(commands: argparse._SubParsersAction) -> None:
    ops = commands.add_parser("ops", help="operators' questions over a generated run history, without and with a model")
    ops.add_argument("--db", type=Path, default=None, metavar="FILE",
                     help="write the generated history to this new SQLite file (default: a temporary one)")
    ops.add_argument("--cli", action="store_true",
                     help="ask each question through `python -m app ask QUESTION --json` in a process of its own, "
                          "over a history moved to end now")
    ops.add_argument("--limit", type=_positive, default=None, metavar="N",
                     help="ask only the first N questions of each mode (a quick check)")


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, not {text!r}")
    return number


def run(args: argparse.Namespace) -> int:
    try:
        result = run_ops_bench(args.db, cli=args.cli, limit=args.limit)
    except BenchUsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.text, flush=True)
    return 1 if result.wrong else 0

"""The query tools behind `python -m app ask`: each answers one kind of operator question from the
run history with SQL our code writes, so every number an operator reads was counted by the database,
never by a model, and every answer carries the SQL it ran.

A tool is `tool(history, args, now, *, records=None) -> ToolResult`: `args` its validated pydantic
model, `now` an aware datetime (windows end there), `records` the incident records (for root causes
an older incidents row lacks). Tools only run `select`s on the `RunHistory`'s tables, filtered by its
`vc`: asking never changes anything.

What counts:
- runs: the jobs' own runs, at their end (their start while they have not ended); runs the healer
  created or started (fix, pre-flight, check runs, its re-runs) are left out, as in the policy's view.
- failures: failed runs, or incidents of kind `failure` at their failed run's end (their opening
  when unknown); anomalies: incidents of kind `anomaly`, at the same moment.
- escalations and MTTR: incidents at their end (`agents/history/metrics.py`'s definition of time to
  recover, over the healed failures that ended in the window).

Windows (the `window` argument; a window includes its start and excludes its end; times are UTC):

    the question says        window       from                    to
    last N hours             Nh           now - N hours           now      (1h .. 2160h)
    last N days              Nd           now - N days            now      (1d .. 90d)
    last 24 hours            24h          now - 24 hours          now
    this week                7d           now - 7 days            now
    this month               30d          now - 30 days           now
    today                    today        today 00:00             now
    yesterday                yesterday    yesterday 00:00         today 00:00
    last night               last-night   yesterday 18:00         today 08:00 (now, if earlier)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, Select, case, func, literal, select, union
from sqlalchemy.engine import Dialect

from agents.history import rows as history_rows
from agents.history.metrics import ClosedIncident, summarize
from agents.history.schema import actions, incidents, runs
from agents.ids import check_incident_id, check_job_name
from agents.record import TERMINAL_STATES, Category, IncidentRecord, RecordStore
from agents.times import UTC_STAMP

if TYPE_CHECKING:
    from agents.history import RunHistory

RunStatus = Literal["starting", "running", "succeeded", "failed", "killed", "unknown"]  # CDE's run statuses
MAX_HOURS = 2160  # 90 days: the longest window, in either unit
MAX_DAYS = 90
MAX_LIMIT = 50  # rows a listing tool shows
MAX_LISTED = 100  # incidents an escalations or anomalies answer lists (their counts stay exact)
MAX_JOBS = 200  # job names given to the model
MAX_RECORDS_READ = 50  # record files one answer may read for root causes the rows lack
NIGHT_START_H, NIGHT_END_H = 18, 8

_HOURS = re.compile(r"(?:last-)?(\d{1,5})-?(?:h|hrs?|hours?)")
_DAYS = re.compile(r"(?:last-)?(\d{1,4})-?(?:d|days?)")
_NAMED = {"today": "today", "yesterday": "yesterday", "last-night": "last-night", "lastnight": "last-night",
          "overnight": "last-night", "this-week": "7d", "week": "7d", "this-month": "30d", "month": "30d"}


def check_window(text: str) -> str:
    """A window as the table of the module docstring names it, normalised ("24 hours" → "24h",
    "this_week" → "7d"); ValueError beyond the bounds or when it names none."""
    if not isinstance(text, str):
        raise ValueError(f"a window is text such as 24h, 7d, today or last-night, not {text!r}")
    spelled = re.sub(r"[\s_]+", "-", text.strip().lower())
    if spelled in _NAMED:
        return _NAMED[spelled]
    if hours := _HOURS.fullmatch(spelled):
        if not 1 <= int(hours.group(1)) <= MAX_HOURS:
            raise ValueError(f"a window in hours is from 1h to {MAX_HOURS}h, not {text!r}")
        return f"{int(hours.group(1))}h"
    if days := _DAYS.fullmatch(spelled):
        if not 1 <= int(days.group(1)) <= MAX_DAYS:
            raise ValueError(f"a window in days is from 1d to {MAX_DAYS}d, not {text!r}")
        return f"{int(days.group(1))}d"
    raise ValueError(f"a window is Nh (1..{MAX_HOURS}), Nd (1..{MAX_DAYS}), today, yesterday or last-night, "
                     f"not {text!r}")


@dataclass(frozen=True)
class Span:
    """A window resolved against now: [start, end)."""

    window: str
    start: datetime
    end: datetime
    label: str  # as a sentence says it: "in the last 24 hours", "today", "last night"

    def __str__(self) -> str:
        return f"{self.label} ({_minute(self.start)} → {_minute(self.end)} UTC)"


def span(window: str, now: datetime) -> Span:
    """The moments `window` covers, as the module docstring's table says."""
    window = check_window(window)
    now = now.astimezone(timezone.utc)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "today":
        return Span(window, midnight, now, "today")
    if window == "yesterday":
        return Span(window, midnight - timedelta(days=1), midnight, "yesterday")
    if window == "last-night":
        start = midnight - timedelta(days=1) + timedelta(hours=NIGHT_START_H)
        return Span(window, start, min(now, midnight + timedelta(hours=NIGHT_END_H)), "last night")
    amount, unit = int(window[:-1]), {"h": "hour", "d": "day"}[window[-1]]
    label = f"in the last {_count(amount, unit) if amount > 1 else unit}"
    return Span(window, now - timedelta(**{f"{unit}s": amount}), now, label)


def _job(value: str | None) -> str | None:
    return None if value is None else check_job_name(value)


Job = Annotated[str | None, AfterValidator(_job)]
Window = Annotated[str, AfterValidator(check_window)]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT)]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CountRunsArgs(_Args):
    job: Job = Field(default=None, description="a job name; none: every job")
    status: RunStatus | None = Field(default=None, description="a CDE run status; none: every status")
    window: Window = "24h"
    category: Category | None = Field(default=None, description="the diagnosed failure category")


class ListRunsArgs(_Args):
    job: Job = None
    status: RunStatus | None = None
    window: Window = "7d"
    limit: Limit = 10


class IncidentArgs(_Args):
    incident_id: str | None = Field(default=None, description="<job>--<run id>")
    job: Job = Field(default=None, description="instead of an id: that job's latest incident")

    @model_validator(mode="after")
    def _one(self) -> IncidentArgs:
        if (self.incident_id is None) == (self.job is None):
            raise ValueError("give either incident_id or job (its latest incident), not both or neither")
        if self.incident_id is not None:
            check_incident_id(self.incident_id)
        return self


class RootCausesArgs(_Args):
    window: Window = "24h"
    job: Job = None


class MttrArgs(_Args):
    window: Window = "7d"
    job: Job = None


class TopFailingArgs(_Args):
    window: Window = "7d"
    limit: Limit = 5


class EscalationsArgs(_Args):
    window: Window = "7d"
    job: Job = None


class AnomaliesArgs(_Args):
    window: Window = "7d"
    job: Job = None


@dataclass(frozen=True)
class ToolResult:
    tool: str
    args: dict[str, Any]  # the validated arguments, defaults included (None left out)
    text: str  # the answer, numbers formatted by our code
    rows: list[dict[str, Any]]  # JSON values
    sql: list[str]  # every statement run, with its values inlined

    def as_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "args": self.args, "text": self.text, "rows": self.rows, "sql": self.sql}


# --- reading -------------------------------------------------------------------------------------


def shown_sql(statement: Select, dialect: Dialect) -> str:
    """The statement as the database runs it, values inlined: what the answer shows."""
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


@dataclass
class _Reader:
    """One connection; runs selects only and keeps the SQL of each."""

    conn: Connection
    sql: list[str] = field(default_factory=list)

    def rows(self, statement: Select) -> list[Mapping[str, Any]]:
        if not isinstance(statement, Select):  # a question never writes
            raise TypeError(f"the ops tools run selects only, not {type(statement).__name__}")
        self.sql.append(shown_sql(statement, self.conn.dialect))
        return list(self.conn.execute(statement).mappings())


@contextmanager
def _reading(history: RunHistory) -> Iterator[_Reader]:
    with history.reading() as conn:
        yield _Reader(conn)


def known_jobs(history: RunHistory, limit: int = MAX_JOBS) -> list[str]:
    """The names of the jobs in the history (runs of their own, or incidents), sorted, at most `limit`."""
    return [r["job"] for r in _jobs(history, None, limit)[0]]


def job_known(history: RunHistory, job: str) -> tuple[bool, str]:
    """Whether the history has runs or incidents of `job`, and the SQL that said so."""
    found, sql = _jobs(history, job, 1)
    return bool(found), sql


def _jobs(history: RunHistory, job: str | None, limit: int) -> tuple[list[Mapping[str, Any]], str]:
    own = select(runs.c.job).where(runs.c.vc == history.vc, runs.c.healer_run.is_(False))
    opened = select(incidents.c.job).where(incidents.c.vc == history.vc)
    if job is not None:
        own, opened = own.where(runs.c.job == job), opened.where(incidents.c.job == job)
    names = union(own, opened).subquery()
    statement = select(names.c.job).order_by(names.c.job).limit(limit)
    with _reading(history) as read:
        found = read.rows(statement)
    return found, read.sql[0]


# --- the tools -----------------------------------------------------------------------------------


def _run_time() -> Any:
    return func.coalesce(runs.c.ended, runs.c.started)


def _incident_time() -> Any:
    return func.coalesce(incidents.c.failed_at, incidents.c.opened_at)


def _own_runs(history: RunHistory, window: Span, job: str | None, status: str | None,
              category: str | None = None) -> list[Any]:
    when = _run_time()
    conditions = [runs.c.vc == history.vc, runs.c.healer_run.is_(False), when >= window.start, when < window.end]
    if job is not None:
        conditions.append(runs.c.job == job)
    if status is not None:
        conditions.append(runs.c.status == status)
    if category is not None:
        conditions.append(runs.c.failure_category == category)
    return conditions


def _incidents_in(history: RunHistory, moment: Any, window: Span, job: str | None) -> list[Any]:
    conditions = [incidents.c.vc == history.vc, moment >= window.start, moment < window.end]
    if job is not None:
        conditions.append(incidents.c.job == job)
    return conditions


def count_runs(history: RunHistory, args: CountRunsArgs, now: datetime, *,
               records: RecordStore | None = None) -> ToolResult:
    """How many runs (of a job, in a status, of a failure category) ended in the window, by status."""
    window = span(args.window, now)
    statement = (select(runs.c.status, func.count().label("runs"))
                 .where(*_own_runs(history, window, args.job, args.status, args.category))
                 .group_by(runs.c.status).order_by(func.count().desc(), runs.c.status))
    with _reading(history) as read:
        found = [{"status": r["status"], "runs": int(r["runs"])} for r in read.rows(statement)]
    total = sum(r["runs"] for r in found)
    subject = (_count(total, f"{args.status} run" if args.status else "run")
               + (f" with failure category {args.category}" if args.category else "") + f" of {args.job or 'all jobs'}")
    by_status = ": " + ", ".join(f"{r['runs']} {r['status']}" for r in found) if args.status is None and found else ""
    return _result("count_runs", args, f"{subject} {window}{by_status}.", found, read)


def list_runs(history: RunHistory, args: ListRunsArgs, now: datetime, *,
              records: RecordStore | None = None) -> ToolResult:
    """The latest runs in the window, newest first, with the incident each failure opened."""
    window = span(args.window, now)
    statement = (select(runs.c.job, runs.c.run_id, runs.c.status, runs.c.started, runs.c.ended, runs.c.duration_s,
                        runs.c.failure_condition, runs.c.failure_category, runs.c.incident_id, runs.c.outcome)
                 .where(*_own_runs(history, window, args.job, args.status))
                 .order_by(_run_time().desc(), runs.c.run_id.desc()).limit(args.limit))
    with _reading(history) as read:
        found = [_plain(r) for r in read.rows(statement)]
    what = " ".join(filter(None, [args.status, "runs"]))
    of = f" of {args.job}" if args.job else ""
    if not found:
        return _result("list_runs", args, f"No {what}{of} {window}.", [], read)
    lines = [f"The {_count(len(found), 'latest ' + what[:-1])}{of} {window}:"]
    for run in found:
        when = f"ended {_minute_text(run['ended'])}" if run["ended"] else f"started {_minute_text(run['started'])}"
        failure = ", ".join(filter(None, [run["failure_condition"], run["failure_category"]]))
        incident = f"incident {run['incident_id']}: {run['outcome']}" if run["incident_id"] else ""
        detail = "; ".join(filter(None, [failure, incident]))
        lines.append(f"- {run['job']} run {run['run_id']} {run['status']}, {when} UTC"
                     + (f" ({detail})" if detail else ""))
    return _result("list_runs", args, "\n".join(lines), found, read)


def incident(history: RunHistory, args: IncidentArgs, now: datetime, *,
             records: RecordStore | None = None) -> ToolResult:
    """One incident (by id, or a job's latest): its diagnosis, outcome, attempts and reason."""
    statement = select(incidents).where(incidents.c.vc == history.vc)
    if args.incident_id is not None:
        statement = statement.where(incidents.c.incident_id == args.incident_id)
    else:
        statement = (statement.where(incidents.c.job == args.job)
                     .order_by(incidents.c.opened_at.desc(), incidents.c.incident_id.desc()).limit(1))
    with _reading(history) as read:
        found = read.rows(statement)
        if not found:
            missing = f"incident {args.incident_id}" if args.incident_id else f"incident of {args.job}"
            return _result("incident", args, f"No {missing} in the run history.", [], read)
        row = found[0]
        taken = read.rows(select(actions.c.attempt, actions.c.action, actions.c.policy, actions.c.verdict)
                          .where(actions.c.vc == history.vc, actions.c.incident_id == row["incident_id"])
                          .order_by(actions.c.attempt))
    item = _plain(row, ("incident_id", "job", "run_id", "kind", "state", "attempts", "reason", "failure_condition",
                        "failure_category", "root_cause", "failed_at", "opened_at", "ended_at", "mode", "model"))
    item["root_cause"] = item["root_cause"] or _record_cause(records, row["incident_id"])
    item["actions"] = [_plain(a) for a in taken]
    recovery = ClosedIncident(row["incident_id"], row["job"], row["state"], row["failed_at"], row["opened_at"],
                              row["ended_at"]).recovery_s if row["ended_at"] else None
    item["recovery_s"] = recovery
    lines = [f"Incident {item['incident_id']} ({item['kind']}) of {item['job']} run {item['run_id']}: "
             f"{item['state']} after {_count(item['attempts'], 'attempt')}."]
    times = [f"failed {_minute(row['failed_at'])} UTC" if row["failed_at"] else None,
             f"opened {_minute(row['opened_at'])} UTC",
             f"ended {_minute(row['ended_at'])} UTC" if row["ended_at"] else "not ended",
             f"recovered in {_duration(recovery)}" if recovery is not None else None]
    said = "; ".join(filter(None, times))
    lines.append(said[:1].upper() + said[1:] + ".")
    if item["failure_condition"] or item["failure_category"]:
        lines.append(f"Failure: {item['failure_condition'] or 'no error condition'} "
                     f"({item['failure_category'] or 'not categorised'}).")
    lines.append(f"Root cause: {item['root_cause'] or '(not diagnosed)'}")
    if item["reason"]:
        lines.append(f"Reason: {item['reason']}")
    for action in item["actions"]:
        lines.append(f"- attempt {action['attempt']}: {action['action']} ({action['policy']} policy)"
                     + (f", {action['verdict']}" if action["verdict"] else ""))
    return _result("incident", args, "\n".join(lines), [item], read)


def failures_root_causes(history: RunHistory, args: RootCausesArgs, now: datetime, *,
                         records: RecordStore | None = None) -> ToolResult:
    """The failure incidents of the window grouped by category and error condition, with their root causes."""
    window = span(args.window, now)
    where = [*_incidents_in(history, _incident_time(), window, args.job), incidents.c.kind == "failure"]
    grouped = (select(incidents.c.failure_category, incidents.c.failure_condition, func.count().label("failures"))
               .where(*where).group_by(incidents.c.failure_category, incidents.c.failure_condition)
               .order_by(func.count().desc(), incidents.c.failure_category, incidents.c.failure_condition))
    detail = (select(incidents.c.incident_id, incidents.c.job, incidents.c.state, incidents.c.failure_category,
                     incidents.c.failure_condition, incidents.c.root_cause)
              .where(*where).order_by(_incident_time(), incidents.c.incident_id).limit(MAX_LISTED))
    with _reading(history) as read:
        groups = [{"category": g["failure_category"], "condition": g["failure_condition"], "failures": int(g["failures"]),
                   "jobs": [], "incidents": [], "root_causes": []} for g in read.rows(grouped)]
        listed = read.rows(detail)
    by_key = {(g["category"], g["condition"]): g for g in groups}
    budget = [MAX_RECORDS_READ]
    for row in listed:
        group = by_key[(row["failure_category"], row["failure_condition"])]
        cause = row["root_cause"] or _record_cause(records, row["incident_id"], budget)
        group["incidents"].append(row["incident_id"])
        for values, value in ((group["jobs"], row["job"]), (group["root_causes"], cause)):
            if value and value not in values:
                values.append(value)
    total = sum(g["failures"] for g in groups)
    of = f" of {args.job}" if args.job else ""
    if not total:
        return _result("failures_root_causes", args, f"No failures{of} {window}.", [], read)
    lines = [f"{_count(total, 'failure')}{of} {window}, by cause:"]
    for group in groups:
        lines.append(f"- {group['category'] or 'not diagnosed'} / {group['condition'] or 'no error condition'}: "
                     f"{group['failures']} ({', '.join(group['jobs'])})")
        lines.extend(f"  root cause: {cause}" for cause in group["root_causes"])
    return _result("failures_root_causes", args, "\n".join(lines), groups, read)


def mttr(history: RunHistory, args: MttrArgs, now: datetime, *, records: RecordStore | None = None) -> ToolResult:
    """Median and p90 time to recover over the failure incidents healed in the window (metrics.py's)."""
    window = span(args.window, now)
    statement = (select(incidents.c.incident_id, incidents.c.job, incidents.c.state, incidents.c.failed_at,
                        incidents.c.opened_at, incidents.c.ended_at)
                 .where(*_incidents_in(history, incidents.c.ended_at, window, args.job), incidents.c.kind == "failure",
                        incidents.c.state.in_(sorted(TERMINAL_STATES)))
                 .order_by(incidents.c.ended_at, incidents.c.incident_id))
    with _reading(history) as read:
        closed = [ClosedIncident(r["incident_id"], r["job"], r["state"], r["failed_at"], r["opened_at"], r["ended_at"])
                  for r in read.rows(statement)]
    totals = summarize(closed)
    row = {"closed": totals.closed, "healed": totals.healed, "escalated": totals.escalated, "rejected": totals.rejected,
           "errors": totals.errors, "auto_resolution": totals.auto_resolution, "mttr_median_s": totals.mttr_median_s,
           "mttr_p90_s": totals.mttr_p90_s,
           "recovery_s": {i.incident_id: i.recovery_s for i in closed if i.recovery_s is not None}}
    of = f" of {args.job}" if args.job else ""
    ends = ", ".join(f"{n} {state}" for n, state in ((totals.healed, "healed"), (totals.escalated, "escalated"),
                                                     (totals.rejected, "rejected"), (totals.errors, "error")) if n)
    if totals.mttr_median_s is None:
        text = f"No failure{of} was healed {window}: no MTTR ({_count(totals.closed, 'incident')} closed" \
               + (f": {ends})." if ends else ").")
    else:
        text = (f"MTTR{of} {window}: median {_duration(totals.mttr_median_s)}, p90 "
                f"{_duration(totals.mttr_p90_s)}, over {_count(totals.healed, 'healed incident')} "
                f"({totals.closed} closed: {ends}).")
    return _result("mttr", args, text, [row], read)


def top_failing_jobs(history: RunHistory, args: TopFailingArgs, now: datetime, *,
                     records: RecordStore | None = None) -> ToolResult:
    """The jobs with the most failed runs in the window, with their run counts."""
    window = span(args.window, now)
    failed = func.sum(case((runs.c.status == "failed", 1), else_=0))
    statement = (select(runs.c.job, failed.label("failed"), func.count().label("runs"))
                 .where(*_own_runs(history, window, None, None)).group_by(runs.c.job)
                 .having(failed > literal(0)).order_by(failed.desc(), runs.c.job).limit(args.limit))
    with _reading(history) as read:
        found = [{"job": r["job"], "failed": int(r["failed"]), "runs": int(r["runs"])} for r in read.rows(statement)]
    if not found:
        return _result("top_failing_jobs", args, f"No run failed {window}.", [], read)
    lines = [f"Top failing jobs {window}:"]
    lines += [f"{n}. {r['job']}: {r['failed']} failed of {_count(r['runs'], 'run')} ({r['failed'] / r['runs']:.0%})"
              for n, r in enumerate(found, start=1)]
    return _result("top_failing_jobs", args, "\n".join(lines), found, read)


def escalations(history: RunHistory, args: EscalationsArgs, now: datetime, *,
                records: RecordStore | None = None) -> ToolResult:
    """The incidents escalated (ended as escalated) in the window, and why."""
    window = span(args.window, now)
    where = [*_incidents_in(history, incidents.c.ended_at, window, args.job), incidents.c.state == "escalated"]
    return _incident_list("escalations", args, history, records, where, incidents.c.ended_at, window)


def anomalies(history: RunHistory, args: AnomaliesArgs, now: datetime, *,
              records: RecordStore | None = None) -> ToolResult:
    """The anomaly incidents (a run that succeeded but did not look as usual) of the window."""
    window = span(args.window, now)
    where = [*_incidents_in(history, _incident_time(), window, args.job), incidents.c.kind == "anomaly"]
    return _incident_list("anomalies", args, history, records, where, _incident_time(), window)


def _incident_list(tool: str, args: EscalationsArgs | AnomaliesArgs, history: RunHistory,
                   records: RecordStore | None, where: Sequence[Any], moment: Any, window: Span) -> ToolResult:
    """Exact counts by job, then the incidents themselves (newest first, at most MAX_LISTED)."""
    per_job = (select(incidents.c.job, func.count().label("incidents")).where(*where).group_by(incidents.c.job)
               .order_by(func.count().desc(), incidents.c.job))
    detail = (select(incidents.c.incident_id, incidents.c.job, incidents.c.run_id, incidents.c.kind, incidents.c.state,
                     incidents.c.attempts, incidents.c.reason, incidents.c.failure_category,
                     incidents.c.failure_condition, incidents.c.root_cause, moment.label("at"))
              .where(*where).order_by(moment.desc(), incidents.c.incident_id).limit(MAX_LISTED))
    with _reading(history) as read:
        counts = [(r["job"], int(r["incidents"])) for r in read.rows(per_job)]
        found = [_plain(r) for r in read.rows(detail)]
    budget = [MAX_RECORDS_READ]
    for item in found:
        item["root_cause"] = item["root_cause"] or _record_cause(records, item["incident_id"], budget)
    total = sum(n for _, n in counts)
    of = f" of {args.job}" if args.job else ""
    if tool == "escalations":
        head = (f"{_count(total, 'incident')}{of} {'was' if total == 1 else 'were'} escalated" if total
                else f"No incident{of} was escalated")
    else:
        head = f"{_count(total, 'anomaly')}{of}" if total else f"No anomaly{of}"
    if not total:
        return _result(tool, args, f"{head} {window}.", [], read)
    by_job = f": {', '.join(f'{job} {n}' for job, n in counts)}" if not args.job else ""
    lines = [f"{head} {window}{by_job}."]
    for item in found:
        failure = ", ".join(filter(None, [item["failure_condition"], item["failure_category"]]))
        lines.append(f"- {item['job']} run {item['run_id']} ({item['incident_id']}), {_minute_text(item['at'])} UTC, "
                     f"{item['state']}" + (f" after {_count(item['attempts'], 'attempt')}" if item["attempts"] else "")
                     + (f" [{failure}]" if failure else "") + (f": {item['reason']}" if item["reason"] else ""))
        if item["root_cause"]:
            lines.append(f"  root cause: {item['root_cause']}")
    if total > len(found):
        lines.append(f"(the latest {len(found)} of {total} shown)")
    return _result(tool, args, "\n".join(lines), found, read)


# --- the registry --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    name: str
    summary: str  # what it answers, for the model's prompt
    args: type[_Args]
    run: Callable[..., ToolResult]


TOOLS: dict[str, Tool] = {t.name: t for t in (
    Tool("count_runs", "how many runs (of a job, in a status, of a failure category) in a window, by status",
         CountRunsArgs, count_runs),
    Tool("list_runs", "the latest runs (of a job, in a status) in a window", ListRunsArgs, list_runs),
    Tool("incident", "one incident by id, or a job's latest: diagnosis, outcome, attempts, reason",
         IncidentArgs, incident),
    Tool("failures_root_causes", "the failures of a window grouped by category and error condition, with root causes",
         RootCausesArgs, failures_root_causes),
    Tool("mttr", "median and p90 time to recover over the failures healed in a window", MttrArgs, mttr),
    Tool("top_failing_jobs", "the jobs with the most failed runs in a window", TopFailingArgs, top_failing_jobs),
    Tool("escalations", "which incidents were escalated in a window and why", EscalationsArgs, escalations),
    Tool("anomalies", "the anomalies (runs that succeeded but looked unusual) of a window", AnomaliesArgs, anomalies),
)}


def run_tool(history: RunHistory, name: str, args: Mapping[str, Any] | BaseModel, now: datetime, *,
             records: RecordStore | None = None) -> ToolResult:
    """Runs the tool `name` with `args` (validated here: pydantic's ValidationError when bad)."""
    tool = TOOLS[name]
    validated = args if isinstance(args, tool.args) else tool.args.model_validate(dict(args))
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    return tool.run(history, validated, now, records=records)


def describe_tools() -> str:
    """One line per tool with its arguments, their values and defaults: the model's menu."""
    lines = []
    for tool in TOOLS.values():
        parts = []
        for name, info in tool.args.model_fields.items():
            kind = _kind(name)
            default = "" if info.default is None else f" = {info.default}"
            parts.append(f"{name}: {kind}{default}")
        lines.append(f"- {tool.name}({', '.join(parts)}): {tool.summary}")
    return "\n".join(lines)


def window_table() -> str:
    """The windows table of this module's docstring (the prompt shows it as it is)."""
    text = __doc__ or ""
    start = text.index("    the question says")
    return "\n".join(line.strip() for line in text[start:].strip().splitlines())


def _kind(name: str) -> str:
    """An argument's values as the model's menu shows them."""
    if name == "status":
        return "|".join(RunStatus.__args__)  # type: ignore[attr-defined]
    if name == "category":
        return "|".join(Category.__args__)  # type: ignore[attr-defined]
    if name == "window":
        return "window"
    if name == "limit":
        return f"1..{MAX_LIMIT}"
    return "text"


# --- formatting ----------------------------------------------------------------------------------


def _result(tool: str, args: _Args, text: str, rows: list[dict[str, Any]], read: _Reader) -> ToolResult:
    return ToolResult(tool=tool, args=args.model_dump(mode="json", exclude_none=True), text=text, rows=rows,
                      sql=list(read.sql))


def _plain(row: Mapping[str, Any], keys: Sequence[str] | None = None) -> dict[str, Any]:
    """A row as JSON values: times as UTC stamps."""
    return {k: _json(row[k]) for k in (keys or row.keys())}


def _json(value: Any) -> Any:
    return value.astimezone(timezone.utc).strftime(UTC_STAMP) if isinstance(value, datetime) else value


def _record_cause(records: RecordStore | None, incident_id: str, budget: list[int] | None = None) -> str | None:
    """The root cause as the history's writer takes it from the record (`rows.root_cause`), for rows
    written before the history kept it (`budget`: record files this answer may still read)."""
    if records is None or (budget is not None and budget[0] <= 0):
        return None
    if budget is not None:
        budget[0] -= 1
    try:
        record: IncidentRecord | None = records.load(incident_id)
    except (OSError, ValueError):
        return None
    return history_rows.root_cause(record) if record else None


def _count(n: int, noun: str) -> str:
    if n == 1:
        return f"1 {noun}"
    plural = noun[:-1] + "ies" if noun.endswith("y") and noun[-2:-1] not in "aeiou" else noun + "s"
    return f"{n} {plural}"


def _minute(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")


def _minute_text(stamp: str | None) -> str:
    """A row's UTC stamp (…Z) to the minute."""
    return stamp.replace("T", " ")[:16] if stamp else "(unknown time)"


def _duration(seconds: float | None) -> str:
    """Seconds as people read them, with the exact seconds: "15 min (900 s)"."""
    if seconds is None:
        return "(unknown)"
    exact = f"{seconds:.0f} s" if float(seconds).is_integer() else f"{seconds:.1f} s"
    if seconds < 60:
        return exact
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    spelled = (f"{hours} h " if hours else "") + f"{minutes} min" + (f" {rest} s" if rest else "")
    return f"{spelled} ({exact})"

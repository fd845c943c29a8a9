"""`RunHistory`: the run history's one reader and writer, over SQLAlchemy Core.

SQLite by default (`HEALER_DATA_DIR/history.sqlite3`, 0600, WAL, `BEGIN IMMEDIATE` for writes), or
the PostgreSQL database `HEAL_HISTORY_URL` names (psycopg 3), for healers that share one. Opening it
migrates the schema (`migrations.py`). The engine's pool hands each call its own connection, so the
healer's worker thread and the dashboard's threads may use one `RunHistory` at once.

Who writes what: the watcher records every run it lists (`record_runs`, idempotent upserts); the
healer records an incident and the actions of its attempts after each heal or resume step
(`record_incident`, idempotent); the learned policy adds its experience tuples (`add_experience`).
Readers: the policy's state (`job_history`), the dashboard's plots (`metrics`, `totals`).
The watcher also records what each new succeeded run did (`record_telemetry`, from its event log)
and the anomaly detector's verdict on it (`judge_run`); the detector learns from the job's good runs
(`good_telemetry`: succeeded, not flagged, or flagged and then dismissed or marked expected by a
person, `label_run`). Recovery metrics and the policy's history count failure incidents only.
Text from records is redacted again with the healer's secrets, and the URL is shown only masked.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from agents.errors import HistoryError
from agents.files import private_dir, private_file
from agents.history import rows
from agents.history.metrics import ClosedIncident, DayMetrics, by_day, summarize, window_start
from agents.history.migrations import migrate
from agents.history.schema import actions, experience, incidents, runs, telemetry
from agents.policy.decision import HISTORY_WINDOW
from agents.record import TERMINAL_STATES, IncidentRecord
from agents.redact import redact
from cde_client import JobRun

if TYPE_CHECKING:
    from agents.config import Settings

HISTORY_FILE = "history.sqlite3"  # under HEALER_DATA_DIR when HEAL_HISTORY_URL is empty
SQLITE_BUSY_S = 30.0  # a write waits this long for another writer (another healer process) to finish
POSTGRES_CONNECT_S = 10
_WRITE = "history_write"  # the execution option that makes SQLite's BEGIN an IMMEDIATE one


def history_url(settings: Settings) -> str:
    """The database URL the settings name: HEAL_HISTORY_URL, else SQLite under HEALER_DATA_DIR."""
    if settings.history_url:
        return settings.history_url
    return f"sqlite:///{Path(settings.data_dir).resolve() / HISTORY_FILE}"


def vc_of(jobs_api_url: str) -> str:
    """The key of a CDE virtual cluster's rows: the host of its Jobs API URL."""
    return (urlsplit(jobs_api_url).hostname or "").lower()


@dataclass(frozen=True)
class RunRow:
    job: str
    run_id: int
    status: str
    started: datetime | None
    ended: datetime | None
    duration_s: float | None
    resources: dict[str, Any] | None  # None: known only from an incident, never listed
    failure_condition: str | None
    failure_category: str | None
    incident_id: str | None
    outcome: str | None
    healer_run: bool


@dataclass(frozen=True)
class IncidentRow:
    incident_id: str
    job: str
    run_id: int
    failed_at: datetime | None
    opened_at: datetime
    ended_at: datetime | None
    state: str
    attempts: int
    reason: str
    failure_condition: str | None
    failure_category: str | None
    mode: str
    model: str | None


@dataclass(frozen=True)
class ActionRow:
    incident_id: str
    attempt: int
    action: str
    policy: str
    reason: str
    overridden: str
    q_values: dict[str, float]
    verdict: str
    cluster_s: float
    model_tokens: int
    model_s: float
    started: datetime | None
    ended: datetime | None


@dataclass(frozen=True)
class JobHistory:
    """A job's past, as `agents.policy.decision.PolicyState` reads it."""

    recent_failures: int  # failed runs among the job's last `window` finished runs (its own, not the healer's)
    last_worked: str | None  # the action of the attempt that healed the job's last healed incident
    last_escalated: bool  # the job's last finished incident was escalated
    runs: list[RunRow]  # those last finished runs, newest first


@dataclass(frozen=True)
class TelemetryRow:
    """A succeeded run's figures from its event log, and the anomaly detector's verdict on it."""

    job: str
    run_id: int
    ended: datetime | None  # the run's, from the runs table (None when it was never listed)
    features: dict[str, float]  # agents.telemetry.as_features
    tables_written: list[str]
    complete: bool
    anomalous: bool | None  # None: not judged
    judgement: dict[str, Any] | None
    label: str | None  # expected | dismissed: a person said the run is normal
    incident_id: str | None

    @property
    def normal(self) -> bool:
        """Whether the detector may learn from the run: not flagged, or flagged and then called normal."""
        return not self.anomalous or self.label is not None


@dataclass(frozen=True)
class Experience:
    id: int  # increasing: `experiences(since_id)` reads the ones added after
    incident_id: str
    attempt: int
    state: dict[str, Any]
    action: str
    reward: float
    next_state: dict[str, Any] | None  # None: the incident ended with this action
    created_at: datetime


class RunHistory:
    """Every run of the watched jobs, the incidents and the actions they took, of one CDE cluster."""

    def __init__(self, url: str, *, vc: str = "", secrets: Iterable[str] = ()) -> None:
        """`url`: `sqlite:///<path>` or `postgresql+psycopg://...`; `vc`: the cluster whose rows these are."""
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise HistoryError("the run history's URL does not parse as a database URL") from None
        self.shown = parsed.render_as_string(hide_password=True)  # what messages may say of the database
        self.vc = vc
        self._secrets = tuple(s for s in secrets if s)
        self._engine = _engine(parsed, self.shown)
        try:
            with self._writing() as conn:
                self.version_found, self.version = migrate(conn, f"the run history at {self.shown}")
        except SQLAlchemyError as exc:  # unreachable, refused, not a database: the healer does not start
            self._engine.dispose()
            cause = redact(str(getattr(exc, "orig", None) or exc).strip(), (*self._secrets, *_passwords(parsed)))
            raise HistoryError(f"the run history at {self.shown} cannot be opened: {cause}") from None
        except BaseException:
            self._engine.dispose()
            raise

    @classmethod
    def open(cls, settings: Settings) -> RunHistory:
        """The history the settings name (HEAL_HISTORY_URL, else SQLite under HEALER_DATA_DIR)."""
        if not settings.history_url:
            private_dir(Path(settings.data_dir))
        return cls(history_url(settings), vc=vc_of(settings.jobs_api_url), secrets=settings.secrets)

    def __repr__(self) -> str:
        return f"RunHistory({self.shown!r}, vc={self.vc!r})"

    def __enter__(self) -> RunHistory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._engine.dispose()

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name  # sqlite | postgresql

    # --- writing ---------------------------------------------------------------------------------

    def record_runs(self, listed: Iterable[JobRun], healer_runs: Collection[int] = frozenset()) -> int:
        """Upserts the runs as CDE lists them (`healer_runs`: the ids the healer created or started);
        the incident's columns are left as `record_incident` wrote them. Returns how many were given."""
        now = datetime.now(timezone.utc)
        batch = {(run.job, run.id): rows.run_row(self.vc, run, run.id in healer_runs, now) for run in listed}
        if not batch:
            return 0
        with self._writing() as conn:
            self._upsert(conn, runs, list(batch.values()), ("vc", "job", "run_id"),
                         replace=("status", "started", "ended", "duration_s", "resources", "recorded_at"),
                         custom=lambda new: {"healer_run": or_(runs.c.healer_run, new.healer_run)})
        return len(batch)

    def record_incident(self, record: IncidentRecord) -> None:
        """Upserts the incident, the actions of its attempts and its failed run's incident columns.
        Idempotent; called after every heal or resume step. Its end time is kept from the first
        call that saw it ended."""
        now = datetime.now(timezone.utc)
        incident = rows.incident_row(self.vc, record, self._secrets)
        attempts = rows.action_rows(self.vc, record, self._secrets)
        with self._writing() as conn:
            self._upsert(conn, incidents, [incident], ("vc", "incident_id"),
                         replace=tuple(k for k in incident if k not in ("vc", "incident_id", "opened_at", "ended_at")),
                         custom=lambda new: {"ended_at": func.coalesce(incidents.c.ended_at, new.ended_at)})
            self._upsert(conn, runs, [rows.failed_run_row(self.vc, record, now)], ("vc", "job", "run_id"),
                         replace=("incident_id", "outcome"),
                         custom=lambda new: {
                             "failure_condition": func.coalesce(new.failure_condition, runs.c.failure_condition),
                             "failure_category": func.coalesce(new.failure_category, runs.c.failure_category)})
            if attempts:
                self._upsert(conn, actions, attempts, ("vc", "incident_id", "attempt"),
                             replace=tuple(k for k in attempts[0] if k not in ("vc", "incident_id", "attempt")))

    def record_telemetry(self, job: str, run_id: int, features: Mapping[str, float], tables_written: Iterable[str],
                         complete: bool) -> None:
        """Upserts a run's figures; a verdict or label already recorded stays."""
        row = {"vc": self.vc, "job": job, "run_id": run_id, "features": rows.as_json(dict(features)),
               "tables_written": rows.as_json(sorted(tables_written)), "complete": complete,
               "fetched_at": datetime.now(timezone.utc)}
        with self._writing() as conn:
            self._upsert(conn, telemetry, [row], ("vc", "job", "run_id"),
                         replace=("features", "tables_written", "complete", "fetched_at"))

    def judge_run(self, job: str, run_id: int, anomalous: bool, judgement: Mapping[str, Any],
                  incident_id: str | None = None) -> None:
        """The detector's verdict on a run whose telemetry is recorded."""
        with self._writing() as conn:
            conn.execute(update(telemetry).where(*self._telemetry_key(job, run_id)).values(
                anomalous=anomalous, judgement=rows.as_json(dict(judgement)), incident_id=incident_id))

    def label_run(self, job: str, run_id: int, label: str | None) -> None:
        """A person's word on a flagged run: `expected` or `dismissed` (the detector learns it as normal)."""
        if label not in (None, "expected", "dismissed"):
            raise ValueError(f"a run's label is expected or dismissed, not {label!r}")
        with self._writing() as conn:
            conn.execute(update(telemetry).where(*self._telemetry_key(job, run_id)).values(label=label))

    def add_experience(self, incident_id: str, attempt: int, state: Mapping[str, Any] | Any, action: str,
                       reward: float, next_state: Mapping[str, Any] | Any | None = None) -> int:
        """Stores one (state, action, reward, next state) tuple of an incident's attempt; states are
        mappings or dataclasses (a `PolicyState`). Adding an attempt's tuple again replaces it under a
        new id, so readers of `experiences(since_id)` see the change. Returns its id."""
        row = {"vc": self.vc, "incident_id": incident_id, "attempt": attempt, "state": rows.as_json(_plain(state)),
               "action": str(action), "reward": float(reward),
               "next_state": None if next_state is None else rows.as_json(_plain(next_state)),
               "created_at": datetime.now(timezone.utc)}
        with self._writing() as conn:
            conn.execute(delete(experience).where(experience.c.vc == self.vc, experience.c.incident_id == incident_id,
                                                  experience.c.attempt == attempt))
            return int(conn.execute(insert(experience).values(row)).inserted_primary_key[0])

    # --- reading ---------------------------------------------------------------------------------

    def runs_without_telemetry(self, since: datetime, limit: int) -> list[RunRow]:
        """The jobs' own succeeded runs that ended after `since` and have no telemetry row yet,
        oldest first (earlier runs are the later ones' history), at most `limit`."""
        known = (select(telemetry.c.run_id).where(telemetry.c.vc == runs.c.vc, telemetry.c.job == runs.c.job,
                                                  telemetry.c.run_id == runs.c.run_id).exists())
        query = (select(runs).where(runs.c.vc == self.vc, runs.c.status == "succeeded", runs.c.healer_run.is_(False),
                                    runs.c.ended >= since, ~known)
                 .order_by(runs.c.run_id).limit(limit))
        with self._reading() as conn:
            return [_run(r) for r in conn.execute(query).mappings()]

    def job_telemetry(self, job: str, limit: int = 60, before_run: int | None = None) -> list[TelemetryRow]:
        """The job's last `limit` runs with telemetry (before run `before_run`, when given), oldest first."""
        query = (select(telemetry, runs.c.ended).select_from(telemetry.outerjoin(
                     runs, (runs.c.vc == telemetry.c.vc) & (runs.c.job == telemetry.c.job)
                     & (runs.c.run_id == telemetry.c.run_id)))
                 .where(telemetry.c.vc == self.vc, telemetry.c.job == job))
        if before_run is not None:
            query = query.where(telemetry.c.run_id < before_run)
        query = query.order_by(telemetry.c.run_id.desc()).limit(limit)
        with self._reading() as conn:
            found = conn.execute(query).mappings().all()
        return [_telemetry(r) for r in reversed(found)]

    def telemetry_of(self, job: str, run_id: int) -> TelemetryRow | None:
        found = self.job_telemetry(job, limit=1, before_run=run_id + 1)
        return found[0] if found and found[0].run_id == run_id else None

    def experiences(self, since_id: int = 0) -> list[Experience]:
        """The tuples added after `since_id`, oldest first."""
        query = (select(experience).where(experience.c.vc == self.vc, experience.c.id > since_id)
                 .order_by(experience.c.id))
        with self._reading() as conn:
            found = conn.execute(query).mappings().all()
        return [Experience(id=r["id"], incident_id=r["incident_id"], attempt=r["attempt"], state=json.loads(r["state"]),
                           action=r["action"], reward=r["reward"],
                           next_state=None if r["next_state"] is None else json.loads(r["next_state"]),
                           created_at=r["created_at"]) for r in found]

    def has_experience(self, incident_id: str) -> bool:
        """Whether the incident's steps were stored (a finished incident teaches once)."""
        query = (select(experience.c.id).where(experience.c.vc == self.vc, experience.c.incident_id == incident_id)
                 .limit(1))
        with self._reading() as conn:
            return conn.execute(query).first() is not None

    def job_history(self, job: str, window: int = HISTORY_WINDOW) -> JobHistory:
        """The job's last `window` finished runs and how its last incidents went (PolicyState's fields)."""
        last_runs = (select(runs).where(runs.c.vc == self.vc, runs.c.job == job, runs.c.healer_run.is_(False),
                                        runs.c.ended.is_not(None))
                     .order_by(runs.c.ended.desc(), runs.c.run_id.desc()).limit(window))
        mine = (incidents.c.vc == self.vc, incidents.c.job == job, incidents.c.ended_at.is_not(None))
        last_healed = (select(incidents.c.incident_id).where(*mine, incidents.c.state == "healed")
                       .order_by(incidents.c.ended_at.desc(), incidents.c.incident_id.desc()).limit(1).scalar_subquery())
        worked = (select(actions.c.action).where(actions.c.vc == self.vc, actions.c.incident_id == last_healed)
                  .order_by(actions.c.attempt.desc()).limit(1))
        last_state = (select(incidents.c.state).where(*mine, incidents.c.kind == "failure",
                                                      incidents.c.state.in_(TERMINAL_STATES))
                      .order_by(incidents.c.ended_at.desc(), incidents.c.incident_id.desc()).limit(1))
        with self._reading() as conn:
            found = [_run(r) for r in conn.execute(last_runs).mappings()]
            last_worked = conn.execute(worked).scalar()
            last_finished = conn.execute(last_state).scalar()
        return JobHistory(recent_failures=sum(r.status == "failed" for r in found), last_worked=last_worked,
                          last_escalated=last_finished == "escalated", runs=found)

    def metrics(self, days: int, now: datetime | None = None) -> list[DayMetrics]:
        """Per UTC day of the last `days` (today included, oldest first): incidents closed, healed,
        escalated, auto-resolution rate, time to recover (median, p90)."""
        now = now or datetime.now(timezone.utc)
        return by_day(self._closed(window_start(days, now), now), days, now)

    def totals(self, days: int, now: datetime | None = None) -> DayMetrics:
        """The same over the whole window (`day` None): medians of all its incidents, not of the days'."""
        now = now or datetime.now(timezone.utc)
        return summarize(self._closed(window_start(days, now), now))

    def runs(self, job: str | None = None) -> list[RunRow]:
        """The runs recorded (of one job, or all), newest end first."""
        query = select(runs).where(runs.c.vc == self.vc)
        if job is not None:
            query = query.where(runs.c.job == job)
        with self._reading() as conn:
            return [_run(r) for r in conn.execute(query.order_by(runs.c.ended.desc(), runs.c.run_id.desc())).mappings()]

    def incident(self, incident_id: str) -> IncidentRow | None:
        query = select(incidents).where(incidents.c.vc == self.vc, incidents.c.incident_id == incident_id)
        with self._reading() as conn:
            found = conn.execute(query).mappings().first()
        if found is None:
            return None
        return IncidentRow(**{f.name: found[f.name] for f in dataclasses.fields(IncidentRow)})

    def actions(self, incident_id: str) -> list[ActionRow]:
        """The actions of an incident's attempts, in order."""
        query = (select(actions).where(actions.c.vc == self.vc, actions.c.incident_id == incident_id)
                 .order_by(actions.c.attempt))
        with self._reading() as conn:
            found = conn.execute(query).mappings().all()
        return [ActionRow(**{f.name: json.loads(r[f.name]) if f.name == "q_values" else r[f.name]
                             for f in dataclasses.fields(ActionRow)}) for r in found]

    # --- the machinery ---------------------------------------------------------------------------

    def _closed(self, start: datetime, until: datetime) -> list[ClosedIncident]:
        """The incidents that ended from `start` to `until`."""
        query = select(incidents).where(incidents.c.vc == self.vc, incidents.c.ended_at >= start,
                                        incidents.c.ended_at <= until, incidents.c.state.in_(TERMINAL_STATES),
                                        incidents.c.kind == "failure")
        with self._reading() as conn:
            found = conn.execute(query).mappings().all()
        return [ClosedIncident(incident_id=r["incident_id"], job=r["job"], state=r["state"], failed_at=r["failed_at"],
                               opened_at=r["opened_at"], ended_at=r["ended_at"]) for r in found]

    def _telemetry_key(self, job: str, run_id: int) -> tuple[Any, ...]:
        return telemetry.c.vc == self.vc, telemetry.c.job == job, telemetry.c.run_id == run_id

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read connection, for read-only queries of other packages (agents/ops) over these tables."""
        with self._reading() as conn:
            yield conn

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A connection in a write transaction, committed at the end (rolled back on an error)."""
        with self._engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            yield conn

    def _upsert(self, conn: Connection, table: Table, values: list[dict[str, Any]], keys: tuple[str, ...],
                replace: Iterable[str] = (), custom: Callable[[Any], dict[str, Any]] | None = None) -> None:
        """INSERT ... ON CONFLICT (keys) DO UPDATE: `replace` columns take the new values, `custom`
        (of the new row, `excluded`) says how the others combine."""
        dialect_insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        statement = dialect_insert(table)
        new = statement.excluded
        changes: dict[str, Any] = {column: new[column] for column in replace}
        if custom is not None:
            changes.update(custom(new))
        conn.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=changes), values)


def _engine(url: Any, shown: str) -> Engine:
    if url.drivername == "sqlite":
        if not url.database or url.database == ":memory:":
            raise HistoryError(f"the run history needs a file, not {shown}")
        path = Path(url.database)
        path.parent.mkdir(parents=True, exist_ok=True)
        private_file(path)  # 0600 before SQLite creates it (its -wal and -shm files take the same mode)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_S})
        event.listen(engine, "connect", _sqlite_connected)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.drivername == "postgresql+psycopg":
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": POSTGRES_CONNECT_S})
    raise HistoryError(f"the run history keeps to SQLite or PostgreSQL (postgresql+psycopg://), not {shown}")


def _sqlite_connected(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # the driver opens no transaction of its own: `_sqlite_begin` does
    dbapi_connection.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def _sqlite_begin(conn: Connection) -> None:
    """Writes take the write lock at BEGIN, so two writers wait (busy timeout) instead of failing."""
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")


def _run(found: Mapping[str, Any]) -> RunRow:
    values = {f.name: found[f.name] for f in dataclasses.fields(RunRow)}
    values["resources"] = json.loads(found["resources"]) if found["resources"] is not None else None
    values["healer_run"] = bool(found["healer_run"])
    return RunRow(**values)


def _telemetry(found: Mapping[str, Any]) -> TelemetryRow:
    return TelemetryRow(job=found["job"], run_id=found["run_id"], ended=found["ended"],
                        features=json.loads(found["features"]), tables_written=json.loads(found["tables_written"]),
                        complete=bool(found["complete"]),
                        anomalous=None if found["anomalous"] is None else bool(found["anomalous"]),
                        judgement=None if found["judgement"] is None else json.loads(found["judgement"]),
                        label=found["label"], incident_id=found["incident_id"])


def _passwords(url: Any) -> tuple[str, ...]:
    return (url.password,) if url.password else ()


def _plain(value: Any) -> Any:
    """A state as JSON values: a dataclass (PolicyState) as its fields."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return dict(value)

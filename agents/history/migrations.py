"""The run history's schema, created and migrated by our code: numbered migrations applied in order.

`schema_version` holds the number of the last migration applied (no table: 0, an empty database).
`migrate` runs, in one transaction, every migration above the database's version and records the
new one; opening the history calls it, so an older database is brought up to date at the first open
by a newer healer. A database whose version is above `LATEST` was written by a newer healer: this
one refuses it (`HistoryError`) rather than read or write tables whose meaning it does not know.
Healers sharing a PostgreSQL database migrate one at a time (a transaction-scoped advisory lock);
on SQLite the transaction is `BEGIN IMMEDIATE` (the store's engine), which serializes them too.

Each migration states its DDL as it was when written (its own `MetaData`, plain column types), never
through `schema.py`'s current tables: a later migration that changes a table must not change what
an earlier one created. Adding one: a function here, one line in `MIGRATIONS`, the new shape in
`schema.py` (a test checks that the two agree), and a test that opens a database of the version before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    select,
    text,
)

from agents.errors import HistoryError

VERSION_TABLE = "schema_version"
LOCK_KEY = 0x6865616C  # "heal": the PostgreSQL advisory lock healers migrate under


def _when() -> DateTime:
    return DateTime(timezone=True)


def _v1_run_history(conn: Connection) -> None:
    """Runs, incidents and the actions of their attempts, with what each cost."""
    meta = MetaData()
    Table(VERSION_TABLE, meta, Column("version", Integer, nullable=False))
    Table("runs", meta,
          Column("vc", String(255), primary_key=True), Column("job", String(255), primary_key=True),
          Column("run_id", BigInteger, primary_key=True, autoincrement=False),
          Column("status", String(32), nullable=False), Column("started", _when()), Column("ended", _when()),
          Column("duration_s", Float), Column("resources", Text), Column("failure_condition", String(255)),
          Column("failure_category", String(32)), Column("incident_id", String(255)), Column("outcome", String(32)),
          Column("healer_run", Boolean, nullable=False), Column("recorded_at", _when(), nullable=False),
          Index("runs_by_job_end", "vc", "job", "ended"))
    Table("incidents", meta,
          Column("vc", String(255), primary_key=True), Column("incident_id", String(255), primary_key=True),
          Column("job", String(255), nullable=False), Column("run_id", BigInteger, nullable=False),
          Column("failed_at", _when()), Column("opened_at", _when(), nullable=False), Column("ended_at", _when()),
          Column("state", String(32), nullable=False), Column("attempts", Integer, nullable=False),
          Column("reason", Text, nullable=False), Column("failure_condition", String(255)),
          Column("failure_category", String(32)), Column("mode", String(32), nullable=False),
          Column("model", String(255)), Column("updated_at", _when(), nullable=False),
          Index("incidents_by_end", "vc", "ended_at"), Index("incidents_by_job", "vc", "job", "ended_at"))
    Table("actions", meta,
          Column("vc", String(255), primary_key=True), Column("incident_id", String(255), primary_key=True),
          Column("attempt", Integer, primary_key=True, autoincrement=False),
          Column("action", String(32), nullable=False), Column("policy", String(32), nullable=False),
          Column("reason", Text, nullable=False), Column("overridden", Text, nullable=False),
          Column("q_values", Text, nullable=False), Column("verdict", Text, nullable=False),
          Column("cluster_s", Float, nullable=False), Column("model_tokens", Integer, nullable=False),
          Column("model_s", Float, nullable=False), Column("started", _when()), Column("ended", _when()))
    meta.create_all(conn)


def _v2_experience(conn: Connection) -> None:
    """The learned policy's (state, action, reward, next state) tuples, one per incident attempt."""
    meta = MetaData()
    Table("experience", meta,
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("vc", String(255), nullable=False), Column("incident_id", String(255), nullable=False),
          Column("attempt", Integer, nullable=False), Column("state", Text, nullable=False),
          Column("action", String(32), nullable=False), Column("reward", Float, nullable=False),
          Column("next_state", Text), Column("created_at", _when(), nullable=False),
          UniqueConstraint("vc", "incident_id", "attempt", name="experience_once_per_attempt"),
          sqlite_autoincrement=True)
    meta.create_all(conn)


def _v3_telemetry(conn: Connection) -> None:
    """What each succeeded run did (its event log's figures) and the anomaly detector's verdict on it;
    incidents get their kind (failure | anomaly) and their diagnosis's root cause."""
    conn.execute(text("ALTER TABLE incidents ADD COLUMN kind VARCHAR(32) NOT NULL DEFAULT 'failure'"))
    conn.execute(text("ALTER TABLE incidents ADD COLUMN root_cause TEXT"))
    meta = MetaData()
    Table("telemetry", meta,
          Column("vc", String(255), primary_key=True), Column("job", String(255), primary_key=True),
          Column("run_id", BigInteger, primary_key=True, autoincrement=False),
          Column("features", Text, nullable=False), Column("tables_written", Text, nullable=False),
          Column("complete", Boolean, nullable=False), Column("fetched_at", _when(), nullable=False),
          Column("anomalous", Boolean), Column("judgement", Text), Column("label", String(32)),
          Column("incident_id", String(255)))
    meta.create_all(conn)


class Migration(NamedTuple):
    number: int
    apply: Callable[[Connection], None]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, _v1_run_history),
    Migration(2, _v2_experience),
    Migration(3, _v3_telemetry),
)
LATEST = MIGRATIONS[-1].number


def current_version(conn: Connection) -> int:
    """The database's schema version: 0 when it has no version table (or an empty one)."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return 0
    found = conn.execute(text(f"SELECT MAX(version) FROM {VERSION_TABLE}")).scalar()
    return int(found or 0)


def migrate(conn: Connection, where: str = "the run history") -> tuple[int, int]:
    """Brings the database of `conn` (inside a write transaction, committed by the caller) to `LATEST`:
    (the version found, the version now). `where` names the database in errors (no password)."""
    if conn.dialect.name == "postgresql":  # healers sharing the database migrate one at a time
        conn.execute(select(text(f"pg_advisory_xact_lock({LOCK_KEY})")))
    found = current_version(conn)
    if found > LATEST:
        raise HistoryError(f"{where} has schema version {found}, newer than this healer's {LATEST}: a newer "
                           "healer has migrated it; upgrade this healer (or give it another HEAL_HISTORY_URL)")
    for migration in MIGRATIONS:
        if migration.number > found:
            migration.apply(conn)
    if found < LATEST:
        conn.execute(text(f"DELETE FROM {VERSION_TABLE}"))
        conn.execute(text(f"INSERT INTO {VERSION_TABLE} (version) VALUES (:version)"), {"version": LATEST})
    return found, LATEST

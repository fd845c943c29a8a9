"""The run history's tables as the code reads and writes them now (the last migration's shape).

Every table is keyed by `vc`, the CDE virtual cluster the rows come from (the host of JOBS_API_URL),
so healers of several clusters can share one PostgreSQL database without their job names and run
ids colliding; a `RunHistory` reads and writes its own cluster's rows only. Times are UTC
(`UtcDateTime`), JSON values are text (sorted keys), durations are seconds.

`migrations.py` creates these tables with its own frozen copies of each version's DDL; a test checks
that a database migrated to the latest version has exactly the columns declared here.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

NAME = 255  # job names, incident ids and the like
STATE = 32  # run statuses, incident states, action names


class UtcDateTime(TypeDecorator):
    """An aware UTC datetime in, an aware UTC datetime out, whatever the database keeps (SQLite: text
    without a zone, PostgreSQL: timestamptz). A naive datetime is refused: its zone would be a guess."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"the run history keeps aware datetimes only, got {value!r}")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


metadata = MetaData()

schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, nullable=False),  # one row: the last migration applied
)

runs = Table(
    "runs", metadata,
    Column("vc", String(NAME), primary_key=True),
    Column("job", String(NAME), primary_key=True),
    Column("run_id", BigInteger, primary_key=True, autoincrement=False),
    Column("status", String(STATE), nullable=False),  # CDE's: starting | running | succeeded | failed | killed | ...
    Column("started", UtcDateTime),
    Column("ended", UtcDateTime),
    Column("duration_s", Float),
    Column("resources", Text),  # JSON: driverMemory, executorMemory, driverCores, executorCores, numExecutors
    Column("failure_condition", String(NAME)),  # Spark's error condition, once an incident diagnosed the run
    Column("failure_category", String(STATE)),  # code | config | transient | data | unknown
    Column("incident_id", String(NAME)),  # the incident this failed run opened
    Column("outcome", String(STATE)),  # that incident's state (healed | escalated | ... | open)
    Column("healer_run", Boolean, nullable=False, default=False),  # a run the healer created or started
    Column("recorded_at", UtcDateTime, nullable=False),
    Index("runs_by_job_end", "vc", "job", "ended"),
)

incidents = Table(
    "incidents", metadata,
    Column("vc", String(NAME), primary_key=True),
    Column("incident_id", String(NAME), primary_key=True),
    Column("job", String(NAME), nullable=False),
    Column("run_id", BigInteger, nullable=False),
    Column("failed_at", UtcDateTime),  # the failed run's end: MTTR counts from here
    Column("opened_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime),  # when it reached a final state; None while open or awaiting approval
    Column("state", String(STATE), nullable=False),  # the record's: open ... healed | escalated | rejected | error
    Column("attempts", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("failure_condition", String(NAME)),
    Column("failure_category", String(STATE)),
    Column("mode", String(STATE), nullable=False),
    Column("model", String(NAME)),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("kind", String(STATE), nullable=False, server_default="failure"),  # failure | anomaly
    Column("root_cause", Text),  # the diagnosis's, redacted; None until diagnosed (and for anomalies)
    Index("incidents_by_end", "vc", "ended_at"),
    Index("incidents_by_job", "vc", "job", "ended_at"),
)

actions = Table(
    "actions", metadata,
    Column("vc", String(NAME), primary_key=True),
    Column("incident_id", String(NAME), primary_key=True),
    Column("attempt", Integer, primary_key=True, autoincrement=False),
    Column("action", String(STATE), nullable=False),  # an agents.policy Action value
    Column("policy", String(STATE), nullable=False),  # static | learned
    Column("reason", Text, nullable=False),
    Column("overridden", Text, nullable=False),  # the safety rule that replaced the policy's choice, if one did
    Column("q_values", Text, nullable=False),  # JSON {action: estimate}; {} for the static order
    Column("verdict", Text, nullable=False),
    Column("cluster_s", Float, nullable=False),  # fix, pre-flight, check and measurement runs, start to end
    Column("model_tokens", Integer, nullable=False),
    Column("model_s", Float, nullable=False),
    Column("started", UtcDateTime),
    Column("ended", UtcDateTime),
)

experience = Table(
    "experience", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("vc", String(NAME), nullable=False),
    Column("incident_id", String(NAME), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("state", Text, nullable=False),  # JSON of the PolicyState the action was chosen in
    Column("action", String(STATE), nullable=False),
    Column("reward", Float, nullable=False),
    Column("next_state", Text),  # JSON; None: the incident ended with this action
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("vc", "incident_id", "attempt", name="experience_once_per_attempt"),
    sqlite_autoincrement=True,  # ids never reused, even after a replaced tuple's row is deleted
)

telemetry = Table(
    "telemetry", metadata,
    Column("vc", String(NAME), primary_key=True),
    Column("job", String(NAME), primary_key=True),
    Column("run_id", BigInteger, primary_key=True, autoincrement=False),
    Column("features", Text, nullable=False),  # JSON: agents.telemetry.as_features of the run's event log
    Column("tables_written", Text, nullable=False),  # JSON list of table names
    Column("complete", Boolean, nullable=False),  # the event log had the application's end
    Column("fetched_at", UtcDateTime, nullable=False),
    Column("anomalous", Boolean),  # the detector's verdict; None: not judged (yet)
    Column("judgement", Text),  # JSON: agents.anomaly.Judgement.to_dict()
    Column("label", String(STATE)),  # an operator's: expected | dismissed (the run counts as normal); None
    Column("incident_id", String(NAME)),  # the anomaly incident the run opened
)

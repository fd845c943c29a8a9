"""The checkpoint database: LangGraph's ``SqliteSaver`` on ``<data dir>/checkpoints.sqlite``, readable
by the healer's user alone and free of the healer's own secrets.

The graph state is plain JSON, but parts of it come from outside: a job's spark section (its args and
conf may carry a password, such as the workload password handed to the job), its code, error text.
``RedactingSerializer`` writes every occurrence of the exact values of ``Settings.secrets`` (workload
password, model key, CDE token) as ``***`` in checkpoints and pending writes, as records do; the
values the running graph holds in memory are untouched, so only an incident resumed from its
checkpoint sees ``***`` where a secret was. The database is created 0600; SQLite gives its -wal and
-shm files the database's mode.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver

from agents.files import private_file

DATABASE = "checkpoints.sqlite"
SIDE_FILES = ("-wal", "-shm", "-journal")
MASK = "***"
MIN_SECRET_CHARS = 4  # as records: a shorter value would mask ordinary text


def scrub(value: Any, secrets: tuple[str, ...]) -> Any:
    """``value`` with each secret masked in its strings, through dicts, lists and tuples (other
    objects, such as LangGraph's own, are kept as they are)."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, MASK)
        return value
    if type(value) is dict:
        return {key: scrub(item, secrets) for key, item in value.items()}
    if type(value) in (list, tuple):
        return type(value)(scrub(item, secrets) for item in value)
    return value


class RedactingSerializer(JsonPlusSerializer):
    """LangGraph's serializer, with the healer's secrets masked in what it writes."""

    def __init__(self, secrets: Iterable[str], **options: Any) -> None:
        super().__init__(**options)
        self.secrets = tuple(sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True))

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        return super().dumps_typed(scrub(obj, self.secrets) if self.secrets else obj)


def open_checkpointer(data_dir: Path, secrets: Iterable[str]) -> tuple[sqlite3.Connection, SqliteSaver]:
    """The connection (the caller closes it) and the saver over ``<data_dir>/checkpoints.sqlite``."""
    path = private_file(data_dir / DATABASE)
    for suffix in SIDE_FILES:  # left by an earlier version, perhaps with a looser mode
        side = path.with_name(path.name + suffix)
        if side.exists():
            private_file(side)
    conn = sqlite3.connect(path, check_same_thread=False)
    return conn, SqliteSaver(conn, serde=RedactingSerializer(secrets))

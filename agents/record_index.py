"""The incident index: one SQLite row per incident record, so that listing incidents, asking whether
one exists and which runs the healer started read no record file.

``<data dir>/incidents/.index/incidents.sqlite3`` (WAL), in a directory of its own under the records
it summarizes, so that SQLite's -wal and -shm files never change the records directory's mtime. The
record files stay the source of truth; the index is derived from them and rebuilt from them when in
doubt:

- `RecordStore.save` writes the record file (atomically), then its row, in the same call.
- Every query first compares the records directory's mtime with the one the index last saw (one
  ``stat``). A difference starts a *sync*: the directory is listed, files whose size or mtime differ
  from their row (or that have none) are read again, and rows whose file is gone are dropped. So a
  record dropped in by hand, or written by a process that died between its file and its row, is
  picked up by the next query after the directory changed. The first query of each process syncs
  too (a crash between a file and its row can leave the mtime as the index recorded it).
- A directory seen less than RACY_NS after it changed is looked at once more a second later: a file
  landing in the same clock tick as one of our writes leaves the mtime unchanged. That look compares
  the file names with the rows (no stats) and syncs only when they differ.
- A record edited in place (no new directory entry) is re-read by the next sync that runs for any
  other reason, or by `sync()`; `RecordStore.load` always reads the file itself.
- A missing, deleted or replaced index file is made again; an unreadable or corrupt one (SQLite's
  "file is not a database", "malformed") or one of another SCHEMA_VERSION is rebuilt from the files.

Rows carry `seq`, a number increasing in commit order across processes (writers are serialized by
SQLite), so a reader asks for the rows changed since the last one it saw (`summaries(since_seq)`);
`removed` counts rows dropped, so a reader knows when to start over. One connection per index,
shared by its threads under a lock.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from agents.files import private_dir, private_file

log = logging.getLogger("healer.index")

INDEX_DIR = ".index"  # under the records directory; its name starts with "." like no record's
INDEX_NAME = "incidents.sqlite3"
SCHEMA_VERSION = 1  # PRAGMA user_version; another value: the index is rebuilt
RACY_NS = 1_000_000_000  # a directory seen this soon after it changed is synced once more (mtime ticks)
BUSY_TIMEOUT_S = 30.0
CHUNK = 500  # ids per `IN (...)` (SQLite's variable limit is 999 on old builds)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    incident_id TEXT PRIMARY KEY, job TEXT NOT NULL, run_id INTEGER NOT NULL, state TEXT NOT NULL,
    reason TEXT NOT NULL, mode TEXT NOT NULL, model TEXT, opened_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    tries INTEGER NOT NULL, verdict TEXT NOT NULL,
    seq INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS incidents_by_seq ON incidents (seq);
CREATE INDEX IF NOT EXISTS incidents_by_state ON incidents (state);
CREATE TABLE IF NOT EXISTS owned_runs (
    run_id INTEGER NOT NULL, incident_id TEXT NOT NULL, PRIMARY KEY (run_id, incident_id));
CREATE INDEX IF NOT EXISTS owned_runs_by_incident ON owned_runs (incident_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
_COLUMNS = "incident_id, job, run_id, state, reason, mode, model, opened_at, updated_at, tries, verdict, seq"


@dataclass(frozen=True, slots=True)
class IncidentSummary:
    """What the incident list shows and the watcher asks about one incident: a row of the index."""

    incident_id: str
    job: str
    run_id: int
    state: str
    reason: str
    mode: str
    model: str | None
    opened_at: str
    updated_at: str
    tries: int  # attempts made
    verdict: str  # the latest attempt's verdict ("" before one)
    seq: int = 0  # when the row was last written, in commit order (0: not from the index)


@dataclass(frozen=True)
class IndexEntry:
    """A record as the index keeps it: its summary and the runs the healer started for it."""

    summary: IncidentSummary
    owned_runs: tuple[int, ...] = ()


T = TypeVar("T")
ReadRecord = Callable[[Path], IndexEntry]  # a record file to its entry; OSError/ValueError when unreadable


class IndexCorrupt(Exception):
    """The index file is not a usable database: it is rebuilt from the record files."""


class RecordIndex:
    """The index of the records in `directory`; `read` turns a record file into its entry (for syncs)."""

    def __init__(self, directory: Path, read: ReadRecord) -> None:
        self.dir = directory
        self.path = directory / INDEX_DIR / INDEX_NAME
        self._read = read
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._inode: int | None = None
        self._synced = False  # this process has synced once (a crash between a file and its row)
        self.files_read = 0  # record files read by syncs: for tests and benchmarks

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
            self._db, self._inode = None, None

    # --- writing --------------------------------------------------------------------------------

    def put(self, entry: IndexEntry, stat: os.stat_result, dir_before_ns: int | None) -> None:
        """The row of a record just written (`stat`: its file's, after the write). `dir_before_ns`:
        the directory's mtime before the write; when the index had seen exactly that one, it takes
        the directory as it is now as seen too (no sync needed for our own write)."""
        def write(db: sqlite3.Connection) -> None:
            with _transaction(db):
                self._upsert(db, entry, stat)
                if dir_before_ns is not None and _meta(db, "dir_mtime_ns") == dir_before_ns:
                    _set_meta(db, "dir_mtime_ns", os.stat(self.dir).st_mtime_ns)
                    _set_meta(db, "seen_ns", time.time_ns())

        self._run(write, sync=False)

    def dir_mtime_ns(self) -> int | None:
        try:
            return os.stat(self.dir).st_mtime_ns
        except OSError:
            return None

    # --- queries --------------------------------------------------------------------------------

    def summaries(self, since_seq: int = 0) -> list[IncidentSummary]:
        """Rows written after `since_seq` (0: all), newest incident first."""
        return self._run(lambda db: [IncidentSummary(*row) for row in db.execute(
            f"SELECT {_COLUMNS} FROM incidents WHERE seq > ? ORDER BY opened_at DESC, incident_id DESC",
            (since_seq,))])

    def version(self) -> tuple[int, int]:
        """(the last seq written, rows removed so far): a reader that saw another `removed` starts over."""
        return self._run(lambda db: (_meta(db, "seq") or 0, _meta(db, "removed") or 0))

    def existing(self, incidents: Iterable[str]) -> set[str]:
        """Those of `incidents` that have a record."""
        return self._run(lambda db: _in(db, "SELECT incident_id FROM incidents WHERE incident_id IN ({})",
                                        list(incidents)))

    def not_in_states(self, states: Iterable[str]) -> list[str]:
        """Ids of the incidents whose state is none of `states`, newest first."""
        wanted = list(states)
        marks = ",".join("?" * len(wanted))
        return self._run(lambda db: [row[0] for row in db.execute(
            f"SELECT incident_id FROM incidents WHERE state NOT IN ({marks}) "
            "ORDER BY opened_at DESC, incident_id DESC", wanted)])

    def owned(self, run_ids: Iterable[int]) -> set[int]:
        """Those of `run_ids` that the healer started for an incident (fix, check, pre-flight runs)."""
        return self._run(lambda db: _in(db, "SELECT DISTINCT run_id FROM owned_runs WHERE run_id IN ({})",
                                        list(run_ids)))

    def sync(self) -> None:
        """Brings the index in line with the record files now (see the module docstring)."""
        self._run(self._sync, sync=False)

    # --- the machinery --------------------------------------------------------------------------

    def _run(self, action: Callable[[sqlite3.Connection], T], sync: bool = True) -> T:
        """`action` on a fresh, checked index; a corrupt index is rebuilt once and `action` retried."""
        with self._lock:
            for first in (True, False):
                try:
                    db = self._connection()
                    if sync:
                        self._refresh(db)
                    return action(db)
                except (sqlite3.DatabaseError, IndexCorrupt) as exc:
                    if not first or not _corrupt(exc):
                        raise
                    log.warning("incident index %s unusable (%s): rebuilding it from the records", self.path, exc)
                    self._discard()
            raise AssertionError("unreachable")

    def _connection(self) -> sqlite3.Connection:
        """The open index; opened (made, checked) again when its file was removed or replaced."""
        try:
            inode = os.stat(self.path).st_ino
        except FileNotFoundError:
            inode = None
        if self._db is not None and inode == self._inode:
            return self._db
        self.close()
        private_dir(self.path.parent)
        private_file(self.path)  # 0600 before SQLite writes anything (its -wal and -shm files copy the mode)
        db = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        try:
            if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise IndexCorrupt("quick_check failed")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise IndexCorrupt(f"schema version {version}, this healer's is {SCHEMA_VERSION}")
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            db.close()
            raise
        self._db, self._inode = db, os.stat(self.path).st_ino
        self._synced = False
        return db

    def _discard(self) -> None:
        """Removes the index file (and its WAL); the next query makes a new one from the records."""
        self.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def _refresh(self, db: sqlite3.Connection) -> None:
        """Syncs when the directory may hold what the index does not (see the module docstring)."""
        mtime = os.stat(self.dir).st_mtime_ns
        if not self._synced or mtime != _meta(db, "dir_mtime_ns"):
            self._sync(db)
            return
        # Seen within RACY_NS of its change: a file may have landed after that in the same clock tick.
        # One more look once the tick is surely over settles it (earlier looks could not). Such a file
        # is a new name (or a name gone): the names are compared first, the files' stats only if they differ.
        racy = (_meta(db, "seen_ns") or 0) - mtime < RACY_NS
        if racy and time.time_ns() - mtime >= RACY_NS:
            names = {name[: -len(".json")] for name in os.listdir(self.dir)
                     if name.endswith(".json") and not name.startswith(".")}
            if names != {row[0] for row in db.execute("SELECT incident_id FROM incidents")}:
                self._sync(db)
                return
            with _transaction(db):
                if _meta(db, "dir_mtime_ns") == mtime:
                    _set_meta(db, "seen_ns", time.time_ns())

    def _sync(self, db: sqlite3.Connection) -> None:
        with _transaction(db):  # one writer at a time, across processes
            dir_mtime = os.stat(self.dir).st_mtime_ns  # before listing: a change during the listing syncs again
            seen_at = time.time_ns()
            rows = {incident: (mtime, size) for incident, mtime, size in
                    db.execute("SELECT incident_id, mtime_ns, size FROM incidents")}
            present: set[str] = set()
            with os.scandir(self.dir) as entries:
                for entry in entries:
                    if entry.name.startswith(".") or not entry.name.endswith(".json"):
                        continue  # the index's directory, temporary files of writes in flight
                    incident = entry.name[: -len(".json")]
                    try:
                        stat = entry.stat()  # before reading: a file replaced meanwhile differs next time
                    except FileNotFoundError:
                        continue
                    present.add(incident)
                    if rows.get(incident) == (stat.st_mtime_ns, stat.st_size):
                        continue
                    try:
                        entry_read = self._read(Path(entry.path))
                        self.files_read += 1
                    except (OSError, ValueError) as exc:
                        log.warning("incident record %s is unreadable, not indexed: %s", entry.path, exc)
                        present.discard(incident)
                        continue
                    self._upsert(db, entry_read, stat)
            gone = sorted(set(rows) - present)
            for start in range(0, len(gone), CHUNK):
                chunk = gone[start : start + CHUNK]
                marks = ",".join("?" * len(chunk))
                db.execute(f"DELETE FROM incidents WHERE incident_id IN ({marks})", chunk)
                db.execute(f"DELETE FROM owned_runs WHERE incident_id IN ({marks})", chunk)
            if gone:
                _set_meta(db, "removed", (_meta(db, "removed") or 0) + len(gone))
            _set_meta(db, "dir_mtime_ns", dir_mtime)
            _set_meta(db, "seen_ns", seen_at)
        self._synced = True

    @staticmethod
    def _upsert(db: sqlite3.Connection, entry: IndexEntry, stat: os.stat_result) -> None:
        s = entry.summary
        seq = (_meta(db, "seq") or 0) + 1
        _set_meta(db, "seq", seq)
        db.execute(
            "INSERT OR REPLACE INTO incidents (incident_id, job, run_id, state, reason, mode, model, opened_at, "
            "updated_at, tries, verdict, seq, mtime_ns, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (s.incident_id, s.job, s.run_id, s.state, s.reason, s.mode, s.model, s.opened_at, s.updated_at,
             s.tries, s.verdict, seq, stat.st_mtime_ns, stat.st_size))
        db.execute("DELETE FROM owned_runs WHERE incident_id = ?", (s.incident_id,))
        db.executemany("INSERT OR IGNORE INTO owned_runs (run_id, incident_id) VALUES (?, ?)",
                       [(run_id, s.incident_id) for run_id in entry.owned_runs])


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _meta(db: sqlite3.Connection, key: str) -> int | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else int(row[0])


def _set_meta(db: sqlite3.Connection, key: str, value: int) -> None:
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


def _in(db: sqlite3.Connection, sql: str, values: list) -> set:
    found: set = set()
    for start in range(0, len(values), CHUNK):
        chunk = values[start : start + CHUNK]
        found.update(row[0] for row in db.execute(sql.format(",".join("?" * len(chunk))), chunk))
    return found


def _corrupt(exc: BaseException) -> bool:
    """A damaged or foreign index file (rebuilt), as opposed to a busy or locked one (raised)."""
    if isinstance(exc, IndexCorrupt):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        return False  # locked, busy, disk I/O: passes with time (the healer retries the cycle)
    return type(exc) is sqlite3.DatabaseError  # "file is not a database", "database disk image is malformed"

"""SQLite persistence of the local CDE's state (`<data_dir>/state.db`).

Tables hold the API objects as JSON documents, plus the few columns the server queries:

    meta(key, value)                        token signing key, schema version
    jobs(name, doc)                         job objects as GET /jobs/{name} returns them
    resources(name, doc)                    resource objects without `files`
    resource_files(resource, path, doc)     file entries {path, signature, sizeBytes, created, modified}
    runs(id, job, status, process_group, doc)   run objects; ids increase and are never reused
    request_ids(request_id, run_id)         requestIDs already used by POST /jobs/{name}/run

File contents and logs live beside the database (see `paths.DataPaths`). One connection, shared by
all threads under a lock; every write commits at once, so a crash loses at most the call in flight.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resource_files (
    resource TEXT NOT NULL, path TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (resource, path));
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL, status TEXT NOT NULL,
    process_group INTEGER, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS request_ids (request_id TEXT PRIMARY KEY, run_id INTEGER NOT NULL);
"""


class Store:
    """All reads and writes of state.db."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        if self.get_meta("schema_version") is None:
            self.set_meta("schema_version", SCHEMA_VERSION)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- helpers -------------------------------------------------------------------------------
    def _one(self, sql: str, args: tuple[Any, ...]) -> Any:
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
        return None if row is None else row[0]

    def _docs(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [json.loads(row[0]) for row in rows]

    def _write(self, sql: str, args: tuple[Any, ...]) -> int:
        with self._lock:
            return self._db.execute(sql, args).rowcount

    # -- meta ----------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        return self._one("SELECT value FROM meta WHERE key = ?", (key,))

    def set_meta(self, key: str, value: str) -> None:
        self._write("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- jobs ----------------------------------------------------------------------------------
    def get_job(self, name: str) -> dict[str, Any] | None:
        doc = self._one("SELECT doc FROM jobs WHERE name = ?", (name,))
        return None if doc is None else json.loads(doc)

    def insert_job(self, doc: dict[str, Any]) -> bool:
        """False when a job of that name exists."""
        with self._lock:
            try:
                self._db.execute("INSERT INTO jobs (name, doc) VALUES (?, ?)", (doc["name"], json.dumps(doc)))
            except sqlite3.IntegrityError:
                return False
        return True

    def update_job(self, doc: dict[str, Any]) -> None:
        self._write("UPDATE jobs SET doc = ? WHERE name = ?", (json.dumps(doc), doc["name"]))

    def delete_job(self, name: str) -> bool:
        return self._write("DELETE FROM jobs WHERE name = ?", (name,)) > 0

    def list_jobs(self) -> list[dict[str, Any]]:
        return self._docs("SELECT doc FROM jobs ORDER BY name")

    # -- resources -----------------------------------------------------------------------------
    def get_resource(self, name: str) -> dict[str, Any] | None:
        doc = self._one("SELECT doc FROM resources WHERE name = ?", (name,))
        return None if doc is None else json.loads(doc)

    def insert_resource(self, doc: dict[str, Any]) -> bool:
        """False when a resource of that name exists."""
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO resources (name, doc) VALUES (?, ?)", (doc["name"], json.dumps(doc))
                )
            except sqlite3.IntegrityError:
                return False
        return True

    def update_resource(self, doc: dict[str, Any]) -> None:
        self._write("UPDATE resources SET doc = ? WHERE name = ?", (json.dumps(doc), doc["name"]))

    def delete_resource(self, name: str) -> bool:
        with self._lock:
            self._db.execute("DELETE FROM resource_files WHERE resource = ?", (name,))
            return self._db.execute("DELETE FROM resources WHERE name = ?", (name,)).rowcount > 0

    def list_resources(self) -> list[dict[str, Any]]:
        return self._docs("SELECT doc FROM resources ORDER BY name")

    def list_files(self, resource: str) -> list[dict[str, Any]]:
        return self._docs("SELECT doc FROM resource_files WHERE resource = ? ORDER BY path", (resource,))

    def get_file(self, resource: str, path: str) -> dict[str, Any] | None:
        doc = self._one("SELECT doc FROM resource_files WHERE resource = ? AND path = ?", (resource, path))
        return None if doc is None else json.loads(doc)

    def put_file(self, resource: str, doc: dict[str, Any]) -> None:
        self._write(
            "INSERT OR REPLACE INTO resource_files (resource, path, doc) VALUES (?, ?, ?)",
            (resource, doc["path"], json.dumps(doc)),
        )

    def delete_file(self, resource: str, path: str) -> bool:
        return self._write("DELETE FROM resource_files WHERE resource = ? AND path = ?", (resource, path)) > 0

    # -- runs ----------------------------------------------------------------------------------
    def insert_run(self, doc: dict[str, Any]) -> int:
        """Store a new run; its id is assigned here and written into `doc`."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO runs (job, status, doc) VALUES (?, ?, ?)", (doc["job"], doc["status"], "{}")
            )
            run_id = int(cursor.lastrowid or 0)
            doc["id"] = run_id
            self._db.execute("UPDATE runs SET doc = ? WHERE id = ?", (json.dumps(doc), run_id))
        return run_id

    def update_run(self, doc: dict[str, Any]) -> None:
        self._write(
            "UPDATE runs SET doc = ?, status = ? WHERE id = ?", (json.dumps(doc), doc["status"], doc["id"])
        )

    def get_run(self, run_id: int) -> dict[str, Any] | None:
        doc = self._one("SELECT doc FROM runs WHERE id = ?", (run_id,))
        return None if doc is None else json.loads(doc)

    def list_runs(self) -> list[dict[str, Any]]:
        return self._docs("SELECT doc FROM runs ORDER BY id")

    def runs_in_status(self, statuses: tuple[str, ...]) -> list[dict[str, Any]]:
        marks = ",".join("?" for _ in statuses)
        return self._docs(f"SELECT doc FROM runs WHERE status IN ({marks}) ORDER BY id", statuses)

    def set_process_group(self, run_id: int, process_group: int | None) -> None:
        self._write("UPDATE runs SET process_group = ? WHERE id = ?", (process_group, run_id))

    def process_group(self, run_id: int) -> int | None:
        return self._one("SELECT process_group FROM runs WHERE id = ?", (run_id,))

    # -- request ids ---------------------------------------------------------------------------
    def run_for_request(self, request_id: str) -> int | None:
        return self._one("SELECT run_id FROM request_ids WHERE request_id = ?", (request_id,))

    def remember_request(self, request_id: str, run_id: int) -> None:
        self._write("INSERT INTO request_ids (request_id, run_id) VALUES (?, ?)", (request_id, run_id))

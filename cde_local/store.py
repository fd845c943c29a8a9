"""SQLite persistence of the local CDE's state (`<data_dir>/state.db`).

Tables hold the API objects as JSON documents, plus the few columns the server queries:

    meta(key, value)                        token signing key, schema version
    jobs(name, doc, ...)                    job objects as GET /jobs/{name} returns them
    resources(name, doc, ...)               resource objects without `files`
    resource_files(resource, path, doc)     file entries {path, signature, sizeBytes, created, modified}
    runs(id, job, status, process_group, doc, ...)   run objects; ids increase and are never reused
    request_ids(request_id, run_id)         requestIDs already used by POST /jobs/{name}/run

jobs, resources and runs also hold the columns list calls filter and order on (queries.RUNS, JOBS, RESOURCES:
`runs.started`, `jobs.spark_executor_cores`, ...), indexed, written with every document, plus
`python_only` and `rev` (queries.py says what they mean). `list_page` answers a list call in SQL,
reading only the documents of the page when it can.

Schema versions (`PRAGMA user_version`): 0, the first layout (the tables above without the list
columns); 2, the list columns, their indexes and the `rev` triggers. Opening a version-0 file adds
them; its rows then have `python_only` 1 (the columns' default) until `_sync` fills their columns,
which it does at every open for rows so marked (rows written since by code that knows nothing of
the columns are marked so by the triggers).

File contents and logs live beside the database (see `paths.DataPaths`). One connection, shared by
all threads under a lock; every write commits at once, so a crash loses at most the call in flight.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from . import filters, queries
from .filters import ListQuery
from .queries import Table

SCHEMA_VERSION = 2

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

Page = tuple[list[dict[str, Any]], dict[str, Any]]
MAX_CURSORS = 256  # where recent pages ended, to start the next ones there (Store._page_in_sql)


def _list_columns(table: Table) -> dict[str, str]:
    """Version 2's columns of `table`, with their declarations (version 0 has key, doc, raw columns).
    The list columns are untyped: no affinity, so integers stay integers and texts texts."""
    added = {c.name: c.sql for c in table.written if c.written == "value"}
    added["python_only"] = "python_only INTEGER NOT NULL DEFAULT 1"
    added["rev"] = "rev INTEGER NOT NULL DEFAULT 0"
    return added


def _list_indexes(table: Table) -> list[str]:
    """Version 2's indexes and trigger of `table`."""
    key, name = table.key, table.name
    statements = []
    for column in table.indexed:  # the key after the column: filtered rows come in the key's order
        tail = "" if key == "id" else f', "{key}"'  # (runs: the rowid is in every index already)
        statements.append(f'CREATE INDEX IF NOT EXISTS {name}_by_{column} ON {name} ("{column}"{tail})')
    statements += [
        f'CREATE INDEX IF NOT EXISTS {name}_python_only ON {name} ("{key}") WHERE python_only',
        # A document rewritten without `rev + 1` comes from code that did not write the columns.
        f"CREATE TRIGGER IF NOT EXISTS {name}_doc_without_columns AFTER UPDATE OF doc ON {name} "
        f'WHEN NEW.rev = OLD.rev BEGIN UPDATE {name} SET python_only = 1 WHERE "{key}" = NEW."{key}"; END',
    ]
    return statements


class Store:
    """All reads and writes of state.db."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._generation = dict.fromkeys(queries.TABLES, 0)  # writes to each listed table
        self._cursors: dict[tuple[Any, ...], tuple[int, Any, Any]] = {}  # oldest first
        self._db.create_function(queries.SQL_LIKE, 2, _sql_function(filters.like_matches), deterministic=True)
        self._db.create_function(
            queries.SQL_RLIKE, 2, _sql_function(filters.rlike_matches), deterministic=True
        )
        self._db.executescript(_SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Bring a file of an earlier schema version to this one; fill the list columns where due."""
        with self.transaction():
            if self._db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                for table in queries.TABLES.values():
                    present = {row[1] for row in self._db.execute(f"PRAGMA table_info({table.name})")}
                    for column, declaration in _list_columns(table).items():
                        if column not in present:
                            self._db.execute(f"ALTER TABLE {table.name} ADD COLUMN {declaration}")
                    for statement in _list_indexes(table):
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self.set_meta("schema_version", str(SCHEMA_VERSION))
            for table in queries.TABLES.values():
                self._sync(table)

    def _sync(self, table: Table) -> None:
        """Write the list columns of the rows marked python_only (each stays so if it must)."""
        key, columns = table.key, table.written
        sets = ", ".join(f"{c.sql} = ?" for c in columns)
        rows = self._db.execute(f'SELECT "{key}", doc FROM {table.name} WHERE python_only').fetchall()
        updates = []
        for row_key, doc in rows:
            values, python_only = queries.column_values(table, json.loads(doc))
            updates.append((*(values[c.name] for c in columns), int(python_only), row_key))
        self._generation[table.name] += 1
        self._db.executemany(f'UPDATE {table.name} SET {sets}, python_only = ? WHERE "{key}" = ?', updates)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """The writes inside commit together (or not at all). Re-entrant: inner blocks join."""
        with self._lock:
            if self._db.in_transaction:
                yield
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def set_trace(self, callback: Callable[[str], None] | None) -> None:
        """Call `callback` with every SQL statement run, its parameters written in (tests, measures)."""
        with self._lock:
            self._db.set_trace_callback(callback)

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

    def _insert_doc(self, table: Table, doc: dict[str, Any]) -> bool:
        """Insert a job or resource with its list columns; False when its name is taken."""
        values, python_only = queries.column_values(table, doc)
        columns = table.written
        names = ", ".join(c.sql for c in columns)
        marks = ", ".join("?" for _ in columns)
        sql = f'INSERT INTO {table.name} ("{table.key}", doc, {names}, python_only) VALUES (?, ?, {marks}, ?)'
        args = (doc[table.key], json.dumps(doc), *(values[c.name] for c in columns), int(python_only))
        with self._lock:
            self._generation[table.name] += 1
            try:
                self._db.execute(sql, args)
            except sqlite3.IntegrityError:
                return False
        return True

    def _set_doc(self, table: Table, key: Any, doc: dict[str, Any]) -> int:
        """Rewrite the document of row `key` and its list columns; the number of rows changed."""
        values, python_only = queries.column_values(table, doc)
        columns = table.written
        sets = ", ".join(f"{c.sql} = ?" for c in columns)
        sql = (
            f'UPDATE {table.name} SET doc = ?, {sets}, python_only = ?, rev = rev + 1 WHERE "{table.key}" = ?'
        )
        args = (json.dumps(doc), *(values[c.name] for c in columns), int(python_only), key)
        with self._lock:
            self._generation[table.name] += 1
            return self._write(sql, args)

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
        return self._insert_doc(queries.JOBS, doc)

    def update_job(self, doc: dict[str, Any]) -> None:
        self._set_doc(queries.JOBS, doc["name"], doc)

    def delete_job(self, name: str) -> bool:
        with self._lock:
            self._generation["jobs"] += 1
            return self._write("DELETE FROM jobs WHERE name = ?", (name,)) > 0

    def list_jobs(self) -> list[dict[str, Any]]:
        return self._docs("SELECT doc FROM jobs ORDER BY name")

    # -- resources -----------------------------------------------------------------------------
    def get_resource(self, name: str) -> dict[str, Any] | None:
        doc = self._one("SELECT doc FROM resources WHERE name = ?", (name,))
        return None if doc is None else json.loads(doc)

    def insert_resource(self, doc: dict[str, Any]) -> bool:
        """False when a resource of that name exists."""
        return self._insert_doc(queries.RESOURCES, doc)

    def update_resource(self, doc: dict[str, Any]) -> None:
        self._set_doc(queries.RESOURCES, doc["name"], doc)

    def delete_resource(self, name: str) -> bool:
        with self._lock:
            self._generation["resources"] += 1
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
        with self.transaction():
            cursor = self._db.execute(
                "INSERT INTO runs (job, status, doc) VALUES (?, ?, ?)", (doc["job"], doc["status"], "{}")
            )
            run_id = int(cursor.lastrowid or 0)
            doc["id"] = run_id
            self._set_doc(queries.RUNS, run_id, doc)
        return run_id

    def update_run(self, doc: dict[str, Any]) -> None:
        self._set_doc(queries.RUNS, doc["id"], doc)

    def get_run(self, run_id: int) -> dict[str, Any] | None:
        doc = self._one("SELECT doc FROM runs WHERE id = ?", (run_id,))
        return None if doc is None else json.loads(doc)

    def list_runs(self) -> list[dict[str, Any]]:
        return self._docs("SELECT doc FROM runs ORDER BY id")

    # -- list calls ----------------------------------------------------------------------------
    def list_page(
        self,
        table_name: str,
        query: ListQuery,
        view: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        raw: bool = False,
    ) -> Page:
        """One page of `jobs`, `resources` or `runs` and its `meta`, as `filters.apply` gives them
        over every document in key order (same items, order, meta and BadRequest), decoding only
        the documents of the page when the conditions and the order are on columns.

        `view` turns a document into the listed item (resources: `files` added); it may add keys,
        but none a column's path matches ignoring case. `raw` (without a view): a page read by its
        keys gives its documents as the stored JSON text (`orjson.Fragment`, for orjson.dumps to
        splice into the reply), not decoded to be encoded again; other pages are dicts as always."""
        table = queries.TABLES[table_name]
        shown = view or (lambda doc: doc)
        key_order = f'ORDER BY "{table.key}"'
        with self._lock:
            plan = None if self._has_python_only(table) else queries.plan(table, query)
            if plan is None:
                every = self._docs(f"SELECT doc FROM {table.name} {key_order}")
                return filters.apply([shown(doc) for doc in every], query, table.key)
            risky = plan.first_raising_residual()
            if risky is not None:  # it may raise on any row it meets: filters.py checks them all
                reach = plan.reach(risky)
                met = self._docs(f"SELECT doc FROM {table.name} WHERE {reach.text} {key_order}", reach.params)
                return filters.apply([shown(doc) for doc in met], query, table.key)
            raising = plan.raising()
            if raising != queries.FALSE:
                sql = f"SELECT doc FROM {table.name} WHERE {raising.text} {key_order}"
                for doc in self._iter_docs(sql, raising.params):  # in key order, as filters.apply
                    item = shown(doc)
                    for condition in query.filters:  # raises BadRequest where filters.apply raises
                        if not condition.matches(item):
                            break
            where, residual = plan.where(), plan.residual
            if plan.order is None:
                met = self._docs(f"SELECT doc FROM {table.name} WHERE {where.text} {key_order}", where.params)
                rest = ListQuery(residual, query.orderby, query.orderasc, query.limit, query.offset)
                return filters.apply([shown(doc) for doc in met], rest, table.key)
            if not residual:
                page, more = self._page_in_sql(plan, query, shown, raw=raw and view is None)
            else:
                sql = f"SELECT doc FROM {table.name} WHERE {where.text} ORDER BY {plan.order}"
                page, more = self._page_in_python(sql, where.params, residual, query, shown)
        return page, {"hasNext": more, "limit": query.limit, "offset": query.offset, "count": len(page)}

    def _page_in_sql(
        self, plan: queries.Plan, query: ListQuery, shown: Callable[[dict[str, Any]], dict[str, Any]],
        raw: bool = False,
    ) -> tuple[list[Any], bool]:
        """The page's keys first (from the indexes: no document is read to be skipped), then its
        documents. A page that starts where the last one served in this order ended, with no write
        in between, starts after that page's last row instead of skipping `offset` rows: paging
        through a list costs what its pages hold."""
        table, where = plan.table, plan.where()
        assert plan.ordered is not None and plan.order is not None
        wanted = query.limit + 1 if query.limit < filters.MAX_INT64 else -1  # -1: no limit
        resume = (table.name, where, plan.order, query.offset)
        cursor = self._cursors.get(resume)
        if cursor is not None and cursor[0] == self._generation[table.name]:
            after = plan.after(cursor[1], cursor[2])
            sql_tail, args = f"AND {after.text} ORDER BY {plan.order} LIMIT ?", (*after.params, wanted)
        else:
            sql_tail, args = f"ORDER BY {plan.order} LIMIT ? OFFSET ?", (wanted, query.offset)
        keys = self._db.execute(
            f'SELECT {plan.ordered.sql}, "{table.key}" FROM {table.name} WHERE {where.text} {sql_tail}',
            (*where.params, *args),
        ).fetchall()
        more = len(keys) > query.limit
        keys = keys[: query.limit]
        if not keys:
            return [], False
        if more:
            self._cursors[(table.name, where, plan.order, query.offset + len(keys))] = (
                self._generation[table.name],
                *keys[-1],
            )
            while len(self._cursors) > MAX_CURSORS:
                self._cursors.pop(next(iter(self._cursors)))
        docs = dict(
            self._db.execute(
                f'SELECT "{table.key}", doc FROM {table.name} WHERE "{table.key}" IN (SELECT value FROM json_each(?))',
                (json.dumps([key for _value, key in keys]),),
            ).fetchall()
        )
        if raw:
            return [orjson.Fragment(docs[key]) for _value, key in keys], more
        return [shown(json.loads(docs[key])) for _value, key in keys], more

    def _page_in_python(
        self,
        sql: str,
        params: tuple[Any, ...],
        residual: tuple[filters.Filter, ...],
        query: ListQuery,
        shown: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> tuple[list[dict[str, Any]], bool]:
        """Read `sql`'s rows in order until the page is full, keeping those `residual` matches."""
        page: list[dict[str, Any]] = []
        matched = 0
        for doc in self._iter_docs(sql, params):
            item = shown(doc)
            if not all(condition.matches(item) for condition in residual):
                continue
            if matched >= query.offset:
                if len(page) == query.limit:
                    return page, True
                page.append(item)
            matched += 1
        return page, False

    def _has_python_only(self, table: Table) -> bool:
        return (
            self._db.execute(f"SELECT 1 FROM {table.name} WHERE python_only LIMIT 1").fetchone() is not None
        )

    def _iter_docs(self, sql: str, args: tuple[Any, ...]) -> Iterator[dict[str, Any]]:
        """Documents one by one (the caller holds the lock and may stop early)."""
        cursor = self._db.execute(sql, args)
        try:
            for row in cursor:
                yield json.loads(row[0])
        finally:
            cursor.close()

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


def _sql_function(matches: Callable[[str, Any], bool]) -> Callable[[str, Any], int]:
    """A like/rlike check as an SQL function of (pattern, column value); a missing value never matches."""

    def check(pattern: str, value: Any) -> int:
        return 0 if value is None else int(matches(pattern, value))

    return check

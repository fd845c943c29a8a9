"""Local CDE: list calls answered in SQL (store.list_page, queries.py) give what filters.py gives.

The reference is filters.apply over every document in key order: the way every list call was
answered before the store did it in SQL, and the semantics the SQL must keep (items, order, meta and
the BadRequest message, for every operator, field spelling, order and page). No Spark, no server.
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from cde_local import filters, queries
from cde_local.errors import BadRequest
from cde_local.fill import fill_store
from cde_local.filters import ListQuery
from cde_local.store import SCHEMA_VERSION, Store

# The first schema (version 0), as the store created it before the list columns.
OLD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE jobs (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE resources (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE resource_files (
    resource TEXT NOT NULL, path TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (resource, path));
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL, status TEXT NOT NULL,
    process_group INTEGER, doc TEXT NOT NULL);
CREATE TABLE request_ids (request_id TEXT PRIMARY KEY, run_id INTEGER NOT NULL);
"""

STAMPS = [
    "2023-11-29T00:59:11Z",
    "2023-11-29T03:04:05Z",
    "2023-11-30T00:00:00Z",
    "2024-01-01T12:00:00Z",
    "0001-01-01T00:00:00Z",
    "2023-11-29",  # texts that are no timestamps compare whole
    "2023-11-29T03:04:05+01:00",
    "later",
]
TEXTS = [
    "job-a",
    "job-b",
    "Job-c",
    "job-10",
    "job-9",
    "émile",
    "",
    "a%b_c",
    "z",
    "10",
    "2023-11-29T00:59:11Z",
]
OPERANDS = [
    *TEXTS,
    "a",
    "Job",
    "2023",
    "2023-11",
    "2023-11-29",
    "2023-11-29T03",
    "2023-11-29T03:04",
    "2023-11-29T03:04:05Z",
    "0001",
    "٢٠٢٣",  # Arabic-Indic digits: a date prefix to Python's \d
    "5",
    "3",
    "-1",
    "0",
    "1e3",
    "7.5",
    "nan",
    "inf",
    "-inf",
    " 4 ",
    "1_0",
    "true",
    "false",
    "abc",
    "9007199254740992",
    "succeeded",
    "failed",
]
LIKES = ["job-%", "%a", "_ob-_", "%", "", "2023-11%", "%1_%", "J%", "%-%", "émile", "a%b_c", "1%", "%0"]
RLIKES = ["^job", "a$", "[0-9]+", "^$", "(?i)job", "2023-11-29T0[0-3]", ".", "^1"]
FIELDS = {
    "runs": ["id", "ID", "job", "JOB", "status", "Status", "type", "user", "started", "ended",
             "spark.spec.executorCores", "spark.spec.file", "hidden", "nope", "Spark.Spec.File"],
    "jobs": ["name", "NAME", "type", "created", "modified", "lastUsed", "lastused", "spark.file",
             "spark.executorCores", "SPARK.executorcores", "schedule.enabled", "hidden", "spark", "nope"],
    "resources": ["name", "type", "status", "created", "modified", "files", "pythonEnv.pythonVersion", "Name",
                  "pythonEnvInfo.sizeMb"],
}  # fmt: skip


def maybe(rng: random.Random, doc: dict[str, Any], key: str, values: list[Any]) -> None:
    """Set doc[key] to one of `values`, to null, or leave it missing."""
    roll = rng.random()
    if roll < 0.8:
        doc[key] = rng.choice(values)
    elif roll < 0.9:
        doc[key] = None


def fill_varied(store: Store, seed: int = 7) -> None:
    rng = random.Random(seed)
    for index in range(60):
        job: dict[str, Any] = {
            "name": rng.choice(["job", "Job", "a.b", "z", "émile", "10", "9"]) + f"-{index}"
        }
        maybe(rng, job, "type", ["spark", "airflow", "Spark"])
        for key in ("created", "modified", "lastUsed"):
            maybe(rng, job, key, STAMPS)
        if rng.random() < 0.85:
            spark: dict[str, Any] = {}
            maybe(rng, spark, "file", TEXTS + ["a.py", "b.py"])
            maybe(rng, spark, "executorCores", [-3, 0, 1, 2, 4, 10, 2**53])
            job["spark"] = spark
        job["schedule"] = {"enabled": rng.random() < 0.5}
        maybe(rng, job, "hidden", [True, False])
        assert store.insert_job(job)
    for _ in range(150):
        run: dict[str, Any] = {
            "job": rng.choice(TEXTS),
            "status": rng.choice(["starting", "running", "succeeded", "failed", "killed", "unknown", ""]),
        }
        maybe(rng, run, "type", ["spark", "airflow"])
        maybe(rng, run, "user", TEXTS + ["dex-user"])
        maybe(rng, run, "started", STAMPS)
        maybe(rng, run, "ended", STAMPS)
        spec: dict[str, Any] = {}
        maybe(rng, spec, "executorCores", [1, 2, 4, "4", True, 2.5])
        maybe(rng, spec, "file", TEXTS)
        run["spark"] = {"spec": spec}
        maybe(rng, run, "hidden", [True, False])
        store.insert_run(run)
    for index in range(40):
        resource: dict[str, Any] = {"name": rng.choice(TEXTS[:6]) + f"-{index}"}
        maybe(rng, resource, "type", ["files", "python-env"])
        maybe(rng, resource, "status", ["ready", "building", "failed"])
        maybe(rng, resource, "created", STAMPS)
        maybe(rng, resource, "modified", STAMPS)
        if rng.random() < 0.3:
            resource["pythonEnv"] = {"pythonVersion": rng.choice(["python3", "python3.11"])}
            resource["pythonEnvInfo"] = {"sizeMb": rng.choice([3, 250]), "statusReason": "Build completed"}
        assert store.insert_resource(resource)
        if rng.random() < 0.5:
            store.put_file(
                resource["name"], {"path": rng.choice(["a.py", "b.txt"]), "sizeBytes": rng.randrange(9)}
            )


def random_query(rng: random.Random, table: str) -> ListQuery:
    conditions = []
    for _ in range(rng.choice([0, 1, 1, 2, 2, 3])):
        op = rng.choice(filters.OPERATORS)
        if op in ("in", "notin"):
            value = ",".join(rng.choice(OPERANDS) for _ in range(rng.randrange(1, 5)))
        elif op == "like":
            value = rng.choice(LIKES)
        elif op == "rlike":
            value = rng.choice(RLIKES)
        else:
            value = rng.choice(OPERANDS)
        conditions.append(filters.Filter(rng.choice(FIELDS[table]), op, value))
    return ListQuery(
        filters=tuple(conditions),
        orderby=rng.choice([*FIELDS[table], "", queries.TABLES[table].key]),
        orderasc=rng.random() < 0.5,
        limit=rng.choice([1, 2, 3, 5, 10, 50, 1000, filters.MAX_INT64]),
        offset=rng.choice([0, 0, 0, 1, 2, 5, 20, 10**6, filters.MAX_INT64]),
    )


def viewer(store: Store, table: str) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
    if table != "resources":
        return None
    return lambda doc: {**doc, "files": store.list_files(doc["name"])}


def outcome(answer: Callable[[], Any]) -> Any:
    try:
        return answer()
    except BadRequest as exc:
        return ("400", exc.message)


def reference(store: Store, table: str, query: ListQuery) -> Any:
    """filters.apply over every document in key order: the answer before the store used SQL."""
    docs = {"jobs": store.list_jobs, "runs": store.list_runs, "resources": store.list_resources}[table]()
    view = viewer(store, table) or (lambda doc: doc)
    return outcome(lambda: filters.apply([view(doc) for doc in docs], query, queries.TABLES[table].key))


def answered(store: Store, table: str, query: ListQuery) -> Any:
    return outcome(lambda: store.list_page(table, query, view=viewer(store, table)))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "state.db")
    yield opened
    opened.close()


def python_only_rows(store: Store, table: str) -> int:
    with store.transaction():  # under the store's lock, through its connection
        return store._db.execute(f"SELECT count(*) FROM {table} WHERE python_only").fetchone()[0]


# -- same answers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("table", ["runs", "jobs", "resources"])
def test_sql_answers_equal_the_python_filters_on_random_queries(store: Store, table: str) -> None:
    fill_varied(store)
    assert python_only_rows(store, table) == 0  # runs' non-column fields are odd, not their columns
    rng = random.Random(f"queries-{table}")
    errors = 0
    for _ in range(700):
        query = random_query(rng, table)
        expected = reference(store, table, query)
        assert answered(store, table, query) == expected, query
        errors += isinstance(expected, tuple) and expected[0] == "400"
    assert errors > 5  # the cases cover the errors too


@pytest.mark.parametrize("table", ["runs", "jobs"])
def test_raw_pages_encode_to_the_same_json_as_decoded_ones(store: Store, table: str) -> None:
    # the server's list replies splice stored document text (orjson.Fragment) into the page
    fill_varied(store)
    rng = random.Random(f"raw-{table}")
    spliced = 0
    for _ in range(200):
        query = random_query(rng, table)
        decoded = outcome(lambda query=query: store.list_page(table, query))
        raw = outcome(lambda query=query: store.list_page(table, query, raw=True))
        if isinstance(decoded, tuple) and decoded[0] == "400":
            assert raw == decoded
            continue
        assert json.loads(orjson.dumps(raw)) == json.loads(json.dumps(decoded)), query
        spliced += any(isinstance(item, orjson.Fragment) for item in raw[0])
    assert spliced > 20  # most pages were read by their keys and spliced


@pytest.mark.parametrize(
    ("conditions", "expected_error"),
    [
        (["id[lt]abc"], "is not a number"),
        (["id[in]1,abc"], "'abc' is not a number"),  # run 1 matches 1; run 2 raises
        (["job[eq]nothing", "id[eq]abc"], None),  # no row reaches the bad number
        (["id[eq]abc", "job[eq]nothing"], "is not a number"),  # the first condition raises first
        (["job[rlike]^nothing$", "id[gt]x"], None),
        (["spark.spec.executorCores[eq]true", "id[eq]x"], "'true' is not a number"),  # Python-side field
        (["spark.spec.executorCores[eq]2"], "'2' is not true or false"),  # run 3's cores are a boolean
        (["id[noteq]3", "spark.spec.executorCores[eq]2"], None),
        (["id[in]1", "spark.spec.executorCores[lt]zz"], None),  # run 1's cores are a text
        (["id[notin]1,2,x"], "'x' is not a number"),
    ],
)
def test_errors_are_raised_as_the_python_filters_raise_them(
    store: Store, conditions: list[str], expected_error: str | None
) -> None:
    store.insert_run({"job": "j", "status": "failed", "spark": {"spec": {"executorCores": "4"}}})
    for cores in (2, True):
        store.insert_run({"job": "j", "status": "failed", "spark": {"spec": {"executorCores": cores}}})
    query = ListQuery(filters=filters.parse_filters(conditions))
    expected = reference(store, "runs", query)
    assert answered(store, "runs", query) == expected
    if expected_error is None:
        assert expected[1]["count"] == 0 or expected[0] != "400"
    else:
        assert expected[0] == "400" and expected_error in expected[1]


def test_paging_on_resumes_after_the_last_row_and_sees_writes_between_pages(store: Store) -> None:
    fill_varied(store)
    for orderby, orderasc in [("id", True), ("ID", False), ("started", True), ("user", False), ("job", True)]:
        query = ListQuery(filters=filters.parse_filters(["status[noteq]killed"]), orderby=orderby,
                          orderasc=orderasc, limit=7)  # fmt: skip
        offset = 0
        while True:
            page = ListQuery(query.filters, orderby, orderasc, query.limit, offset)
            assert answered(store, "runs", page) == reference(store, "runs", page)
            if offset == 21:  # a write between pages: the next page is the one OFFSET gives now
                store.insert_run({"job": "job-a", "status": "failed", "user": "", "started": STAMPS[0]})
                first = store.get_run(1)
                assert first is not None
                store.update_run({**first, "status": "killed"})
            if not answered(store, "runs", page)[1]["hasNext"]:
                break
            offset += query.limit


# -- pages read only their rows -------------------------------------------------------------------
def test_a_filtered_page_uses_an_index_and_reads_only_its_documents(tmp_path: Path) -> None:
    fill_store(tmp_path / "cde", jobs=50, runs=3000, seed=1)
    store = Store(tmp_path / "cde" / "state.db")
    try:
        statements: list[str] = []
        store.set_trace(statements.append)
        for conditions, orderby, asc in [
            (["status[eq]failed"], "id", True),
            (["status[eq]failed"], "ID", False),
            (["job[eq]job-0007", "status[in]failed,killed"], "id", False),
            (["started[gte]2000-01-01", "user[noteq]nobody"], "started", True),
        ]:
            statements.clear()
            query = ListQuery(
                filters=filters.parse_filters(conditions), orderby=orderby, orderasc=asc, limit=100
            )
            page, meta = store.list_page("runs", query)
            assert meta["count"] == len(page) > 0
            store.set_trace(None)
            documents_read, plans = 0, []
            for statement in statements:
                plan = " | ".join(row[3] for row in store._db.execute("EXPLAIN QUERY PLAN " + statement))
                assert not re.search(r"SCAN runs($| \|)", plan), (statement, plan)  # no walk of the table
                plans.append(plan)
                if "doc" in statement:
                    documents_read += store._db.execute(f"SELECT count(*) FROM ({statement})").fetchone()[0]
            assert any(re.search(r"USING (COVERING )?INDEX runs_by_", plan) for plan in plans), plans
            assert documents_read == len(page)  # the old store read all 3000 (`SELECT doc FROM runs`)
            store.set_trace(statements.append)
    finally:
        store.close()


# -- rows SQL cannot answer for -------------------------------------------------------------------
def test_documents_sql_cannot_answer_for_are_listed_the_python_way(store: Store) -> None:
    fill_varied(store)
    odd = [
        {"job": "odd", "status": "failed", "Status": "FAILED"},  # two keys a filter `STATUS` may mean
        {"job": "odd", "status": "failed", "user": True},  # a boolean in a text column
        {"job": "odd", "status": "failed", "started": "2023-11-29T00:59:11Z\n"},  # Python's \d and $
        {"job": "odd", "status": "failed", "ended": "٢٠٢٣-11-29T00:59:11Z"},
    ]
    rng = random.Random("odd")
    for doc in odd:
        run_id = store.insert_run(doc)
        assert python_only_rows(store, "runs") == 1
        for _ in range(150):
            query = random_query(rng, "runs")
            assert answered(store, "runs", query) == reference(store, "runs", query), query
        store.update_run({"id": run_id, "job": "odd", "status": "failed"})  # ordinary again
        assert python_only_rows(store, "runs") == 0


# -- migration ------------------------------------------------------------------------------------
def test_a_state_db_of_the_first_schema_is_migrated_on_open(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    source = Store(tmp_path / "source.db")
    fill_varied(source)
    old = sqlite3.connect(path)
    old.executescript(OLD_SCHEMA)
    old.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    for table, key in (("jobs", "name"), ("resources", "name")):
        docs = {"jobs": source.list_jobs, "resources": source.list_resources}[table]()
        old.executemany(
            f"INSERT INTO {table} ({key}, doc) VALUES (?, ?)", [(d[key], json.dumps(d)) for d in docs]
        )
    for run in source.list_runs():  # as the first store wrote them
        old.execute("INSERT INTO runs (job, status, doc) VALUES (?, ?, '{}')", (run["job"], run["status"]))
        old.execute("UPDATE runs SET doc = ? WHERE id = ?", (json.dumps(run), run["id"]))
    old.commit()
    old.close()

    store = Store(path)
    try:
        with store.transaction():
            assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
            indexes = {
                row[0] for row in store._db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
            }
        assert {"runs_by_status", "runs_by_job", "runs_by_started", "jobs_by_spark_executor_cores"} <= indexes
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
        assert store.list_runs() == source.list_runs()
        rng = random.Random("migrated")
        for table in ("runs", "jobs", "resources"):
            assert python_only_rows(store, table) == 0
            for _ in range(100):
                query = random_query(rng, table)
                assert answered(store, table, query) == reference(store, table, query), query
        run_id = store.insert_run({"job": "new", "status": "starting", "started": STAMPS[0]})
        assert (
            store.list_page("runs", ListQuery(filters=filters.parse_filters(["job[eq]new"])))[0][0]["id"]
            == run_id
        )
    finally:
        store.close()
        source.close()

    # Written by code that knows nothing of the columns (the first store's UPDATE): the row is marked,
    # answered the Python way meanwhile, and its columns are written again at the next open.
    old = sqlite3.connect(path)
    doc = {"id": 1, "job": "renamed", "status": "killed", "user": "someone"}
    old.execute("UPDATE runs SET doc = ?, status = ? WHERE id = ?", (json.dumps(doc), "killed", 1))
    old.commit()
    old.close()
    store = Store(path)
    try:
        assert python_only_rows(store, "runs") == 0
        query = ListQuery(filters=filters.parse_filters(["job[eq]renamed", "user[eq]someone"]))
        assert [run["id"] for run in store.list_page("runs", query)[0]] == [1]
    finally:
        store.close()


def test_a_row_rewritten_without_its_columns_is_answered_the_python_way(store: Store) -> None:
    run_id = store.insert_run({"job": "a", "status": "failed"})
    with store.transaction():  # the first store's update statement, which leaves the columns alone
        store._db.execute(
            "UPDATE runs SET doc = ?, status = ? WHERE id = ?",
            (json.dumps({"id": run_id, "job": "b", "status": "failed"}), "failed", run_id),
        )
    assert python_only_rows(store, "runs") == 1
    query = ListQuery(filters=filters.parse_filters(["job[eq]b"]))
    assert [run["id"] for run in store.list_page("runs", query)[0]] == [run_id]

"""Fixtures for the app tests (loaded by conftest.py).

Realistic incident records (written with the real `RecordStore`), a small real `HealerCommands`
that acts on those records the way the healer does when it receives a command, the dashboard
served in-process, and one headless Chromium per test module.

The dashboard's data source is the `dashboard_source` fixture: swap its body for the real healer
(a scripted model, Approve resuming a paused graph) and the browser tests stay as they are.
"""

from __future__ import annotations

import difflib
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from agents.errors import InvalidInput
from agents.record import (
    Attempt,
    Diagnosis,
    Evidence,
    FailedRun,
    GuardVerdict,
    IncidentRecord,
    LlmCall,
    OriginalJob,
    Patch,
    RecordStore,
    StageTiming,
    incident_id,
    utc_now,
)
from app.service import DashboardService, FailedRunRow, StatusStrip, WatcherHealth

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]

# --- the tutorial's job, its log and its fix ----------------------------------------------------

TUTORIAL_JOB = "sql-select-fail"
TUTORIAL_CODE = '''"""Daily balance report: accounts with a balance above 50."""
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("sql-select-fail").getOrCreate()

accounts = spark.createDataFrame(
    [(1, "alice", 120.5), (2, "bob", 80.0), (3, "carol", 42.25)],
    ["account_id", "account_name", "balance"],
)
accounts.createOrReplaceTempView("accounts")

report = spark.sql("SELECT customer_id, balance FROM accounts WHERE balance > 50")
report.show()
spark.stop()
'''
TUTORIAL_FIXED = TUTORIAL_CODE.replace("SELECT customer_id,", "SELECT account_id,")
TUTORIAL_DIFF = "".join(
    difflib.unified_diff(TUTORIAL_CODE.splitlines(keepends=True), TUTORIAL_FIXED.splitlines(keepends=True),
                         "a/sql_select_fail.py", "b/sql_select_fail.py")
)
TUTORIAL_EXCEPTION = (
    "pyspark.errors.exceptions.captured.AnalysisException: [UNRESOLVED_COLUMN.WITH_SUGGESTION] A column, "
    "variable, or function parameter with name `customer_id` cannot be resolved. Did you mean one of the "
    "following? [`account_id`, `balance`, `account_name`]. SQLSTATE: 42703; line 1 pos 7;"
)
TUTORIAL_FRAME = 'File "/app/mount/sql_select_fail.py", line 12, in <module>'
TUTORIAL_LOG = "\n".join(
    [
        "WARNING: Using incubator modules: jdk.incubator.vector",
        "Using Spark's default log4j profile: org/apache/spark/log4j2-defaults.properties",
        "26/11/21 08:54:23 INFO SparkContext: Running Spark version 4.3.0",
        "26/11/21 08:54:23 INFO SparkContext: Java version 17.0.15+6-Debian-1deb12u1",
        "26/11/21 08:54:23 INFO SparkContext: Submitted application: sql-select-fail",
        "26/11/21 08:54:24 INFO Utils: Successfully started service 'sparkDriver' on port 41489.",
        "26/11/21 08:54:24 INFO SparkEnv: Registering BlockManagerMaster",
        "26/11/21 08:54:24 INFO MemoryStore: MemoryStore started with capacity 434.4 MiB",
        "26/11/21 08:54:24 INFO Executor: Starting executor ID driver on host localhost",
        "26/11/21 08:54:25 INFO SharedState: Warehouse path is 'file:/app/mount/spark-warehouse'.",
        "Traceback (most recent call last):",
        "  " + TUTORIAL_FRAME,
        '    report = spark.sql("SELECT customer_id, balance FROM accounts WHERE balance > 50")',
        '  File "/opt/spark/python/lib/pyspark.zip/pyspark/sql/session.py", line 1934, in sql',
        '  File "/opt/spark/python/lib/py4j-0.10.9.9-src.zip/py4j/java_gateway.py", line 1362, in __call__',
        '  File "/opt/spark/python/lib/pyspark.zip/pyspark/errors/exceptions/captured.py", line 262, in deco',
        TUTORIAL_EXCEPTION,
        "'Project ['customer_id, balance#2]",
        "+- Filter (balance#2 > cast(50 as double))",
        "   +- SubqueryAlias accounts",
        "      +- View (`accounts`, [account_id#0L, account_name#1, balance#2])",
        "26/11/21 08:54:25 INFO SparkContext: SparkContext is stopping with exitCode 0.",
        "26/11/21 08:54:25 INFO SparkUI: Stopped Spark web UI at http://localhost:4040",
        "26/11/21 08:54:25 INFO ShutdownHookManager: Shutdown hook called",
    ]
)


def _ago(seconds: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(seconds=seconds)


def _at(base: datetime, seconds: float) -> str:
    return (base + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _stages(base: datetime, spans: list[tuple[str, int, float, float | None]]) -> list[StageTiming]:
    """StageTimings from (stage, attempt, start offset s, duration s or None while running)."""
    out = []
    for stage, attempt, start, duration in spans:
        out.append(
            StageTiming(
                stage=stage,
                attempt=attempt,
                started=_at(base, start),
                ended=_at(base, start + duration) if duration is not None else None,
                duration_s=duration,
            )
        )
    return out


def tutorial_record(run_id: int = 12, opened: datetime | None = None) -> IncidentRecord:
    """The tutorial incident, healed on the second patch try: the first was rejected by the guard."""
    base = opened or _ago(2 * 3600)
    diagnosis = Diagnosis(
        category="code",
        root_cause="The query selects `customer_id`, but the accounts table has no such column: its key "
        "is `account_id` (Spark suggests it first).",
        evidence=[TUTORIAL_EXCEPTION, TUTORIAL_FRAME],
        confidence=0.93,
        source="model",
    )
    return IncidentRecord(
        incident_id=incident_id(TUTORIAL_JOB, run_id),
        job=TUTORIAL_JOB,
        run_id=run_id,
        state="healed",
        reason="fix run succeeded and the output check passed",
        mode="auto",
        model="nvidia/llama-3.3-nemotron-super-49b-v1",
        opened_at=_at(base, 0),
        failed_run=FailedRun(id=run_id, job=TUTORIAL_JOB, status="failed", started=_at(base, -40),
                             ended=_at(base, -5), user="dex-user"),
        original=OriginalJob(name=TUTORIAL_JOB, resource="sql-select-fail-files", file_path="sql_select_fail.py",
                             code=TUTORIAL_CODE, definition={"type": "spark"}),
        driver_log=TUTORIAL_LOG,
        evidence=Evidence(
            error_class="UNRESOLVED_COLUMN.WITH_SUGGESTION",
            message_parameters={"objectName": "`customer_id`"},
            suggestions=["`account_id`", "`balance`", "`account_name`"],
            user_frame=TUTORIAL_FRAME,
            user_line=12,
            exception=TUTORIAL_EXCEPTION,
            distilled="...",
            distilled_tokens=212,
            raw_log_bytes=18_734,
            log_types=["driver/stdout", "driver/stderr"],
        ),
        attempts=[
            Attempt(
                number=1,
                diagnosis=diagnosis,
                patch=Patch(kind="code", explanation="Select `account_id`, the table's key, instead of the "
                            "missing `customer_id`.", code=TUTORIAL_FIXED, source="model"),
                guard=[
                    GuardVerdict(ok=False, rule="bounded-diff", reason="the first proposal rewrote 9 of 14 lines"),
                    GuardVerdict(ok=True, rule="parses"),
                    GuardVerdict(ok=True, rule="allowed-python"),
                    GuardVerdict(ok=True, rule="bounded-diff", reason="1 of 14 lines changed"),
                    GuardVerdict(ok=True, rule="not-a-no-op"),
                ],
                fixed_code=TUTORIAL_FIXED,
                diff=TUTORIAL_DIFF,
                fix_resource="sql-select-fail-fix-1-files",
                fix_job="sql-select-fail-fix-1",
                fix_run_id=14,
                fix_run_status="succeeded",
                check_job="sql-select-fail-check",
                check_run_id=15,
                check_passed=True,
                verdict="healed",
            )
        ],
        llm_calls=[
            LlmCall(stage="diagnose", attempt=1, mode="function_calling", prompt_tokens=1204,
                    completion_tokens=187, estimated_prompt_tokens=1150, latency_s=3.42),
            LlmCall(stage="patch", attempt=1, mode="function_calling", prompt_tokens=1630,
                    completion_tokens=402, estimated_prompt_tokens=1580, latency_s=6.05),
            LlmCall(stage="patch", attempt=1, mode="function_calling", prompt_tokens=1710,
                    completion_tokens=214, estimated_prompt_tokens=1690, latency_s=3.9),
        ],
        stages=_stages(base, [("monitor", 0, 0, 0.4), ("log-fetch", 1, 0.4, 1.8), ("diagnose", 1, 2.2, 3.6),
                              ("patch", 1, 5.8, 10.2), ("redeploy", 1, 16.0, 2.1), ("verify", 1, 18.1, 31.5)]),
    )


def escalated_record(run_id: int = 7, opened: datetime | None = None) -> IncidentRecord:
    """Missing input data: the rules refuse to "heal" it, so the incident escalates without a fix."""
    base = opened or _ago(3 * 3600)
    exception = ("pyspark.errors.exceptions.captured.AnalysisException: [PATH_NOT_FOUND] Path does not exist: "
                 "file:/app/mount/data/2026-11-20/orders.csv. SQLSTATE: 42K03")
    return IncidentRecord(
        incident_id=incident_id("ingest-daily", run_id),
        job="ingest-daily",
        run_id=run_id,
        state="escalated",
        reason="the input data is missing (PATH_NOT_FOUND): a code change cannot fix it",
        model=None,
        opened_at=_at(base, 0),
        failed_run=FailedRun(id=run_id, job="ingest-daily", status="failed", ended=_at(base, -3)),
        original=OriginalJob(name="ingest-daily", resource="ingest-files", file_path="ingest.py",
                             code='df = spark.read.csv("/app/mount/data/2026-11-20/orders.csv")\n'),
        driver_log="26/11/21 07:29:55 INFO SparkContext: Running Spark version 4.3.0\n" + exception + "\n",
        evidence=Evidence(error_class="PATH_NOT_FOUND", exception=exception),
        attempts=[Attempt(number=1, diagnosis=Diagnosis(category="data", root_cause="The day's input file "
                          "does not exist.", evidence=[exception], confidence=0.99, source="rule",
                          rule="path-not-found"), verdict="escalated")],
        stages=_stages(base, [("monitor", 0, 0, 0.3), ("log-fetch", 1, 0.3, 1.1), ("diagnose", 1, 1.4, 0.05)]),
    )


AWAITING_CODE = '''from pyspark.sql import SparkSession
from pyspark.sql import functions as F

spark = SparkSession.builder.appName("schema-drift").getOrCreate()
orders = spark.table("orders")
orders.groupBy("order_date").agg(F.sum(F.col("qty")).alias("total_qty")).show()
'''


def awaiting_record(run_id: int = 21, opened: datetime | None = None) -> IncidentRecord:
    """Approve mode: a patch passed the guard and waits for a human before it is deployed."""
    base = opened or _ago(5 * 60)
    fixed = AWAITING_CODE.replace('F.col("qty")', 'F.col("quantity")')
    return IncidentRecord(
        incident_id=incident_id("schema-drift", run_id),
        job="schema-drift",
        run_id=run_id,
        state="awaiting_approval",
        mode="approve",
        model="nvidia/llama-3.3-nemotron-super-49b-v1",
        opened_at=_at(base, 0),
        failed_run=FailedRun(id=run_id, job="schema-drift", status="failed", ended=_at(base, -4)),
        original=OriginalJob(name="schema-drift", resource="schema-drift-files", file_path="drift.py",
                             code=AWAITING_CODE),
        driver_log="[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column, variable, or function parameter with name "
        "`qty` cannot be resolved. Did you mean one of the following? [`quantity`, `order_id`]\n",
        evidence=Evidence(error_class="UNRESOLVED_COLUMN.WITH_SUGGESTION", suggestions=["`quantity`"]),
        attempts=[Attempt(number=1, diagnosis=Diagnosis(category="code", root_cause="Column `qty` was renamed "
                          "to `quantity` upstream.", confidence=0.9, source="rule", rule="unresolved-column"),
                          patch=Patch(kind="code", explanation="Use `quantity`.", code=fixed, source="rule"),
                          guard=[GuardVerdict(ok=True, rule="parses")], fixed_code=fixed)],
        stages=_stages(base, [("monitor", 0, 0, 0.2), ("log-fetch", 1, 0.2, 1.0), ("diagnose", 1, 1.2, 0.1),
                              ("patch", 1, 1.3, 0.1)]),
    )


def in_progress_record(run_id: int = 31, started_ago_s: float = 40.0) -> IncidentRecord:
    """A fix run being verified right now: the last stage has no end yet."""
    base = _ago(started_ago_s)
    return IncidentRecord(
        incident_id=incident_id("nightly-agg", run_id),
        job="nightly-agg",
        run_id=run_id,
        state="verifying",
        model=None,
        opened_at=_at(base, 0),
        failed_run=FailedRun(id=run_id, job="nightly-agg", status="failed", ended=_at(base, -2)),
        original=OriginalJob(name="nightly-agg", resource="nightly-files", code="print('nightly')\n"),
        attempts=[Attempt(number=1, patch=Patch(kind="config", spark_changes={"driverMemory": "2g"},
                                                explanation="The driver ran out of memory.", source="rule"),
                          fix_job="nightly-agg-fix-1", fix_resource="nightly-files", fix_run_id=33,
                          fix_run_status="running")],
        stages=_stages(base, [("monitor", 0, 0, 0.2), ("log-fetch", 1, 0.2, 1.0), ("diagnose", 1, 1.2, 0.1),
                              ("patch", 1, 1.3, 0.1), ("redeploy", 1, 1.4, 1.6), ("verify", 1, 3.0, None)]),
    )


def sample_records() -> list[IncidentRecord]:
    """Newest first: in progress (40 s ago), awaiting approval, the tutorial (healed), escalated."""
    return [in_progress_record(), awaiting_record(), tutorial_record(), escalated_record()]


# --- a small real command interface over the record files ---------------------------------------


@dataclass
class FileCommands:
    """`HealerCommands` acting on the record files the way the healer does, without healing.

    approve: awaiting_approval -> redeploying (the fix job is being created); reject: -> rejected;
    heal_now: opens an incident for the run. Every call is kept in `calls`.
    """

    store: RecordStore
    failed: list[FailedRunRow] = field(default_factory=list)
    strip: StatusStrip = field(default_factory=lambda: StatusStrip(
        cde_url="http://127.0.0.1:8765/dex/api/v1", user="dex-user", model="rules only", mode="approve",
        watched_jobs=[], watcher=WatcherHealth(alive=True, last_poll=utc_now(), cycles=3)))
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def _awaiting(self, incident: str) -> IncidentRecord:
        record = self.store.load(incident)
        if record is None:
            raise InvalidInput(f"no incident {incident!r}")
        if record.state != "awaiting_approval":
            raise InvalidInput(f"incident {incident} is {record.state}, not awaiting approval")
        return record

    def heal_now(self, job: str, run_id: int | None = None) -> str:
        self.calls.append(("heal_now", job, str(run_id)))
        if run_id is None:
            raise InvalidInput("this healer needs a run id")
        incident = incident_id(job, run_id)
        if self.store.exists(incident):
            return f"run {run_id} of {job} already has incident {incident}"
        self.store.save(IncidentRecord(incident_id=incident, job=job, run_id=run_id,
                                       failed_run=FailedRun(id=run_id, job=job, status="failed")))
        return f"healing run {run_id} of {job} (incident {incident})"

    def approve(self, incident_id: str) -> str:
        self.calls.append(("approve", incident_id))
        record = self._awaiting(incident_id)
        attempt = record.attempts[-1]
        attempt.fix_job = f"{record.job}-fix-{attempt.number}"
        record.state = "redeploying"
        record.stages.append(StageTiming(stage="redeploy", attempt=attempt.number, started=utc_now()))
        self.store.save(record)
        return f"approved: deploying {attempt.fix_job}"

    def reject(self, incident_id: str, reason: str = "") -> str:
        self.calls.append(("reject", incident_id, reason))
        record = self._awaiting(incident_id)
        record.state = "rejected"
        record.reason = f"rejected by a user: {reason}" if reason else "rejected by a user"
        self.store.save(record)
        return f"rejected incident {incident_id}"

    def failed_runs(self) -> list[FailedRunRow]:
        return [FailedRunRow(r.job, r.run_id, r.ended, self.store.exists(incident_id(r.job, r.run_id)))
                for r in self.failed]

    def status(self) -> StatusStrip:
        return self.strip


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def app_store(tmp_path: Path) -> RecordStore:
    return RecordStore(tmp_path / "healer")


@dataclass
class DashboardSource:
    """What a dashboard test reads and drives: the data dir, its store and the service."""

    data_dir: Path
    store: RecordStore
    service: DashboardService


@pytest.fixture(scope="module")
def dashboard_source(tmp_path_factory: pytest.TempPathFactory) -> DashboardSource:
    """The sample incidents on disk and a command interface acting on them (swap in the real healer)."""
    data_dir = tmp_path_factory.mktemp("dashboard") / "healer"
    store = RecordStore(data_dir)
    for record in sample_records():
        store.save(record)
    failed = [FailedRunRow(TUTORIAL_JOB, 12, "2026-11-21T08:54:35.000000Z", True),
              FailedRunRow("ingest-daily", 44, "2026-11-21T10:02:00.000000Z", False)]
    commands = FileCommands(store, failed)
    return DashboardSource(data_dir, store, DashboardService(data_dir, commands))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def dashboard_url(dashboard_source: DashboardSource) -> Iterator[str]:
    """The dashboard served in-process on a free port, polling every second."""
    from app.dashboard import launch

    port = free_port()
    demo = launch(dashboard_source.service, "127.0.0.1", port, block=False, poll_seconds=1.0, environ={})
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Debian Chromium per module; Playwright never downloads a browser."""
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()

"""Run telemetry from a real Spark 4.3 event log (tests/data/eventlogs, made as its README says) and
from small written logs: a partial last line, an empty log, unknown events, a log without its end."""

from __future__ import annotations

import json
import tracemalloc
from dataclasses import FrozenInstanceError

import pytest

from agents.telemetry import RunTelemetry, as_features, parse_event_log, tables_in
from tests.paths import TESTS

FIXTURE = TESTS / "data" / "eventlogs" / "telemetry_fixture.jsonl"
SQL_START = "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart"


def _lines(*events: dict) -> list[str]:
    return [json.dumps(event) + "\n" for event in events]


def _task(reason: str = "Success", **metrics) -> dict:
    return {"Event": "SparkListenerTaskEnd", "Task End Reason": {"Reason": reason}, "Task Metrics": metrics}


def _fixture() -> RunTelemetry:
    with FIXTURE.open(encoding="utf-8") as log:
        return parse_event_log(log)


def test_real_event_log_gives_the_runs_figures():
    assert _fixture() == RunTelemetry(
        # header probe 1 + schema inference 1001 + CSV->parquet 1000 + groupBy 1000 + UDF 1000 + count 4
        rows_read=4006,
        bytes_read=43210,
        rows_written=1004,  # parquet 1000 + shop.region_totals' 4 regions
        bytes_written=7193,
        shuffle_read_bytes=313,
        shuffle_write_bytes=313,
        memory_spilled_bytes=0,
        disk_spilled_bytes=0,
        peak_execution_memory=8650736,
        peak_jvm_heap=115032576,  # from the driver's SparkListenerExecutorMetricsUpdate
        tasks=9,
        failed_tasks=1,  # the UDF raising for id 500
        stages=9,
        failed_stages=1,
        jobs=9,
        failed_jobs=1,
        duration_s=17.417,
        tables_written=("shop.region_totals",),  # the parquet written by path names no table
        complete=True,
        unparsed_lines=0,
    )


def test_fixture_is_small_and_real():
    assert FIXTURE.stat().st_size < 200_000
    events = [json.loads(line)["Event"] for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
    assert events[0] == "SparkListenerLogStart" and events[-1] == "SparkListenerApplicationEnd"


def test_log_read_while_the_run_goes():
    lines = FIXTURE.read_text(encoding="utf-8").splitlines(keepends=True)
    half = lines[: len(lines) // 2]
    partial = half + [lines[len(lines) // 2][:40]]  # the writer is mid-line
    t = parse_event_log(partial)
    assert t.complete is False and t.duration_s is None
    assert t.unparsed_lines == 1
    assert 0 < t.tasks < 9


def test_empty_log():
    assert parse_event_log([]) == RunTelemetry()
    assert parse_event_log(["", "\n", "  \n"]) == RunTelemetry()  # blank lines are not bad lines
    assert as_features(RunTelemetry())["duration_s"] == 0.0


def test_bad_lines_are_counted_not_raised():
    lines = ["not json\n", "[1, 2]\n", '"a string"\n', "{\"Event\": \n", *_lines(_task(**{"Input Metrics": {"Records Read": 3}}))]
    t = parse_event_log(lines)
    assert t.unparsed_lines == 4
    assert (t.tasks, t.rows_read) == (1, 3)


def test_unknown_events_and_odd_fields_are_ignored():
    t = parse_event_log(
        _lines(
            {"Event": "com.example.MyListenerEvent", "Task Metrics": {"Input Metrics": {"Records Read": 99}}},
            {"no": "Event field"},
            {"Event": "SparkListenerTaskEnd"},  # no reason, no metrics: a task, failed, counting 0
            _task(**{"Input Metrics": {"Records Read": "12", "Bytes Read": True}, "Output Metrics": []}),
            {"Event": "SparkListenerExecutorMetricsUpdate", "Executor Metrics Updated": "oops"},
            {"Event": "SparkListenerStageExecutorMetrics", "Executor Metrics": {"JVMHeapMemory": 7}},
        )
    )
    assert (t.tasks, t.failed_tasks, t.rows_read, t.bytes_read, t.peak_jvm_heap) == (2, 1, 0, 0, 7)
    assert t.unparsed_lines == 0


def test_totals_maxima_and_failures():
    t = parse_event_log(
        _lines(
            {"Event": "SparkListenerApplicationStart", "Timestamp": 1_000},
            _task(
                **{
                    "Input Metrics": {"Records Read": 10, "Bytes Read": 100},
                    "Output Metrics": {"Records Written": 4, "Bytes Written": 40},
                    "Shuffle Read Metrics": {"Remote Bytes Read": 5, "Local Bytes Read": 6},
                    "Shuffle Write Metrics": {"Shuffle Bytes Written": 7},
                    "Memory Bytes Spilled": 8,
                    "Disk Bytes Spilled": 9,
                    "Peak Execution Memory": 300,
                }
            ),
            _task("ExceptionFailure", **{"Input Metrics": {"Records Read": 1}, "Peak Execution Memory": 200})
            | {"Task Executor Metrics": {"JVMHeapMemory": 50}},
            {
                "Event": "SparkListenerExecutorMetricsUpdate",
                "Executor Metrics Updated": [{"Executor Metrics": {"JVMHeapMemory": 70}}, {"Executor Metrics": {}}],
            },
            {"Event": "SparkListenerStageCompleted", "Stage Info": {"Stage ID": 0}},
            {"Event": "SparkListenerStageCompleted", "Stage Info": {"Stage ID": 1, "Failure Reason": "boom"}},
            {"Event": "SparkListenerJobEnd", "Job Result": {"Result": "JobSucceeded"}},
            {"Event": "SparkListenerJobEnd", "Job Result": {"Result": "JobFailed"}},
            {"Event": "SparkListenerApplicationEnd", "Timestamp": 3_500},
        )
    )
    assert (t.rows_read, t.bytes_read, t.rows_written, t.bytes_written) == (11, 100, 4, 40)
    assert (t.shuffle_read_bytes, t.shuffle_write_bytes) == (11, 7)
    assert (t.memory_spilled_bytes, t.disk_spilled_bytes) == (8, 9)
    assert (t.peak_execution_memory, t.peak_jvm_heap) == (300, 70)
    assert (t.tasks, t.failed_tasks, t.stages, t.failed_stages, t.jobs, t.failed_jobs) == (2, 1, 2, 1, 2, 1)
    assert (t.duration_s, t.complete) == (2.5, True)


def test_log_without_its_end():
    t = parse_event_log(_lines({"Event": "SparkListenerApplicationStart", "Timestamp": 1_000}, _task()))
    assert (t.complete, t.duration_s, t.tasks) == (False, None, 1)


@pytest.mark.parametrize(
    ("text", "tables"),
    [
        # Spark 3/4 formatted plan: the command's detail section names the table
        (
            "== Physical Plan ==\nExecute InsertIntoHadoopFsRelationCommand (3)\n+- Scan parquet spark_catalog.db.src (1)\n\n"
            "(3) Execute InsertIntoHadoopFsRelationCommand\nArguments: file:/wh/db.db/t, false, Parquet, "
            "[path=file:/wh/db.db/t], Append, `spark_catalog`.`db`.`t`, [a]\n\n",
            {"db.t"},
        ),
        ("Execute InsertIntoHadoopFsRelationCommand file:/out/x.parquet, false, Parquet, Overwrite", set()),
        ("InsertIntoHiveTable `default`.`events`, org.apache.hadoop.hive.ql.io.orc.OrcSerde, false", {"default.events"}),
        ("(1) CreateHiveTableAsSelectCommand\nArguments: [Database: sales, TableName: t], `sales`.`t`\n", {"sales.t"}),
        ("(2) AppendData\nArguments: IcebergWrite(table=local.db.tgt, format=PARQUET)\n", {"local.db.tgt"}),
        ("(2) OverwriteByExpression\nArguments: cat.db.t2, [true]\n", {"cat.db.t2"}),
        ("Scan parquet spark_catalog.shop.region_totals (1)", set()),  # a read is not a write
        # a tree line names no table: the source scanned below a write must not count
        ("InsertIntoHadoopFsRelationCommand (2)\n+- Scan parquet spark_catalog.db.src (1)\n", set()),
    ],
)
def test_tables_in(text, tables):
    assert tables_in(text) == tables


def test_tables_written_from_sql_execution_start_description():
    t = parse_event_log(
        _lines(
            {"Event": SQL_START, "description": "CreateDataSourceTableAsSelectCommand `spark_catalog`.`b`.`t`"},
            {"Event": SQL_START, "physicalPlanDescription": "(1) AppendData\nArguments: a.t\n", "description": 3},
        )
    )
    assert t.tables_written == ("a.t", "b.t")
    assert as_features(t)["tables_written"] == 2.0


def test_features_are_the_numeric_fields():
    t = _fixture()
    features = as_features(t)
    assert set(features) == {
        "rows_read", "bytes_read", "rows_written", "bytes_written", "shuffle_read_bytes",
        "shuffle_write_bytes", "memory_spilled_bytes", "disk_spilled_bytes", "peak_execution_memory",
        "peak_jvm_heap", "tasks", "failed_tasks", "stages", "failed_stages", "jobs", "failed_jobs",
        "duration_s", "unparsed_lines", "tables_written",
    }
    assert all(type(value) is float for value in features.values())
    assert (features["rows_written"], features["failed_tasks"], features["duration_s"]) == (1004.0, 1.0, 17.417)
    with pytest.raises(FrozenInstanceError):
        t.rows_read = 0  # type: ignore[misc]


def test_memory_is_flat_in_the_log_size():
    """50k task events (~5 MB of lines) streamed from a generator: the parse's peak memory stays
    far below the log's size (keeping the lines or events would not)."""
    count = 50_000
    line = json.dumps(_task(**{"Input Metrics": {"Records Read": 1}, "Pad": "x" * 100}))
    tracemalloc.start()
    try:
        t = parse_event_log(line for _ in range(count))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert t.rows_read == count
    assert peak < 200_000 < count * len(line) // 20

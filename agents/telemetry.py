"""What a run did, from its Spark event log (the run's `driver/event` log type, `cde_local/eventlog.py`).

`parse_event_log(lines)` reads the log once, line by line, keeping only counters (and the set of
table names written), so memory stays flat however long the log is. It is tolerant: events it does
not know are ignored, missing or non-numeric fields count 0, and a line that is not a JSON object
(a log read while the run goes ends with a partial line) is counted in `unparsed_lines`, never
raised. `as_features` gives the numeric fields for a detector.

Where each figure comes from (Spark's JsonProtocol names):
- `SparkListenerTaskEnd`: `Task Metrics` -> `Input Metrics`/`Output Metrics` (rows, bytes),
  `Shuffle Read Metrics` (`Remote Bytes Read` + `Local Bytes Read`), `Shuffle Write Metrics`
  (`Shuffle Bytes Written`), `Memory Bytes Spilled`, `Disk Bytes Spilled`, `Peak Execution Memory`
  (max over tasks); `Task End Reason` -> `Reason` other than `Success` is a failed task; its
  `Task Executor Metrics` -> `JVMHeapMemory`.
- `SparkListenerExecutorMetricsUpdate` (`Executor Metrics Updated`[] -> `Executor Metrics`) and
  `SparkListenerStageExecutorMetrics` (`Executor Metrics`, written with
  `spark.eventLog.logStageExecutorMetrics=true`): `JVMHeapMemory`, max with the tasks' into
  `peak_jvm_heap`.
- `SparkListenerStageCompleted` (one per stage attempt; failed when `Stage Info` has a
  `Failure Reason`), `SparkListenerJobEnd` (failed when `Job Result` -> `Result` is not
  `JobSucceeded`), `SparkListenerApplicationStart`/`End` (`Timestamp`, ms).
- Tables written: `SparkListenerSQLExecutionStart`'s `physicalPlanDescription` and `description`.
  Recognised commands: see `WRITE_COMMANDS`. The table is the first qualified name after the
  command: within the command's detail section when the command heads one (`(3) Execute
  InsertIntoHadoopFsRelationCommand` ... up to the next blank line, where `Arguments:` name it),
  else on the rest of the command's line (one-line plans, descriptions). A qualified name is
  backquoted (`` `spark_catalog`.`db`.`t` ``, `` `db`.`t` ``) or plain two or three dotted
  identifiers standing alone (`db.t`, `catalog.db.t`; not inside a path like `/wh/db.db/t`).
  Backquotes and the session catalog's `spark_catalog.` prefix are dropped (Spark 3 and 4 print it
  differently), so `saveAsTable("shop.t")` is `shop.t`. An insert by path names no table
  (`InsertIntoHadoopFsRelationCommand file:/...` of `df.write.parquet`) and adds none. A statement
  counts when it started, whether or not it then succeeded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

WRITE_COMMANDS = (
    "InsertIntoHadoopFsRelationCommand",
    "CreateDataSourceTableAsSelectCommand",
    "InsertIntoHiveTable",
    "CreateHiveTableAsSelectCommand",
    "OptimizedCreateHiveTableAsSelectCommand",
    "AppendData",
    "OverwriteByExpression",
    "OverwritePartitionsDynamic",
)
SESSION_CATALOG = "spark_catalog"
_SQL_START = "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart"
_COMMAND = re.compile(r"\b(?:" + "|".join(WRITE_COMMANDS) + r")\b")
_HEADER = re.compile(r"\(\d+\)\s")  # "(3) Execute InsertIntoHadoopFsRelationCommand"
_QUALIFIED = re.compile(
    r"(`[^`\n]+`(?:\.`[^`\n]+`){1,2})"  # `db`.`t`, `catalog`.`db`.`t`
    r"|(?<![\w/:.$`-])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*){1,2})(?=[\s,)\]]|$)"  # db.t standing alone
)


@dataclass(frozen=True)
class RunTelemetry:
    """What one run did, totalled over its tasks (see the module's docstring for the sources)."""

    rows_read: int = 0
    bytes_read: int = 0
    rows_written: int = 0
    bytes_written: int = 0
    shuffle_read_bytes: int = 0
    shuffle_write_bytes: int = 0
    memory_spilled_bytes: int = 0
    disk_spilled_bytes: int = 0
    peak_execution_memory: int = 0
    peak_jvm_heap: int = 0
    tasks: int = 0
    failed_tasks: int = 0
    stages: int = 0
    failed_stages: int = 0
    jobs: int = 0
    failed_jobs: int = 0
    duration_s: float | None = None  # application start -> end; None unless both are in the log
    tables_written: tuple[str, ...] = ()
    complete: bool = False  # the log has the application's end
    unparsed_lines: int = 0


_FEATURES = tuple(f.name for f in fields(RunTelemetry) if f.name not in ("tables_written", "complete"))


def as_features(t: RunTelemetry) -> dict[str, float]:
    """The numeric fields, as floats, for a detector (`duration_s` 0.0 when unknown), plus
    `tables_written` as a count."""
    features = {name: float(getattr(t, name) or 0) for name in _FEATURES}
    features["tables_written"] = float(len(t.tables_written))
    return features


def parse_event_log(lines: Iterable[str]) -> RunTelemetry:
    """The run's telemetry from its event log's lines (one JSON event a line), in one pass."""
    totals = dict.fromkeys(_FEATURES, 0)
    del totals["duration_s"]
    tables: set[str] = set()
    start = end = None
    complete = False
    for line in lines:
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            totals["unparsed_lines"] += 1
            continue
        kind = event.get("Event")
        if kind == "SparkListenerTaskEnd":
            _task_end(event, totals)
        elif kind == "SparkListenerStageCompleted":
            totals["stages"] += 1
            if _dict(event, "Stage Info").get("Failure Reason") is not None:
                totals["failed_stages"] += 1
        elif kind == "SparkListenerJobEnd":
            totals["jobs"] += 1
            if _dict(event, "Job Result").get("Result") != "JobSucceeded":
                totals["failed_jobs"] += 1
        elif kind == "SparkListenerStageExecutorMetrics":
            _heap(_dict(event, "Executor Metrics"), totals)
        elif kind == "SparkListenerExecutorMetricsUpdate":
            updates = event.get("Executor Metrics Updated")
            for update in updates if isinstance(updates, list) else ():
                if isinstance(update, dict):
                    _heap(_dict(update, "Executor Metrics"), totals)
        elif kind == _SQL_START:
            for key in ("physicalPlanDescription", "description"):
                text = event.get(key)
                if isinstance(text, str):
                    tables.update(tables_in(text))
        elif kind == "SparkListenerApplicationStart":
            start = _number(event.get("Timestamp")) or None
        elif kind == "SparkListenerApplicationEnd":
            end = _number(event.get("Timestamp")) or None
            complete = True
    duration = (end - start) / 1000.0 if start is not None and end is not None else None
    return RunTelemetry(
        **totals, duration_s=duration, tables_written=tuple(sorted(tables)), complete=complete
    )


def tables_in(text: str) -> set[str]:
    """Names of the tables a plan or statement description writes (see the module's docstring)."""
    found = set()
    for match in _COMMAND.finditer(text):
        line_start = text.rfind("\n", 0, match.start()) + 1
        if _HEADER.match(text, line_start):
            stop = text.find("\n\n", match.end())
        else:
            stop = text.find("\n", match.end())
        window = text[match.end() : stop if stop >= 0 else len(text)]
        name = _QUALIFIED.search(window)
        if name:
            found.add(_normalise(name.group(0)))
    return found


def _normalise(name: str) -> str:
    parts = [part.strip("`") for part in re.split(r"(?<=`)\.(?=`)", name)] if "`" in name else name.split(".")
    if len(parts) == 3 and parts[0] == SESSION_CATALOG:
        parts = parts[1:]
    return ".".join(parts)


def _task_end(event: Mapping[str, Any], totals: dict[str, int]) -> None:
    totals["tasks"] += 1
    if _dict(event, "Task End Reason").get("Reason") != "Success":
        totals["failed_tasks"] += 1
    metrics = _dict(event, "Task Metrics")
    read, written = _dict(metrics, "Input Metrics"), _dict(metrics, "Output Metrics")
    shuffle_read, shuffle_write = _dict(metrics, "Shuffle Read Metrics"), _dict(metrics, "Shuffle Write Metrics")
    totals["rows_read"] += _number(read.get("Records Read"))
    totals["bytes_read"] += _number(read.get("Bytes Read"))
    totals["rows_written"] += _number(written.get("Records Written"))
    totals["bytes_written"] += _number(written.get("Bytes Written"))
    totals["shuffle_read_bytes"] += _number(shuffle_read.get("Remote Bytes Read")) + _number(
        shuffle_read.get("Local Bytes Read")
    )
    totals["shuffle_write_bytes"] += _number(shuffle_write.get("Shuffle Bytes Written"))
    totals["memory_spilled_bytes"] += _number(metrics.get("Memory Bytes Spilled"))
    totals["disk_spilled_bytes"] += _number(metrics.get("Disk Bytes Spilled"))
    peak = _number(metrics.get("Peak Execution Memory"))
    totals["peak_execution_memory"] = max(totals["peak_execution_memory"], peak)
    _heap(_dict(event, "Task Executor Metrics"), totals)


def _heap(metrics: Mapping[str, Any], totals: dict[str, int]) -> None:
    totals["peak_jvm_heap"] = max(totals["peak_jvm_heap"], _number(metrics.get("JVMHeapMemory")))


def _dict(event: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = event.get(key)
    return value if isinstance(value, dict) else {}


def _number(value: object) -> int:
    """An integer field's value; 0 when missing or not a number (booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return int(value)

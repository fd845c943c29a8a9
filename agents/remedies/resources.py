"""Resources: memory and result-size limits, raised within the guard's caps."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from agents.guard.config import MEMORY_CAPS
from agents.record import Diagnosis, Evidence, Patch
from agents.remedies.registry import Rule, finding, lines_with, texts
from agents.sizes import format_size, parse_size

SPARK_DEFAULT_MEMORY = "1g"  # CDE's default driverMemory and executorMemory
SPARK_DEFAULT_MAX_RESULT_SIZE = "1g"
_EXECUTOR_MEMORY_MARKERS = ("exceeding memory limits", "OOMKilled", "Container killed", "exit code 137")
_DRIVER_OOM = "java.lang.OutOfMemoryError"
_MAX_RESULT_SIZE = re.compile(r"bigger than spark\.driver\.maxResultSize \(([^)]+)\)")


def _max_result_size(evidence: Evidence, code: str | None) -> Diagnosis | None:
    lines = lines_with(evidence, ["maxResultSize"])
    if not lines:
        return None
    return finding(
        "config",
        "The results collected to the driver are bigger than spark.driver.maxResultSize; "
        "the limit must be raised (or less data collected).",
        lines,
        0.85,
    )


def _executor_memory(evidence: Evidence, code: str | None) -> Diagnosis | None:
    lines = lines_with(evidence, _EXECUTOR_MEMORY_MARKERS)
    lines += [t for t in texts(evidence) if _DRIVER_OOM in t and ("Lost task" in t or "Exception in task" in t)]
    if not lines:
        return None
    return finding(
        "config",
        "Executors ran out of memory (killed for exceeding memory limits or OutOfMemoryError in a task); "
        "executor memory must be raised.",
        lines,
        0.75,
    )


def _driver_oom(evidence: Evidence, code: str | None) -> Diagnosis | None:
    lines = lines_with(evidence, [_DRIVER_OOM])
    if not lines:
        return None
    return finding(
        "config",
        "The driver ran out of heap memory (java.lang.OutOfMemoryError); driver memory must be raised.",
        lines,
        0.75,
    )


def _doubled(current: str | None, default: str, cap_key: str) -> str | None:
    """Twice ``current`` (or the default), capped; None when already at the cap."""
    size = parse_size(current or default)
    cap = parse_size(MEMORY_CAPS[cap_key])
    if size >= cap:
        return None
    return format_size(min(2 * size, cap))


def _fix_max_result_size(evidence: Evidence, code: str | None, job_spark: Mapping[str, Any],
                         job: Mapping[str, Any]) -> Patch | None:
    conf = job_spark.get("conf") or {}
    current = conf.get("spark.driver.maxResultSize")
    if current is None:
        for text in texts(evidence):
            match = _MAX_RESULT_SIZE.search(text)
            if match:
                current = match.group(1)
                break
    size = parse_size(current or SPARK_DEFAULT_MAX_RESULT_SIZE)
    cap = parse_size(MEMORY_CAPS["spark.driver.maxResultSize"])
    if size >= cap:
        return None
    new_size = min(max(2 * size, parse_size(SPARK_DEFAULT_MAX_RESULT_SIZE)), cap)
    changes: dict[str, Any] = {}
    driver = parse_size(job_spark.get("driverMemory") or SPARK_DEFAULT_MEMORY)
    if new_size > driver:  # Spark's own default pairs a 1g limit with a 1g driver; beyond that, grow the driver
        doubled = _doubled(job_spark.get("driverMemory"), SPARK_DEFAULT_MEMORY, "driverMemory")
        if doubled:
            changes["driverMemory"] = doubled
    return Patch(
        kind="config",
        explanation=f"Raised spark.driver.maxResultSize from {current or SPARK_DEFAULT_MAX_RESULT_SIZE} to "
        f"{format_size(new_size)}" + (f" and driverMemory to {changes['driverMemory']}" if changes else "") + ".",
        spark_changes=changes,
        conf_changes={"spark.driver.maxResultSize": format_size(new_size)},
        source="rule",
    )


def _fix_memory(field: str, job_spark: Mapping[str, Any]) -> Patch | None:
    current = job_spark.get(field)
    doubled = _doubled(current, SPARK_DEFAULT_MEMORY, field)
    if doubled is None:
        return None
    return Patch(
        kind="config",
        explanation=f"Doubled {field} from {current or SPARK_DEFAULT_MEMORY} to {doubled}.",
        spark_changes={field: doubled},
        source="rule",
    )


def more_memory(job_spark: Mapping[str, Any]) -> Patch | None:
    """The recovery policy's `raise-resources`: driver and executor memory doubled, each capped; None
    when both are at their caps already. Safe: more memory never changes a correct job's output."""
    changes = {field: doubled for field in ("driverMemory", "executorMemory")
               if (doubled := _doubled(job_spark.get(field), SPARK_DEFAULT_MEMORY, field)) is not None}
    if not changes:
        return None
    said = ", ".join(f"{field} from {job_spark.get(field) or SPARK_DEFAULT_MEMORY} to {size}"
                     for field, size in changes.items())
    return Patch(kind="config", explanation=f"More memory: {said}.", spark_changes=changes, source="policy",
                 applicability="safe")


def _fix_driver_memory(evidence: Evidence, code: str | None, job_spark: Mapping[str, Any],
                       job: Mapping[str, Any]) -> Patch | None:
    return _fix_memory("driverMemory", job_spark)


def _fix_executor_memory(evidence: Evidence, code: str | None, job_spark: Mapping[str, Any],
                         job: Mapping[str, Any]) -> Patch | None:
    return _fix_memory("executorMemory", job_spark)


RULES = (
    Rule(
        code="M101", name="max-result-size",
        summary="Results bigger than spark.driver.maxResultSize: the limit doubled",
        explanation="The serialized results exceed spark.driver.maxResultSize. Fix: double it (at least "
        "Spark's default), capped; driver memory follows when the new size would exceed it.",
        markers=("maxResultSize",), diagnose=_max_result_size, fix=_fix_max_result_size, applicability="safe",
    ),
    Rule(
        code="M102", name="executor-out-of-memory",
        summary="Executors killed for memory: executorMemory doubled",
        explanation="Executors killed for exceeding memory limits, or OutOfMemoryError in a task. Fix: "
        "double executorMemory, capped.",
        markers=(*_EXECUTOR_MEMORY_MARKERS, _DRIVER_OOM), diagnose=_executor_memory, fix=_fix_executor_memory,
        applicability="safe",
    ),
    Rule(
        code="M103", name="driver-out-of-memory",
        summary="The driver out of heap: driverMemory doubled",
        explanation="java.lang.OutOfMemoryError on the driver. Fix: double driverMemory, capped.",
        markers=(_DRIVER_OOM,), diagnose=_driver_oom, fix=_fix_driver_memory, applicability="safe",
    ),
)

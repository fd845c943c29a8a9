"""What a configuration patch may set: named job fields and spark.conf keys, with checked values.

An exact allowlist, not prefixes: each key has a validator (memory size with a cap, a count within
limits, a boolean, a duration, one of named values). Keys that load code, run commands, change
where data lives or turn security off are refused by name pattern too, so an allowlist entry added
by mistake cannot open them. Keys in ``REMEDY_ONLY_KEYS`` change what a job computes (ANSI and
legacy behaviour); only a rule's remedy may set them, never the model on its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from agents.errors import InvalidInput
from agents.sizes import parse_size

MAX_CONFIG_VALUE_CHARS = 200
MAX_CORES = 8
MAX_EXECUTORS = 50
MAX_ARGS, MAX_ARG_CHARS = 50, 1000

_DURATION = re.compile(r"^\d{1,6}(?:ms|s|m|min|h)?$")


# --- validators ----------------------------------------------------------------------------------

Validator = Callable[[str], "str | None"]  # the problem with a value, or None


def size(cap: str) -> Validator:
    def check(value: str) -> str | None:
        try:
            amount = parse_size(value)
        except InvalidInput:
            return f"{value!r} is not a memory size like 2g or 512m"
        return None if 0 < amount <= parse_size(cap) else f"{value} is over the cap of {cap}"
    return check


def count(low: int, high: int) -> Validator:
    def check(value: str) -> str | None:
        ok = value.isdigit() and low <= int(value) <= high
        return None if ok else f"{value!r} must be a whole number from {low} to {high}"
    return check


def boolean(value: str) -> str | None:
    return None if value.lower() in ("true", "false") else f"{value!r} must be true or false"


def duration(value: str) -> str | None:
    return None if _DURATION.match(value) else f"{value!r} must be a duration like 120s or 5m"


def one_of(*choices: str) -> Validator:
    def check(value: str) -> str | None:
        return None if value.upper() in choices else f"{value!r} must be one of {', '.join(choices)}"
    return check


def share(value: str) -> str | None:
    try:
        return None if 0.0 < float(value) < 1.0 else f"{value!r} must be between 0 and 1"
    except ValueError:
        return f"{value!r} must be a number between 0 and 1"


def size_or_off(cap: str) -> Validator:
    sized = size(cap)
    return lambda value: None if value.strip() == "-1" else sized(value)


# Memory caps, by the job field or spark.conf key that sets them.
MEMORY_CAPS: dict[str, str] = {
    "driverMemory": "16g",
    "executorMemory": "16g",
    "spark.driver.memory": "16g",
    "spark.executor.memory": "16g",
    "spark.driver.maxResultSize": "8g",
    "spark.driver.memoryOverhead": "8g",
    "spark.executor.memoryOverhead": "8g",
    "spark.memory.offHeap.size": "8g",
}

# Fields of the job's "spark" section (``args`` is handled apart: it may only grow).
SPARK_FIELDS: dict[str, Validator] = {
    "driverMemory": size(MEMORY_CAPS["driverMemory"]),
    "executorMemory": size(MEMORY_CAPS["executorMemory"]),
    "driverCores": count(1, MAX_CORES),
    "executorCores": count(1, MAX_CORES),
    "numExecutors": count(1, MAX_EXECUTORS),
}
CONF_KEYS: dict[str, Validator] = {
    "spark.driver.memory": size(MEMORY_CAPS["spark.driver.memory"]),
    "spark.executor.memory": size(MEMORY_CAPS["spark.executor.memory"]),
    "spark.driver.maxResultSize": size(MEMORY_CAPS["spark.driver.maxResultSize"]),
    "spark.driver.memoryOverhead": size(MEMORY_CAPS["spark.driver.memoryOverhead"]),
    "spark.executor.memoryOverhead": size(MEMORY_CAPS["spark.executor.memoryOverhead"]),
    "spark.memory.offHeap.enabled": boolean,
    "spark.memory.offHeap.size": size(MEMORY_CAPS["spark.memory.offHeap.size"]),
    "spark.memory.fraction": share,
    "spark.memory.storageFraction": share,
    "spark.driver.cores": count(1, MAX_CORES),
    "spark.executor.cores": count(1, MAX_CORES),
    "spark.executor.instances": count(1, MAX_EXECUTORS),
    "spark.dynamicAllocation.maxExecutors": count(1, MAX_EXECUTORS),
    "spark.dynamicAllocation.minExecutors": count(0, MAX_EXECUTORS),
    "spark.default.parallelism": count(1, 100_000),
    "spark.sql.shuffle.partitions": count(1, 100_000),
    "spark.sql.adaptive.enabled": boolean,
    "spark.sql.adaptive.coalescePartitions.enabled": boolean,
    "spark.sql.adaptive.skewJoin.enabled": boolean,
    "spark.sql.adaptive.advisoryPartitionSizeInBytes": size("4g"),
    "spark.sql.autoBroadcastJoinThreshold": size_or_off("1g"),
    "spark.sql.broadcastTimeout": duration,
    "spark.sql.files.maxPartitionBytes": size("4g"),
    "spark.network.timeout": duration,
    "spark.executor.heartbeatInterval": duration,
    "spark.task.maxFailures": count(1, 20),
    "spark.sql.ansi.enabled": boolean,
    "spark.sql.storeAssignmentPolicy": one_of("ANSI", "LEGACY", "STRICT"),
    "spark.sql.legacy.timeParserPolicy": one_of("LEGACY", "CORRECTED", "EXCEPTION"),
}
# They change results, not resources: a rule's remedy may set them, the model may not.
REMEDY_ONLY_KEYS = frozenset({"spark.sql.ansi.enabled", "spark.sql.storeAssignmentPolicy",
                              "spark.sql.legacy.timeParserPolicy"})
# Refused by name whatever the allowlist says: code loading, commands, environment, security, data location.
DENIED_KEY_PATTERN = re.compile(
    r"javaoptions|classpath|librarypath|listener|plugin|extension|env|crypto|authenticate|ssl|acls|secret|"
    r"password|token|keytab|principal|jars$|packages$|(?:^|\.)(?:py)?files$|archives$|repositories|ivy|submit|python|r\.command|"
    r"warehouse|metastore|catalog|eventlog|\.ui\.|redaction|\.io\.encryption|userclasspathfirst|bindaddress|"
    r"\.host$|\.port$|resource\.|sources\.default|serializer|killEnabled",
    re.I)


def conf_key_problem(key: str, *, remedy: bool = False) -> str | None:
    """Why ``key`` may not be set at all (None when it may, with a valid value)."""
    if DENIED_KEY_PATTERN.search(key):
        return f"spark.conf key {key!r} loads code, runs commands, moves data or weakens security"
    if key not in CONF_KEYS:
        return f"spark.conf key {key!r} is not one a fix may set (allowed: {', '.join(sorted(CONF_KEYS))})"
    if key in REMEDY_ONLY_KEYS and not remedy:
        return f"spark.conf key {key!r} changes what the job computes; only a catalog remedy may set it"
    return None


def conf_problem(key: str, value: Any, *, remedy: bool = False) -> str | None:
    """Why ``key`` may not be set to ``value`` (None when it may)."""
    return conf_key_problem(key, remedy=remedy) or _value_problem(key, value, CONF_KEYS[key])


def _value_problem(key: str, value: Any, validator: Validator) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return f"{key}: value {value!r} must be a string (or an integer count)"
    text = str(value)
    if len(text) > MAX_CONFIG_VALUE_CHARS or "\n" in text or "\r" in text:
        return f"{key}: value is too long or spans lines"
    problem = validator(text.strip())
    return f"{key}: {problem}" if problem else None


def args_problem(value: Any, job_spark: Mapping[str, Any] | None) -> str | None:
    """Arguments may only be appended: existing ones (the tables a job reads and writes) never change."""
    if not isinstance(value, list) or not all(isinstance(a, str) and len(a) <= MAX_ARG_CHARS for a in value):
        return f"args must be a list of strings of at most {MAX_ARG_CHARS} characters"
    if len(value) > MAX_ARGS:
        return f"args: at most {MAX_ARGS} arguments"
    if job_spark is None:
        return "args cannot be checked without the job's current settings"
    current = list(job_spark.get("args") or [])
    if any(arg in current for arg in value[len(current):]):
        return "args: an appended argument may not repeat an existing one (a source named again as an output)"
    if value[: len(current)] != current or len(value) == len(current):
        return (f"args may only append missing arguments; the existing ones {current!r} must stay as they are, "
                "in order")
    return None


def spark_field_problem(key: str, value: Any, job_spark: Mapping[str, Any] | None) -> str | None:
    if key == "args":
        return args_problem(value, job_spark)
    if key not in SPARK_FIELDS:
        return (f"job field {key!r} may not be changed (allowed: {', '.join(sorted(SPARK_FIELDS))}; "
                "or appending missing args; never the application file, mounts or python environment)")
    return _value_problem(key, value, SPARK_FIELDS[key])

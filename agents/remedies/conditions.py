"""Spark's error conditions, each with the category the healer gives it.

Spark ships every error condition it can raise in ``error/error-conditions.json`` inside
``spark-common-utils_*.jar`` (name, SQLSTATE, message template, sub-conditions). The catalogue is
read from the installed pyspark's jar; where pyspark is absent (the app on Cloudera AI runs without
Spark), from the extract shipped next to this module (``error_conditions.json``: names, SQLSTATEs and
sub-condition names, with the jar, Spark version and sha256 it came from), written by
``python -m agents.remedies.conditions --extract``. `source()` says which one was used.

A condition's category (`agents.record.Category`) is what the healer may do about it. ``data``
means no code or configuration change can heal it (diagnose escalates: `agents.diagnose.UNFIXABLE`),
so a data exception that code can tolerate (``CAST_INVALID_INPUT`` → ``try_cast``) is ``code``, and
only missing or corrupt input, or rows that break a declared constraint, are ``data``. Classification,
first match wins (each table entry says why in one line):

1. ``_BY_NAME``: the condition (``NAME.SUB`` first, then ``NAME``), where its SQLSTATE misleads;
2. ``_BY_STATE``: the condition's full SQLSTATE, where its class is too coarse;
3. ``_BY_CLASS``: the SQLSTATE's class (its first two characters);
4. legacy conditions without a SQLSTATE: ``_LEGACY_ERROR_TEMP_0xxx`` (parser) and ``1xxx``
   (analysis) are ``code``; the others, unknown names and anything classified ``unknown`` above
   fall back to the message (`_BY_MESSAGE`, a few keyword checks), and otherwise stay ``unknown``.

Categories depend only on the name, the SQLSTATE and the runtime message, never on the message
template, so the jar and the extract classify alike. Wrappers (``TASK_WRITE_FAILED``,
``FAILED_READ_FILE.NO_HINT``) are ``unknown``: the condition that caused them decides.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import re
import sys
import zipfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, get_args

from agents.errors import InvalidInput
from agents.record import Category

__all__ = ["EXTRACT", "Classification", "Condition", "Catalogue", "category_counts", "category_of",
           "classify", "condition", "conditions", "find_jar", "load_extract", "load_jar", "source",
           "write_extract"]

EXTRACT = Path(__file__).with_name("error_conditions.json")  # the fallback shipped in the repo
JSON_IN_JAR = "error/error-conditions.json"
EXTRACT_FORMAT = 1
CATEGORIES: tuple[Category, ...] = get_args(Category)


@dataclass(frozen=True)
class Condition:
    """One error condition, or one sub-condition (``NAME.SUB``, with its parent's SQLSTATE unless its own)."""

    name: str
    sql_state: str | None
    message: tuple[str, ...] = ()  # template lines; empty when the catalogue is the extract
    sub_conditions: tuple[str, ...] = ()  # names after the dot, for a main condition

    @property
    def category(self) -> Category:
        return category_of(self.name)


@dataclass(frozen=True)
class Catalogue:
    conditions: Mapping[str, Condition]  # main conditions by name
    sub_conditions: Mapping[str, Condition]  # by "NAME.SUB"
    source: str  # where it came from, for people
    spark_version: str | None
    sha256: str  # of the source error-conditions.json

    def lookup(self, name: str) -> Condition | None:
        return self.sub_conditions.get(name) if "." in name else self.conditions.get(name)


@dataclass(frozen=True)
class Classification:
    category: Category
    reason: str  # one line: which table entry (or message keyword) decided


# -- where the catalogue comes from ------------------------------------------------------------------

def find_jar() -> Path | None:
    """The installed pyspark's ``spark-common-utils_*.jar``, or None when pyspark is not installed."""
    spec = importlib.util.find_spec("pyspark")  # locate it without importing (no JVM, no side effects)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        jars = sorted(Path(location, "jars").glob("spark-common-utils_*.jar"))
        if jars:
            return jars[-1]
    return None


def load_jar(jar: Path) -> Catalogue:
    """The catalogue in a Spark jar (its ``error/error-conditions.json``)."""
    try:
        with zipfile.ZipFile(jar) as archive:
            raw = archive.read(JSON_IN_JAR)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise InvalidInput(f"cannot read {JSON_IN_JAR} from {jar}: {exc}") from exc
    try:
        entries = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{JSON_IN_JAR} in {jar} is not JSON: {exc}") from exc
    version = _version_of(jar)
    mains, subs = _parse(entries, jar.name, with_messages=True)
    return Catalogue(mains, subs, f"{jar.name} (Spark {version or '?'}, installed pyspark: {jar})",
                     version, hashlib.sha256(raw).hexdigest())


def load_extract(path: Path = EXTRACT) -> Catalogue:
    """The catalogue in an extract written by `write_extract` (no message templates)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"cannot read the error-condition extract {path}: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != EXTRACT_FORMAT:
        raise InvalidInput(f"{path} is not an error-condition extract of format {EXTRACT_FORMAT}; "
                           "regenerate it: python -m agents.remedies.conditions --extract")
    entries = {name: {"sqlState": entry.get("sqlState"), "subClass": entry.get("subConditions", {})}
               for name, entry in document.get("conditions", {}).items()}
    provenance = document.get("provenance", {})
    mains, subs = _parse(entries, path.name, with_messages=False)
    digest = str(provenance.get("sha256", ""))
    return Catalogue(
        mains, subs,
        f"{path.name} (extract of Spark {provenance.get('spark_version', '?')} {provenance.get('jar', '?')}, "
        f"sha256 {digest[:12]}, generated {provenance.get('generated', '?')}; pyspark is not installed)",
        provenance.get("spark_version"), digest)


def _parse(entries: Any, origin: str,
           with_messages: bool) -> tuple[Mapping[str, Condition], Mapping[str, Condition]]:
    if not isinstance(entries, dict) or not entries:
        raise InvalidInput(f"{origin}: no error conditions in it")
    mains: dict[str, Condition] = {}
    subs: dict[str, Condition] = {}
    for name, entry in entries.items():
        if not isinstance(entry, dict):
            raise InvalidInput(f"{origin}: condition {name!r} is not an object")
        state = entry.get("sqlState") or None
        children = entry.get("subClass") or {}
        mains[name] = Condition(name, state, _lines(entry) if with_messages else (), tuple(children))
        for sub, child in children.items():
            child = child if isinstance(child, dict) else {}  # the extract keeps {sub: {"sqlState": ...}}
            subs[f"{name}.{sub}"] = Condition(f"{name}.{sub}", child.get("sqlState") or state,
                                              _lines(child) if with_messages else ())
    return MappingProxyType(mains), MappingProxyType(subs)


def _lines(entry: Mapping[str, Any]) -> tuple[str, ...]:
    message = entry.get("message", ())
    return (message,) if isinstance(message, str) else tuple(message)


def _version_of(jar: Path) -> str | None:
    found = re.search(r"-(\d+\.\d+\.\d+[^/]*?)\.jar$", jar.name)  # spark-common-utils_2.13-4.3.0.jar
    return found.group(1) if found else None


@cache
def _catalogue() -> Catalogue:
    jar = find_jar()
    return load_jar(jar) if jar is not None else load_extract(EXTRACT)


def conditions() -> Mapping[str, Condition]:
    """Every main condition by name (the installed Spark's, else the shipped extract's)."""
    return _catalogue().conditions


def condition(name: str | None) -> Condition | None:
    """The condition named (``NAME`` or ``NAME.SUB``, brackets and case tolerated), or None."""
    key = _normalise(name)
    return _catalogue().lookup(key) if key else None


def source() -> str:
    """Where the catalogue came from: the jar (and its Spark version) or the extract (and its provenance)."""
    return _catalogue().source


# -- categories --------------------------------------------------------------------------------------

# The condition itself, where its SQLSTATE says something else. ``NAME.SUB`` before ``NAME``.
_BY_NAME: dict[str, tuple[Category, str]] = {
    "SCHEMA_NOT_FOUND": ("data", "the database the job reads from does not exist"),
    "DEFAULT_DATABASE_NOT_EXISTS": ("config", "the session's default database is set to one that does not exist"),
    "TASK_WRITE_FAILED": ("unknown", "a wrapper around a task's failure while writing: its cause decides"),
    "DATA_SOURCE_EXTERNAL_ERROR": ("unknown", "a wrapper around an external data source's failure: its cause decides"),
    "FAILED_READ_FILE.NO_HINT": ("unknown", "a wrapper around a failure while reading a file: its cause decides"),
    "FAILED_READ_FILE.PARQUET_COLUMN_DATA_TYPE_MISMATCH": ("code", "the schema the code reads with disagrees with the files'"),
    "FAILED_READ_FILE.UNSUPPORTED_FILE_SYSTEM": ("config", "the file system's connector is not configured"),
    "FAILED_JDBC.CONNECTION": ("transient", "the JDBC database could not be reached; a re-run can succeed"),
    "INVALID_CONF_VALUE": ("config", "a Spark setting has an invalid value"),
    "INVALID_KRYO_SERIALIZER_NO_DATA": ("config", "the Kryo serializer's settings"),
    "CANNOT_USE_KRYO": ("config", "the serializer setting"),
    "UDT_CLASS_LOADING_DISABLED": ("config", "a setting disables loading the type's class"),
    "AVRO_NOT_LOADED_SQL_FUNCTIONS_UNUSABLE": ("config", "the Avro package is not on the job's classpath"),
    "PROTOBUF_NOT_LOADED_SQL_FUNCTIONS_UNUSABLE": ("config", "the Protobuf package is not on the job's classpath"),
    "UDT_CLASS_NOT_FOUND": ("config", "the JAR holding the type's class is not on the job's classpath"),
    "CANNOT_LOAD_PROTOBUF_CLASS": ("config", "the JAR holding the Protobuf class is not on the job's classpath"),
    "DUPLICATED_MAP_KEY": ("config", "Spark names the remedy: spark.sql.mapKeyDedupPolicy"),
    "CONCURRENT_QUERY": ("transient", "another run of the same query was starting; a re-run can succeed"),
    "MISSING_TIMEOUT_CONFIGURATION": ("code", "the stateful function must set its timeout duration"),
    "FAILED_REGISTER_CLASS_WITH_KRYO": ("config", "the Kryo class registration settings"),
    "GRAPHITE_SINK_INVALID_PROTOCOL": ("config", "the metrics sink's settings"),
    "GRAPHITE_SINK_PROPERTY_MISSING": ("config", "the metrics sink's settings"),
    "INVALID_BUCKET_FILE": ("data", "a file of a bucketed table is not one of its buckets"),
    "STREAMING_PYTHON_RUNNER_INITIALIZATION_TIMEOUT_FAILURE": ("transient", "a worker's socket timed out"),
    "STREAMING_SHUFFLE_WRITER_CONNECTION_TIMEOUT": ("transient", "a shuffle connection timed out"),
    "INTERNAL_ERROR_MEMORY": ("config", "memory ran out inside Spark"),
    # 42K03 "file not found" also holds these, which are no missing input:
    "DATA_SOURCE_TABLE_SCHEMA_MISMATCH": ("code", "the schema the code specifies disagrees with the table's"),
    "USER_SPECIFIED_AND_ACTUAL_SCHEMA_MISMATCH": ("code", "the schema the code specifies disagrees with the data's"),
    "INVALID_CDC_OPTION": ("code", "the code passes invalid change-data-capture options"),
    "INVALID_CHANGELOG_SCHEMA": ("code", "the connector's changelog schema does not fit the query"),
    "ZIP_PLANS_NOT_MERGEABLE": ("code", "the DataFrames the code zips cannot be merged"),
    "STREAMING_STATEFUL_OPERATOR_NOT_MATCH_IN_STATE_METADATA": ("code", "the query's stateful operators changed"),
    "PIPELINE_STORAGE_ROOT_INVALID": ("config", "the pipeline's storage root setting"),
    # 54xxx program limits the code, not a setting, must respect:
    "FAILED_TO_PARSE_TOO_COMPLEX": ("code", "the statement must be split"),
    "GROUPING_SIZE_LIMIT_EXCEEDED": ("code", "fewer grouping sets"),
    "TUPLE_SIZE_EXCEEDS_LIMIT": ("code", "a fixed limit of 22 tuple fields"),
    "TABLE_VALUED_FUNCTION_TOO_MANY_TABLE_ARGUMENTS": ("code", "one table argument per call"),
    "COLLECTION_SIZE_LIMIT_EXCEEDED": ("code", "an array beyond the JVM's fixed limit: the code must build smaller ones"),
    "WINDOW_FUNCTION_PARTITION_SIZE_EXCEEDS_LIMIT": ("code", "a window partition beyond 2^31-1 rows: partition by more"),
    "EXCEED_LIMIT_LENGTH": ("code", "values longer than a CHAR/VARCHAR the code declares"),
}

# The full SQLSTATE, where its class is too coarse.
_BY_STATE: dict[str, tuple[Category, str]] = {
    "42P01": ("data", "undefined table: the table the job reads does not exist (missing input)"),
    "42K03": ("data", "file not found: a path the job reads, or its checkpoint, does not exist or is corrupt"),
    "42K02": ("config", "data source not found: its package is not on the job's classpath"),
    "42P08": ("config", "catalog not found: the catalog plugin settings"),
    "42616": ("config", "invalid Spark options or settings"),
    "46121": ("code", "invalid column name: the code must rename the column"),
    "56000": ("transient", "a checkpointed block was lost with its executor; a re-run can succeed"),
    "56K00": ("unknown", "a Spark Connect error"),
    "KD000": ("code", "a data source's options or the shape of the data written: the code must change"),
    "KD005": ("code", "every column is a partition column: the code must keep one out"),
    "KD010": ("unknown", "an external data source failed: its cause decides"),
    "KD011": ("unknown", "a declarative pipeline's graph is missing"),
    "XXKDA": ("transient", "the Spark job was cancelled; a re-run can succeed"),
    "HV091": ("code", "fields named by the code do not exist"),
    "HY109": ("code", "an invalid cursor position in a SQL script"),
}

# The SQLSTATE's class (first two characters), from Spark's error-states.json names.
_BY_CLASS: dict[str, tuple[Category, str]] = {
    "02": ("code", "no data: a SQL script's cursor read past its end"),
    "07": ("code", "dynamic SQL error: the statement the code builds is wrong"),
    "08": ("transient", "connection exception: a connection or session dropped; a re-run can succeed"),
    "0A": ("code", "feature not supported: the code must use a supported form"),
    "21": ("code", "cardinality violation: the query expects one row (or N columns) and must change"),
    "22": ("code", "data exception: a value the code must tolerate (try_cast, try_divide, a pattern, a NULL guard)"),
    "23": ("data", "integrity constraint violation: rows break a constraint the target declares"),
    "24": ("code", "invalid cursor state in a SQL script"),
    "2B": ("code", "dependent objects still exist: the statement must drop them too (CASCADE)"),
    "38": ("code", "external routine exception: a user function (UDF, Python data source) raised"),
    "39": ("code", "external routine invocation exception: a user function failed when called"),
    "3F": ("code", "invalid schema name in a statement"),
    "40": ("transient", "transaction rollback: a concurrent update; a re-run can succeed"),
    "42": ("code", "syntax error or access rule violation: the query or the DataFrame code is wrong"),
    "46": ("config", "Java DDL: a class is not on the job's classpath, or a setting cannot change at run time"),
    "51": ("code", "object inoperative: a view out of sync with its tables must be recreated"),
    "53": ("config", "insufficient resources: memory or task slots"),
    "54": ("config", "program limit exceeded: a limit that a setting raises"),
    "55": ("data", "object not in prerequisite state: a streaming checkpoint must be repaired or reset"),
    "56": ("config", "a feature or codec not enabled in this environment"),
    "58": ("transient", "system error: the file system failed; a re-run can succeed"),
    "82": ("config", "out of memory in an operator: more memory or more partitions"),
    "F0": ("config", "configuration file error: invalid memory settings"),
    "HV": ("unknown", "foreign data wrapper (JDBC) error: the sub-condition or cause decides"),
    "HY": ("transient", "operation cancelled or session handle lost; a re-run can succeed"),
    "KD": ("data", "data source error: the files a data source reads are corrupt or inconsistent"),
    "P0": ("data", "raised exception: the job's own check (raise_error, assert_true) rejected the data"),
    "XX": ("unknown", "internal error: a Spark defect or unexpected state"),
}

# Keywords in the message (and the name), lowercase, first match wins: for legacy, unknown and
# unclassified conditions and for failures without a condition (a JVM or Python exception).
_BY_MESSAGE: tuple[tuple[Category, tuple[str, ...]], ...] = (
    ("config", ("outofmemoryerror", "out of memory", "not enough memory", "gc overhead limit",
                "maxresultsize", "exceeding memory limits", "could not execute broadcast")),
    ("transient", ("connection refused", "connection reset", "timed out", "timeoutexception",
                   "fetchfailed", "executorlostfailure", "temporarily unavailable", "service unavailable")),
    ("data", ("path does not exist", "no such file or directory", "filenotfoundexception",
              "table or view not found")),
    ("code", ("nameerror", "attributeerror", "typeerror", "syntaxerror", "analysisexception",
              "parseexception", "cannot resolve", "data type mismatch", "not supported", "does not support")),
)
_LEGACY = re.compile(r"_LEGACY_ERROR_TEMP_(\d)\d*")
_LEGACY_PHASES: dict[str, str] = {"0": "a parser error", "1": "an analysis error"}  # Spark's numbering


def classify(error_class: str | None, message: str = "", catalogue: Catalogue | None = None) -> Classification:
    """The category of a failure by its error condition (``NAME`` or ``NAME.SUB``) and message, with why.

    ``catalogue``: the one to look SQLSTATEs up in (default: the installed Spark's, else the extract's).
    """
    catalogue = catalogue or _catalogue()
    name = _normalise(error_class)
    main = name.partition(".")[0]
    found = _by_condition(name, main, catalogue) if name else None
    if found is not None and found.category != "unknown":
        return found
    by_text = _by_message(f"{name} {message}")
    if by_text is not None:
        return by_text
    if found is not None:
        return found
    if not name:
        return Classification("unknown", "no error condition, and no known keyword in the message")
    known = "without a SQLSTATE" if catalogue.lookup(name) or catalogue.lookup(main) else "not in the catalogue"
    return Classification("unknown", f"{name}: {known}, and no known keyword in the message")


def category_of(error_class: str | None, message: str = "") -> Category:
    """The category of a failure by its error condition and message (see `classify`)."""
    return classify(error_class, message).category


def category_counts() -> dict[Category, int]:
    """How many main conditions of the catalogue fall in each category (without a message)."""
    counts = Counter(c.category for c in conditions().values())
    return {category: counts.get(category, 0) for category in CATEGORIES}


def _by_condition(name: str, main: str, catalogue: Catalogue) -> Classification | None:
    for key in (name, main):
        if key in _BY_NAME:
            category, why = _BY_NAME[key]
            return Classification(category, f"{key}: {why}")
    known = catalogue.lookup(name) or catalogue.lookup(main)
    state = known.sql_state if known else None
    if state:
        if state in _BY_STATE:
            category, why = _BY_STATE[state]
            return Classification(category, f"{name}: SQLSTATE {state}, {why}")
        if state[:2] in _BY_CLASS:
            category, why = _BY_CLASS[state[:2]]
            return Classification(category, f"{name}: SQLSTATE {state}, class {state[:2]} {why}")
        return Classification("unknown", f"{name}: SQLSTATE {state}, a class without a category")
    legacy = _LEGACY.fullmatch(main)
    if legacy and legacy.group(1) in _LEGACY_PHASES:
        return Classification("code", f"{name}: {_LEGACY_PHASES[legacy.group(1)]}, the code must change")
    return None


def _by_message(text: str) -> Classification | None:
    lowered = text.lower()
    for category, keywords in _BY_MESSAGE:
        for keyword in keywords:
            if keyword in lowered:
                return Classification(category, f"the message says {keyword!r}")
    return None


def _normalise(error_class: str | None) -> str:
    return (error_class or "").strip().strip("[]").strip().upper()


# -- the extract ---------------------------------------------------------------------------------

def write_extract(jar: Path, path: Path = EXTRACT) -> dict[str, Any]:
    """Write the extract of ``jar``'s catalogue to ``path``; returns the document written."""
    catalogue = load_jar(jar)
    with zipfile.ZipFile(jar) as archive:
        entries = json.loads(archive.read(JSON_IN_JAR))
    document = {
        "format": EXTRACT_FORMAT,
        "provenance": {
            "spark_version": catalogue.spark_version,
            "jar": jar.name,
            "file": JSON_IN_JAR,
            "sha256": catalogue.sha256,
            "generated": datetime.now(timezone.utc).date().isoformat(),
            "generator": "python -m agents.remedies.conditions --extract",
        },
        "conditions": {name: _extract_entry(entry) for name, entry in sorted(entries.items())},
    }
    path.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return document


def _extract_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"sqlState": entry.get("sqlState")}
    subs = entry.get("subClass") or {}
    if subs:
        out["subConditions"] = {sub: ({"sqlState": child["sqlState"]} if child.get("sqlState") else {})
                                for sub, child in sorted(subs.items())}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.remedies.conditions",
                                     description="Spark's error conditions and their healer categories.")
    parser.add_argument("--extract", action="store_true",
                        help=f"write {EXTRACT.name} from the installed pyspark's jar")
    parser.add_argument("name", nargs="?", help="a condition to classify (NAME or NAME.SUB)")
    args = parser.parse_args(argv)
    if args.extract:
        jar = find_jar()
        if jar is None:
            print("pyspark is not installed: no jar to extract from", file=sys.stderr)
            return 2
        document = write_extract(jar)
        print(f"wrote {EXTRACT} ({len(document['conditions'])} conditions from {jar.name})")
        return 0
    if args.name:
        found = condition(args.name)
        verdict = classify(args.name)
        print(f"{args.name}: {verdict.category} ({verdict.reason})")
        if found is None:
            print("  not in the catalogue")
        else:
            print(f"  SQLSTATE {found.sql_state or '-'}" + "".join(f"\n  {line}" for line in found.message))
        return 0
    print(f"source: {source()}\n{len(conditions())} conditions")
    for category, count in category_counts().items():
        print(f"  {category:<10} {count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

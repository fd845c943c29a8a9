"""The sandbox launcher: runs a Spark application with every output redirected to a sandbox.

Shipped to CDE as a plain file (the pre-flight job's `spark.file`); it imports only the standard
library, pyspark, and sqlglot (from `sqlglot.zip` beside this file when present, else the installed
one). Nothing in the application is changed: the launcher wraps pyspark's writing and reading
methods BEFORE the application runs, so the application creates its own SparkSession (its static
confs, e.g. Hive support, still apply) and every call it makes goes through the wrappers.

Settings (Spark conf, all strings):

- `spark.healer.sandbox.mode`: `preflight` (default) runs the application sandboxed; `stats` runs
  no application and measures the declared outputs as they are.
- `spark.healer.sandbox.app`: the application file (relative to the driver's working directory).
- `spark.healer.sandbox.database`: the sandbox database (`<prefix>_<run>_<n>`); required in preflight.
- `spark.healer.sandbox.location`: root of redirected FILE outputs (default:
  `<sandbox database location>/_files`).
- `spark.healer.sandbox.sample`: `none` (default) | `rows:N` (each input read limited to N rows) |
  `fraction:F` (0 < F < 1, `sample(F, seed=42)`).
- `spark.healer.sandbox.outputs`: JSON list `[{"kind": "table"|"path", "name": str}]` (a path entry
  may add `"format"` and `"options"` for reading it back in stats mode). Preflight: declared outputs
  whose reads also go to the sandbox. Stats: the outputs to measure.
- `spark.healer.sandbox.clone`: `true` (default) | `false`: copy a production table into the sandbox
  (sampled like an input) when the run needs its contents before writing it (a read of a declared
  output, `insertInto`, an append, SQL INSERT/MERGE/UPDATE/DELETE/ALTER/TRUNCATE). `false` never
  copies data (a table the write needs is then created empty, `LIKE` production).
- `spark.healer.sandbox.stats`: `true` (default) | `false` (skip statistics).

Redirection (preflight): production table `db.t` (resolved against the current database at the
moment of the call, lower case, `spark_catalog.` dropped) becomes `<sandbox>.db__t`; a production
path `scheme://host/p` becomes `<files root>/scheme/host/p`. Temp views are never redirected (writing
INTO one fails: it may stand for a production location). Reads of a table the run wrote, or of a
declared output table, read the sandbox copy (unsampled); reads of a path the run wrote read the
sandbox copy; every other read (an input, or a declared path not yet written) reads production,
sampled (`spark.table`, `spark.read.*`; SQL reads are not sampled).
A write that raises is reported too (`"<operation> FAILED (<error>)"`), even when the application
catches the error and goes on. Writes that cannot be redirected (JDBC, streaming, other RDD saves, SQL that writes and cannot be
parsed, other catalogs, `DROP DATABASE`, `LOAD DATA`...) raise `HealerSandboxError` and fail the run,
even when the application catches the error. `CREATE DATABASE` is skipped (the sandbox holds every
table). `SparkSession.stop` is deferred until the launcher is done.

Report: at the end (also when the application fails) ONE stdout line `HEALER-SANDBOX-REPORT <json>`
(the healer parses it with `agents/sandbox/report.py`)::

    {"healer_sandbox": 1, "mode": "preflight"|"stats", "database": str,
     "sample": {"kind": "none"|"rows"|"fraction", "value": number|null},
     "app_exit": int|null,      # 0 ok, else the exit code (1 for an exception); null in stats mode
     "app_error": str|null,     # "ExceptionClass: first line of message"
     "outputs": [{"kind": "table"|"path", "name": "db.t" | "scheme:/path",   # production name, resolved
                  "sandbox": "<sandbox>.db__t" | path | null,             # null in stats mode
                  "operations": ["saveAsTable mode=overwrite", "sql INSERT", ...], "format": str|null,
                  "stats": STATS|null,     # the sandboxed output (preflight) / production now (stats)
                  "baseline": STATS|null,  # production as it stands (preflight); null when absent
                  "error": str|null}],     # why stats are missing
     "reads": [{"kind": "table"|"path", "name": str, "redirected": bool, "sampled": bool}],
     "seconds": {"app": float, "stats": float}}
    STATS = {"rows": int, "columns": [{"name", "type", "nulls": int, "distinct": int (approximate),
             "min": str|null, "max": str|null (orderable types), "mean": float|null (numeric)}]}

Statistics take one aggregation job per output, over at most 200 columns; file outputs are read back
with the format and options they were written with. Then an application exception is re-raised (the
driver log keeps its traceback, the run fails) and an application's `sys.exit(n)` code is kept.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import math
import os
import re
import runpy
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

REPORT_MARKER = "HEALER-SANDBOX-REPORT "
CONF = "spark.healer.sandbox."
MAX_STATS_COLUMNS = 200
SAMPLE_SEED = 42
DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
ATTEMPT_NAME = re.compile(r"^(?P<incident>[a-z0-9_]+_\d+_)(?P<attempt>\d+)(?:_c\d+)?$")  # _c<k>: a candidate
# Statements Spark runs that sqlglot keeps as an opaque Command: only these read-only ones pass.
READ_ONLY_COMMANDS = frozenset({"SHOW", "DESCRIBE", "DESC", "EXPLAIN", "LIST", "RESET", "CLEAR", "ADD"})
# SQL writes whose target must exist (with its data) before the statement runs in the sandbox.
# `CREATE TABLE IF NOT EXISTS` of a table production has is a no-op there: the sandbox holds its copy.
NEEDS_EXISTING = frozenset({"INSERT", "INSERT OVERWRITE", "MERGE", "UPDATE", "DELETE", "TRUNCATE",
                            "ALTER TABLE", "ALTER VIEW", "CREATE TABLE IF NOT EXISTS",
                            "CREATE TABLE AS SELECT IF NOT EXISTS"})
DYNAMIC_PARTITIONS = "hive.exec.dynamic.partition.mode"
SESSION_CATALOG = "spark_catalog"
# Table providers / file formats whose data lives at the table's (sandbox) location. Any other source
# (jdbc, kafka, a custom one) writes wherever its options say, so the sandbox refuses it.
FILE_FORMATS = frozenset({"parquet", "orc", "csv", "json", "text", "avro", "xml", "hive", "delta", "iceberg",
                          "textfile", "sequencefile", "rcfile", "jsonfile"})
PATH_WRITERS = ("parquet", "csv", "json", "orc", "text", "xml")  # DataFrameWriter methods: (path, ...)
PATH_READERS = ("load", "parquet", "csv", "json", "orc", "text", "xml")


class HealerSandboxError(RuntimeError):
    """A write the sandbox cannot redirect (or a bad launcher setting): the run must fail."""


# -- settings -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sample:
    kind: str  # none | rows | fraction
    value: float | int | None = None


@dataclass(frozen=True)
class Declared:
    kind: str  # table | path
    name: str
    format: str | None = None
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    mode: str
    app: str
    database: str
    location: str | None
    sample: Sample
    outputs: tuple[Declared, ...]
    clone: bool
    stats: bool


def parse_sample(text: str) -> Sample:
    """`none` | `rows:N` (N >= 1) | `fraction:F` (0 < F < 1)."""
    kind, _, value = text.strip().partition(":")
    try:
        if kind == "none" and not value:
            return Sample("none")
        if kind == "rows" and int(value) >= 1:
            return Sample("rows", int(value))
        if kind == "fraction" and 0 < float(value) < 1:
            return Sample("fraction", float(value))
    except ValueError:
        pass
    raise HealerSandboxError(f"{CONF}sample must be none, rows:N (N >= 1) or fraction:F (0 < F < 1), "
                             f"not {text!r}")


def parse_flag(key: str, text: str) -> bool:
    if text.strip().lower() not in ("true", "false"):
        raise HealerSandboxError(f"{CONF}{key} must be true or false, not {text!r}")
    return text.strip().lower() == "true"


def parse_outputs(text: str) -> tuple[Declared, ...]:
    try:
        entries = json.loads(text)
        if not isinstance(entries, list):
            raise ValueError("not a list")
        return tuple(Declared(kind=e["kind"], name=e["name"], format=e.get("format"),
                              options={str(k): str(v) for k, v in (e.get("options") or {}).items()})
                     for e in entries if e["kind"] in ("table", "path") and isinstance(e["name"], str))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise HealerSandboxError(f"{CONF}outputs must be a JSON list of {{kind, name}}: {error}") from None


def read_settings(get: Callable[[str, str], str]) -> Settings:
    """The launcher's settings from `get(key, default)` (the Spark conf); bad values raise."""
    mode = get(CONF + "mode", "preflight")
    if mode not in ("preflight", "stats"):
        raise HealerSandboxError(f"{CONF}mode must be preflight or stats, not {mode!r}")
    database = get(CONF + "database", "").strip()
    if mode == "preflight" and (not DATABASE_NAME.match(database) or database == "default"):
        raise HealerSandboxError(f"{CONF}database must be a lower-case name other than default, "
                                 f"not {database!r}")
    app = get(CONF + "app", "")
    if mode == "preflight" and not app:
        raise HealerSandboxError(f"{CONF}app is required in preflight mode")
    return Settings(mode=mode, app=app, database=database, location=get(CONF + "location", "") or None,
                    sample=parse_sample(get(CONF + "sample", "none")),
                    outputs=parse_outputs(get(CONF + "outputs", "[]")),
                    clone=parse_flag("clone", get(CONF + "clone", "true")),
                    stats=parse_flag("stats", get(CONF + "stats", "true")))


# -- names ----------------------------------------------------------------------------------------

def split_name(text: str) -> list[str]:
    """A multi-part identifier (`a.b`, `` `a.b`.c ``) as its parts, backquotes removed."""
    parts, current, quoted, i = [], "", False, 0
    while i < len(text):
        char = text[i]
        if char == "`":
            if quoted and text[i + 1:i + 2] == "`":  # `` inside backquotes is one backquote
                current += "`"
                i += 1
            else:
                quoted = not quoted
        elif char == "." and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
        i += 1
    if quoted or not all(p.strip() for p in [*parts, current]):
        raise HealerSandboxError(f"not a table name: {text!r}")
    return [p.strip() for p in [*parts, current]]


def quote(*parts: str) -> str:
    return ".".join("`" + p.replace("`", "``") + "`" for p in parts)


def production_table(parts: list[str], current_database: str) -> tuple[str, str]:
    """(database, table) of a production table name, lower case, `spark_catalog.` dropped."""
    parts = [p.lower() for p in parts]
    if len(parts) == 3 and parts[0] == "spark_catalog":
        parts = parts[1:]
    if len(parts) == 1:
        return current_database.lower(), parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise HealerSandboxError(f"cannot redirect table {'.'.join(parts)!r}: only the session catalog "
                             "(spark_catalog) is supported in the sandbox")


def sandbox_path(root: str, production: str) -> str:
    """Where a (qualified) production path's output goes under the sandbox root."""
    parts = urlsplit(production)
    relative = "/".join(p for p in [parts.scheme or "noscheme", parts.netloc, parts.path.strip("/")] if p)
    if ".." in relative.split("/"):
        raise HealerSandboxError(f"cannot redirect path {production!r}: it contains '..'")
    return root.rstrip("/") + "/" + relative


# -- SQL ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SqlRewrite:
    sql: str                         # the statement to run (the original text when nothing changed)
    operation: str | None            # e.g. "INSERT", "CREATE TABLE AS SELECT"; None for reads
    targets: tuple[tuple[str, ...], ...] = ()  # production names written (as written: name parts)
    skip: bool = False               # run nothing (CREATE DATABASE: the sandbox holds every table)


def _sqlglot() -> Any:
    """sqlglot: from `sqlglot.zip` beside this file when present, else the installed one; None if neither."""
    bundled = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sqlglot.zip")
    if os.path.exists(bundled) and bundled not in sys.path:
        sys.path.insert(0, bundled)
    try:
        import sqlglot
        from sqlglot import exp  # noqa: F401  (the expression module is needed below)
    except ImportError:
        return None
    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its "falling back to Command" warnings
    return sqlglot


def _first_word(text: str) -> str:
    words = re.sub(r"(--[^\n]*|/\*.*?\*/)", " ", text, flags=re.S).split()
    return words[0].upper() if words else ""


def rewrite_sql(text: str, resolve: Callable[[tuple[str, ...], bool], tuple[str, str] | None],
                relocate: Callable[[str], str]) -> SqlRewrite:
    """Rewrite one SQL statement for the sandbox (pure: no Spark).

    `resolve(parts, writing)` maps a table name (its parts as written) to the sandbox `(database,
    table)`, or None to keep it (a read of an input, or a temp view: writing into one fails unless it is
    DROP VIEW); `relocate(path)` maps a
    LOCATION / `path` option to its sandbox path. SQL that writes and cannot be rewritten raises
    HealerSandboxError; SQL that does not write is returned unchanged unless it reads a redirected table.
    """
    sqlglot = _sqlglot()
    if sqlglot is None:
        if _first_word(text) in READ_ONLY_COMMANDS | {"SELECT", "WITH", "USE", "SET", "VALUES", "FROM"}:
            return SqlRewrite(text, None)
        raise HealerSandboxError(f"sqlglot is not available to redirect this SQL: {text[:200]!r}")
    from sqlglot import exp
    try:
        statements = [s for s in sqlglot.parse(text, read="spark") if s is not None]
    except sqlglot.errors.SqlglotError as error:
        if _first_word(text) in READ_ONLY_COMMANDS | {"SELECT", "USE", "SET", "VALUES"}:
            return SqlRewrite(text, None)  # Spark parses it; it cannot write
        raise HealerSandboxError(f"cannot parse SQL to redirect it ({str(error).splitlines()[0]}): "
                                 f"{text[:200]!r}") from None
    if len(statements) != 1:
        raise HealerSandboxError(f"expected one SQL statement, got {len(statements)}: {text[:200]!r}")
    statement = statements[0]
    operation, targets = _classify(statement, exp)
    if isinstance(statement, (exp.Use, exp.Set, exp.Command)):
        return SqlRewrite(text, None)  # names in them are databases or settings, not tables
    if operation == "CREATE DATABASE":
        return SqlRewrite(text, operation, skip=True)
    changed = _redirect_locations(statement, exp, relocate) if operation else False
    names = tuple(_name_parts(t) for t in targets)
    target_nodes = {id(t) for t in targets}
    # targets of these statements take no alias in Spark's grammar; every other reference keeps its
    # old name as alias, so `t.col` / `daily.col` in the statement still resolve
    aliased = (exp.From, exp.Join, exp.Merge, exp.Update, exp.Delete)
    renamed: dict[tuple[str, ...], str] = {}  # qualified names replaced -> the alias columns now use
    ctes = {c.alias_or_name.lower() for c in statement.find_all(exp.CTE)}
    if operation is None and isinstance(statement, (exp.Create, exp.Cache)) and statement.this is not None:
        # the name a temp view (or CACHE TABLE x AS ...) creates is the session's own: neither read nor redirected
        own = statement.this if isinstance(statement.this, exp.Table) else statement.this.find(exp.Table)
        ctes |= {own.name.lower()} if own is not None and not own.args.get("db") else set()
    for table in list(statement.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier):
            continue  # a table-valued function, e.g. range(10)
        parts = _name_parts(table)
        writing = id(table) in target_nodes
        if not writing and len(parts) == 1 and parts[0].lower() in ctes:
            continue
        replacement = resolve(parts, writing)
        if replacement is None and writing and operation != "DROP VIEW":
            # a temp view can stand for a production location (CREATE TEMP VIEW ... USING ... OPTIONS (path))
            raise HealerSandboxError(f"{operation} into temp view {'.'.join(parts)!r} cannot be redirected "
                                     f"to the sandbox: {text[:200]!r}")
        if replacement is None:
            continue
        if not table.alias and isinstance(table.parent, aliased):
            table.set("alias", exp.TableAlias(this=exp.to_identifier(parts[-1], quoted=True)))
            renamed[tuple(p.lower() for p in parts[-2:])] = parts[-1]
        table.set("catalog", exp.to_identifier(SESSION_CATALOG, quoted=True))
        table.set("db", exp.to_identifier(replacement[0], quoted=True))
        table.set("this", exp.to_identifier(replacement[1], quoted=True))
        changed = True
    for column in statement.find_all(exp.Column):  # `db.t.col` -> `t.col` (the alias above)
        qualifier = tuple(p.name.lower() for p in (column.args.get("db"), column.args.get("table")) if p)
        if len(qualifier) == 2 and qualifier in renamed:
            column.set("catalog", None)
            column.set("db", None)
    if operation and operation.startswith("DROP"):
        statement.set("exists", True)  # the sandbox may not hold what production would drop
        changed = True
    return SqlRewrite(statement.sql(dialect="spark") if changed else text, operation, names)


def _name_parts(table: Any) -> tuple[str, ...]:
    return tuple(p.name for p in (table.args.get("catalog"), table.args.get("db"), table.this) if p)


def _classify(statement: Any, exp: Any) -> tuple[str | None, list[Any]]:
    """(operation, target Table nodes) of a parsed statement; raises for writes it cannot redirect."""
    text = statement.sql(dialect="spark")[:200]

    def refuse(why: str) -> HealerSandboxError:
        return HealerSandboxError(f"{why} cannot run in the sandbox: {text!r}")

    def table_of(node: Any) -> Any:
        found = node if isinstance(node, exp.Table) else node.find(exp.Table)
        if found is None:
            raise refuse("a write without a table")
        return found

    temporary = statement.find(exp.TemporaryProperty) is not None
    if isinstance(statement, exp.Use) and str(statement.args.get("kind") or "").upper() == "CATALOG" \
            and statement.this.name.lower() != SESSION_CATALOG:
        raise refuse("switching to another catalog")
    for file_format in statement.find_all(exp.FileFormatProperty):
        if not temporary and file_format.this.name.lower() not in FILE_FORMATS:
            raise refuse(f"a table of provider {file_format.this.name!r} (not file-based)")
    if isinstance(statement, exp.Insert):
        if isinstance(statement.this, exp.Directory):
            raise refuse("INSERT OVERWRITE DIRECTORY")
        return ("INSERT OVERWRITE" if statement.args.get("overwrite") else "INSERT"), [table_of(statement.this)]
    if isinstance(statement, exp.Create):
        kind = str(statement.args.get("kind") or "").upper()
        if kind in ("DATABASE", "SCHEMA"):
            return "CREATE DATABASE", []
        if kind == "VIEW" and temporary:
            return None, []  # temp views are the session's own: never redirected
        if kind == "FUNCTION" and temporary:
            return None, []
        if kind == "TABLE":
            operation = "CREATE TABLE AS SELECT" if statement.expression else "CREATE TABLE"
            return operation + (" IF NOT EXISTS" if statement.args.get("exists") else ""), [table_of(statement.this)]
        if kind == "VIEW":
            return "CREATE VIEW", [table_of(statement.this)]
        raise refuse(f"CREATE {kind}")
    if isinstance(statement, (exp.Merge, exp.Update, exp.Delete)):
        return type(statement).__name__.upper(), [table_of(statement.this)]
    if isinstance(statement, exp.TruncateTable):
        if statement.args.get("is_database"):
            raise refuse("TRUNCATE DATABASE")
        return "TRUNCATE", [table_of(t) for t in statement.expressions]
    if isinstance(statement, exp.Drop):
        kind = str(statement.args.get("kind") or "").upper()
        if kind not in ("TABLE", "VIEW"):
            raise refuse(f"DROP {kind}")
        return f"DROP {kind}", [table_of(t) for t in statement.args.get("tables") or [statement.this]]
    if isinstance(statement, exp.Alter):
        if statement.find(exp.LocationProperty) or "LOCATION" in text.upper():
            raise refuse("ALTER ... LOCATION")
        kind = str(statement.args.get("kind") or "TABLE").upper()
        return f"ALTER {kind}", list(statement.find_all(exp.Table))  # a RENAME's new name is written too
    if isinstance(statement, exp.LoadData):
        raise refuse("LOAD DATA (it moves or copies files into a table)")
    if isinstance(statement, exp.Cache):
        return None, []
    if isinstance(statement, (exp.Query, exp.Use, exp.Set, exp.Describe, exp.Uncache, exp.Refresh)):
        return None, []
    if isinstance(statement, exp.Command) and str(statement.this).upper() in READ_ONLY_COMMANDS:
        return None, []
    raise refuse(f"{type(statement).__name__.upper()} (not known to be read-only)")


def _redirect_locations(statement: Any, exp: Any, relocate: Callable[[str], str]) -> bool:
    """Point LOCATION clauses and `path` options of a writing statement at the sandbox."""
    changed = False
    for location in statement.find_all(exp.LocationProperty):
        location.set("this", exp.Literal.string(relocate(location.this.name)))
        changed = True
    for prop in statement.find_all(exp.Property):
        if prop.name.lower() == "path" and prop.args.get("value") is not None:
            prop.set("value", exp.Literal.string(relocate(prop.args["value"].name)))
            changed = True
    return changed


# -- statistics -----------------------------------------------------------------------------------

def table_stats(df: Any) -> dict[str, Any]:
    """Row count and per-column nulls, approx distinct, min/max (orderable), mean (numeric): ONE job."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    orderable = (T.NumericType, T.StringType, T.DateType, T.TimestampType, T.TimestampNTZType, T.BooleanType)
    fields = df.schema.fields[:MAX_STATS_COLUMNS]
    aggregates = [F.count(F.lit(1)).alias("rows")]
    for i, f in enumerate(fields):
        column = F.col(quote(f.name))
        atomic = isinstance(f.dataType, T.AtomicType)
        aggregates.append(F.sum(F.when(column.isNull(), 1).otherwise(0)).alias(f"n{i}"))
        # complex values (maps, arrays) are counted through their JSON text: not every type hashes
        aggregates.append(F.approx_count_distinct(column if atomic else F.to_json(column)).alias(f"d{i}"))
        if isinstance(f.dataType, orderable):
            aggregates += [F.min(column).alias(f"lo{i}"), F.max(column).alias(f"hi{i}")]
        if isinstance(f.dataType, T.NumericType):
            aggregates.append(F.avg(column).alias(f"m{i}"))
    row = df.agg(*aggregates).collect()[0].asDict()
    columns = []
    for i, f in enumerate(fields):
        mean = row.get(f"m{i}")
        columns.append({
            "name": f.name, "type": f.dataType.simpleString(), "nulls": int(row[f"n{i}"] or 0),
            "distinct": int(row[f"d{i}"] or 0),
            "min": None if row.get(f"lo{i}") is None else str(row[f"lo{i}"]),
            "max": None if row.get(f"hi{i}") is None else str(row[f"hi{i}"]),
            "mean": float(mean) if mean is not None and math.isfinite(float(mean)) else None,
        })
    return {"rows": int(row["rows"]), "columns": columns}


def _error_text(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}".strip()


# -- the sandbox ----------------------------------------------------------------------------------

@dataclass
class Output:
    kind: str                 # table | path
    name: str                 # production name, resolved
    sandbox: str | None       # sandbox table (`<sandbox>.db__t`) or path
    operations: list[str] = field(default_factory=list)
    format: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    written: bool = False


class Sandbox:
    """Where the run's outputs go, what it wrote and read. Everything production-named passes here."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.outputs: dict[tuple[str, str], Output] = {}
        self.reads: list[dict[str, Any]] = []
        self.blocked: list[str] = []         # writes refused: the run fails even if the app caught them
        self.cloned: set[str] = set()        # production tables copied into the sandbox in this run
        self.files_root: str | None = None   # set by prepare()
        self.declared_tables: set[str] = set()  # resolved by prepare()

    # -- setup: the sandbox database (once, with the first session the app uses) --------------
    def prepare(self, spark: Any) -> None:
        if self.files_root is not None:
            return
        database = self.settings.database
        run_sql = original(type(spark), "sql")
        attempt = ATTEMPT_NAME.match(database)
        if attempt:  # drop the incident's earlier attempts (and their candidates): same `<prefix>_<run>_`, smaller n
            for db in spark.catalog.listDatabases(attempt["incident"] + "*"):
                other = ATTEMPT_NAME.match(db.name)
                if other and other["incident"] == attempt["incident"] and int(other["attempt"]) < int(attempt["attempt"]):
                    run_sql(spark, f"DROP DATABASE IF EXISTS {quote(db.name)} CASCADE")
        run_sql(spark, f"CREATE DATABASE IF NOT EXISTS {quote(database)}")
        root = self.settings.location or spark.catalog.getDatabase(database).locationUri.rstrip("/") + "/_files"
        self.files_root = root
        self.declared_tables = {".".join(production_table(split_name(d.name), "default"))
                                for d in self.settings.outputs if d.kind == "table"}

    def refuse(self, message: str) -> HealerSandboxError:
        return HealerSandboxError(message)  # recorded in `blocked` by the wrapper it passes through

    # -- names -----------------------------------------------------------------------------------
    def table(self, spark: Any, name: str | tuple[str, ...]) -> str:
        """The resolved production name `db.t` of a table name as the app wrote it."""
        self.prepare(spark)
        parts = split_name(name) if isinstance(name, str) else list(name)
        return ".".join(production_table(parts, spark.catalog.currentDatabase()))

    def sandbox_name(self, production: str) -> str:
        """The sandbox table of production `db.t`, as the report names it: `<sandbox>.db__t`."""
        database, table = production.split(".", 1)
        return f"{self.settings.database}.{database}__{table}"

    def sandbox_table(self, production: str) -> str:
        """The same, quoted for Spark, in the session catalog whatever the current catalog is."""
        return quote(SESSION_CATALOG, *self.sandbox_name(production).split(".", 1))

    def path(self, spark: Any, text: str) -> tuple[str, str]:
        """(qualified production path, sandbox path) of a path the app wrote."""
        self.prepare(spark)
        production = qualify(spark, text)
        assert self.files_root is not None
        redirected = sandbox_path(self.files_root, production)
        if redirected == production or redirected.startswith(production.rstrip("/") + "/"):
            raise self.refuse(f"the sandbox location {redirected!r} lies inside the production path {production!r}")
        return production, redirected

    def is_temp_view(self, spark: Any, name: str | tuple[str, ...]) -> bool:
        parts = split_name(name) if isinstance(name, str) else list(name)
        if len(parts) != 1:
            return False
        return bool(spark._jsparkSession.sessionState().catalog().getTempView(parts[0]).isDefined())

    # -- bookkeeping -------------------------------------------------------------------------------
    def output(self, kind: str, name: str, sandbox: str) -> Output:
        return self.outputs.setdefault((kind, name), Output(kind, name, sandbox))

    def wrote(self, kind: str, name: str, sandbox: str, operation: str, fmt: str | None = None,
              options: dict[str, str] | None = None) -> None:
        out = self.output(kind, name, sandbox)
        out.operations.append(operation)
        out.written = True
        if fmt:
            out.format = fmt
        if options is not None:
            out.options = {k: v for k, v in options.items() if k.lower() != "path"}

    def failed(self, kind: str, name: str, sandbox: str, operation: str, error: BaseException) -> None:
        """A write that raised: kept in the report even when the application catches the error and goes
        on (a fix that swallows a failed write must not look like one that wrote nothing on purpose)."""
        self.output(kind, name, sandbox).operations.append(f"{operation} FAILED ({_error_text(error)})")

    def read(self, kind: str, name: str, redirected: bool, sampled: bool) -> None:
        entry = {"kind": kind, "name": name, "redirected": redirected, "sampled": sampled}
        if entry not in self.reads:
            self.reads.append(entry)

    def redirects_table(self, production: str) -> bool:
        out = self.outputs.get(("table", production))
        return (out is not None and out.written) or production in self.declared_tables

    def sample(self, df: Any) -> tuple[Any, bool]:
        sample = self.settings.sample
        if sample.kind == "rows":
            return df.limit(int(sample.value or 0)), True
        if sample.kind == "fraction":
            return df.sample(fraction=float(sample.value or 0), seed=SAMPLE_SEED), True
        return df, False

    # -- making a sandbox table hold what production holds ----------------------------------------
    def provider(self, spark: Any, production: str) -> str | None:
        """A table's provider (`parquet`, `hive`, `jdbc`...), None for a view."""
        rows = original(type(spark), "sql")(spark, f"DESCRIBE TABLE EXTENDED {quote(*production.split('.', 1))}")
        found = [r[1] for r in rows.collect() if r[0] == "Provider"]
        return str(found[0]).lower() if found else None

    def check_format(self, fmt: str | None) -> None:
        if fmt is not None and str(fmt).lower() not in FILE_FORMATS:
            raise self.refuse(f"format {fmt!r} is not file-based: its writes cannot be redirected to the sandbox")

    def ensure_table(self, spark: Any, production: str, for_write: bool) -> None:
        """Before the run reads or extends `production` in the sandbox: copy production in (clone,
        sampled) unless the run already wrote or copied it; without clone, a write gets an empty
        table LIKE production. Nothing happens when production has no such table."""
        out = self.outputs.get(("table", production))
        if (out is not None and out.written) or production in self.cloned:
            return
        catalog_exists = spark.catalog.tableExists
        if not catalog_exists(quote(*production.split(".", 1))):
            return
        target = self.sandbox_table(production)
        run_sql = original(type(spark), "sql")
        provider = self.provider(spark, production)
        if provider is not None and provider not in FILE_FORMATS:  # a copy LIKE it would write through
            raise self.refuse(f"table {production} has provider {provider!r} (not file-based): "
                              "it cannot be copied into the sandbox")
        if self.settings.clone:
            run_sql(spark, f"DROP TABLE IF EXISTS {target}")
            run_sql(spark, f"CREATE TABLE {target} LIKE {quote(*production.split('.', 1))}")
            rows, _ = self.sample(original(type(spark), "table")(spark, quote(*production.split(".", 1))))
            writer = rows.write
            # a partitioned Hive table is copied with dynamic partitions, which Hive allows only "nonstrict"
            mode = spark.conf.get(DYNAMIC_PARTITIONS, None)
            spark.conf.set(DYNAMIC_PARTITIONS, "nonstrict")
            try:
                original(type(writer), "insertInto")(writer, target, True)
            finally:
                if mode is None:
                    spark.conf.unset(DYNAMIC_PARTITIONS)
                else:
                    spark.conf.set(DYNAMIC_PARTITIONS, mode)
            self.cloned.add(production)
        elif for_write and not catalog_exists(target):
            run_sql(spark, f"CREATE TABLE {target} LIKE {quote(*production.split('.', 1))}")
            self.cloned.add(production)


# -- wrapping pyspark -----------------------------------------------------------------------------

_ORIGINALS: dict[tuple[Any, str], Any] = {}


def original(cls: Any, name: str) -> Any:
    """pyspark's own method (unwrapped): the launcher's own reads and writes use these."""
    return _ORIGINALS.get((cls, name)) or getattr(cls, name)


def qualify(spark: Any, path: str) -> str:
    """A path as Hadoop resolves it (scheme and absolute path), e.g. `file:/data/out`."""
    jvm = spark.sparkContext._jvm
    jpath = jvm.org.apache.hadoop.fs.Path(path)
    fs = jpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return str(fs.makeQualified(jpath).toString()).rstrip("/") or "/"


def path_exists(spark: Any, path: str) -> bool:
    jvm = spark.sparkContext._jvm
    jpath = jvm.org.apache.hadoop.fs.Path(path)
    return bool(jpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).exists(jpath))


def _wrap(sandbox: Sandbox, cls: Any, name: str, make: Callable[[Any], Callable[..., Any]]) -> None:
    """Replace `cls.name` by `make(original method)`. Every refusal raised through it is also recorded,
    so the run fails even if the application catches the error."""
    method = getattr(cls, name)
    _ORIGINALS[(cls, name)] = method
    wrapper = make(method)

    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return wrapper(*args, **kwargs)
        except HealerSandboxError as error:
            if str(error) not in sandbox.blocked:
                sandbox.blocked.append(str(error))
            raise

    functools.update_wrapper(guarded, method)
    setattr(cls, name, guarded)


def uninstall() -> None:
    for (cls, name), method in _ORIGINALS.items():
        setattr(cls, name, method)
    _ORIGINALS.clear()


def _memory(writer: Any) -> dict[str, Any]:
    """What a DataFrameWriter was told before its final call (format, mode, options, path)."""
    if not hasattr(writer, "_healer_memory"):
        writer._healer_memory = {"format": None, "mode": None, "options": {}, "path": None}
    return writer._healer_memory


def install(sandbox: Sandbox) -> None:
    """Wrap every pyspark method that writes or reads by name. Called before the app runs."""
    from pyspark import RDD, SparkContext
    from pyspark.sql import Catalog, DataFrameReader, DataFrameWriter, DataFrameWriterV2, SparkSession
    from pyspark.sql.classic.dataframe import DataFrame
    from pyspark.sql.streaming import DataStreamWriter

    _install_writer(sandbox, DataFrameWriter)
    _install_writer_v2(sandbox, DataFrame, DataFrameWriterV2)
    _install_readers(sandbox, SparkSession, DataFrameReader)
    _install_sql(sandbox, SparkSession)

    def deferred_stop(method: Any) -> Callable[..., Any]:
        def stop(self: Any, *args: Any, **kwargs: Any) -> None:
            """Deferred: the launcher still needs the session for its statistics; it stops it at the end."""
        return stop

    _wrap(sandbox, SparkSession, "stop", deferred_stop)
    _wrap(sandbox, SparkContext, "stop", deferred_stop)

    def current_catalog(method: Any) -> Callable[..., Any]:
        def setCurrentCatalog(self: Any, catalogName: str) -> None:
            if catalogName.strip("`").lower() != SESSION_CATALOG:
                raise sandbox.refuse(f"switching to catalog {catalogName!r}: only {SESSION_CATALOG} is sandboxed")
            return method(self, catalogName)
        return setCurrentCatalog

    _wrap(sandbox, Catalog, "setCurrentCatalog", current_catalog)

    def save_text(method: Any) -> Callable[..., Any]:
        def saveAsTextFile(self: Any, path: str, *args: Any, **kwargs: Any) -> Any:
            spark = SparkSession.getActiveSession() or SparkSession(self.ctx)
            production, redirected = sandbox.path(spark, path)
            try:
                result = method(self, redirected, *args, **kwargs)
            except Exception as error:
                sandbox.failed("path", production, redirected, "saveAsTextFile", error)
                raise
            sandbox.wrote("path", production, redirected, "saveAsTextFile", "text", {})
            return result
        return saveAsTextFile

    _wrap(sandbox, RDD, "saveAsTextFile", save_text)
    for cls, names in ((RDD, ("saveAsPickleFile", "saveAsHadoopFile", "saveAsNewAPIHadoopFile", "saveAsSequenceFile",
                              "saveAsHadoopDataset", "saveAsNewAPIHadoopDataset")),
                       (DataFrameWriter, ("jdbc",)), (DataStreamWriter, ("start", "toTable")),
                       (Catalog, ("createTable", "createExternalTable", "recoverPartitions"))):
        for name in names:
            _wrap(sandbox, cls, name, functools.partial(_refusal, sandbox, f"{cls.__name__}.{name}"))


def _refusal(sandbox: Sandbox, what: str, method: Any) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise sandbox.refuse(f"{what} cannot be redirected to the sandbox; the pre-flight run fails instead")
    return refuse


def _install_writer(sandbox: Sandbox, writer_cls: Any) -> None:
    def remember(key: str) -> Callable[[Any], Callable[..., Any]]:
        def make(method: Any) -> Callable[..., Any]:
            def wrapper(self: Any, value: Any) -> Any:
                if value is not None:  # pyspark's own methods call mode(None), which changes nothing
                    _memory(self)[key] = value
                return method(self, value)
            return wrapper
        return make

    _wrap(sandbox, writer_cls, "mode", remember("mode"))
    _wrap(sandbox, writer_cls, "format", remember("format"))

    def redirected_option(self: Any, key: str, value: Any) -> Any:
        """The option's value; a `path` option (a write location) goes to the sandbox."""
        if key.lower() != "path":
            _memory(self)["options"][key] = str(value)
            return value
        production, redirected = sandbox.path(self._spark, str(value))
        _memory(self)["path"] = production
        return redirected

    def option(method: Any) -> Callable[..., Any]:
        def wrapper(self: Any, key: str, value: Any) -> Any:
            return method(self, key, redirected_option(self, key, value))
        return wrapper

    def options(method: Any) -> Callable[..., Any]:
        def wrapper(self: Any, **opts: Any) -> Any:
            return method(self, **{k: redirected_option(self, k, v) for k, v in opts.items()})
        return wrapper

    _wrap(sandbox, writer_cls, "option", option)
    _wrap(sandbox, writer_cls, "options", options)

    def save(method: Any) -> Callable[..., Any]:
        def wrapper(self: Any, path: str | None = None, format: str | None = None, mode: str | None = None,
                    partitionBy: Any = None, **opts: Any) -> Any:
            memory = _memory(self)
            opts = {k: redirected_option(self, k, v) for k, v in opts.items()}
            fmt = format or memory["format"] or self._spark.conf.get("spark.sql.sources.default")
            if str(fmt).lower() == "noop":  # writes nothing (used to time a job)
                return method(self, path, format, mode, partitionBy, **opts)
            sandbox.check_format(fmt)
            if path is None and memory["path"] is None:
                raise sandbox.refuse(f"save() without a path (format {fmt}) cannot be redirected to the sandbox")
            production, redirected = sandbox.path(self._spark, path) if path is not None else (memory["path"], None)
            out_path = redirected or sandbox.path(self._spark, production)[1]
            operation = f"save mode={mode or memory['mode'] or 'errorifexists'}"
            try:
                method(self, redirected, format, mode, partitionBy, **opts)
            except Exception as error:
                sandbox.failed("path", production, out_path, operation, error)
                raise
            sandbox.wrote("path", production, out_path, operation, str(fmt), memory["options"])
        return wrapper

    _wrap(sandbox, writer_cls, "save", save)

    def path_writer(name: str) -> Callable[[Any], Callable[..., Any]]:
        def make(method: Any) -> Callable[..., Any]:
            signature = inspect.signature(method)

            def wrapper(self: Any, path: str, *args: Any, **kwargs: Any) -> Any:
                production, redirected = sandbox.path(self._spark, path)
                mode = signature.bind(self, path, *args, **kwargs).arguments.get("mode")
                memory = _memory(self)
                operation = f"{name} mode={mode or memory['mode'] or 'errorifexists'}"
                try:
                    result = method(self, redirected, *args, **kwargs)
                except Exception as error:
                    sandbox.failed("path", production, redirected, operation, error)
                    raise
                sandbox.wrote("path", production, redirected, operation, name, memory["options"])
                return result
            return wrapper
        return make

    for name in PATH_WRITERS:
        _wrap(sandbox, writer_cls, name, path_writer(name))

    def save_as_table(method: Any) -> Callable[..., Any]:
        def wrapper(self: Any, name: str, format: str | None = None, mode: str | None = None,
                    partitionBy: Any = None, **opts: Any) -> Any:
            spark = self._spark
            production = sandbox.table(spark, name)
            opts = {k: redirected_option(self, k, v) for k, v in opts.items()}
            memory = _memory(self)
            sandbox.check_format(format or memory["format"])
            effective = str(mode or memory["mode"] or "errorifexists").lower()
            if effective != "overwrite":  # append/ignore/error behave as on production's contents
                sandbox.ensure_table(spark, production, for_write=True)
            target = sandbox.sandbox_table(production)
            try:
                result = method(self, target, format, mode, partitionBy, **opts)
            except Exception as error:
                sandbox.failed("table", production, sandbox.sandbox_name(production), f"saveAsTable mode={effective}",
                               error)
                raise
            sandbox.wrote("table", production, sandbox.sandbox_name(production), f"saveAsTable mode={effective}",
                          format or memory["format"], memory["options"])
            return result
        return wrapper

    def insert_into(method: Any) -> Callable[..., Any]:
        def wrapper(self: Any, tableName: str, overwrite: bool | None = None) -> Any:
            spark = self._spark
            production = sandbox.table(spark, tableName)
            sandbox.ensure_table(spark, production, for_write=True)
            target = sandbox.sandbox_table(production)
            try:
                result = method(self, target, overwrite)
            except Exception as error:
                sandbox.failed("table", production, sandbox.sandbox_name(production), "insertInto", error)
                raise
            effective = "overwrite" if overwrite or (overwrite is None and str(_memory(self)["mode"]).lower() == "overwrite") \
                else "append"
            sandbox.wrote("table", production, sandbox.sandbox_name(production), f"insertInto mode={effective}")
            return result
        return wrapper

    _wrap(sandbox, writer_cls, "saveAsTable", save_as_table)
    _wrap(sandbox, writer_cls, "insertInto", insert_into)


def _install_writer_v2(sandbox: Sandbox, dataframe_cls: Any, writer_cls: Any) -> None:
    def write_to(method: Any) -> Callable[..., Any]:
        def wrapper(self: Any, table: str) -> Any:
            production = sandbox.table(self.sparkSession, table)
            writer = method(self, sandbox.sandbox_table(production))
            writer._healer_target = production
            return writer
        return wrapper

    _wrap(sandbox, dataframe_cls, "writeTo", write_to)

    def target_of(writer: Any) -> str:
        target = getattr(writer, "_healer_target", None)
        if target is None:  # built directly, not through DataFrame.writeTo: its table is unknown
            raise sandbox.refuse("DataFrameWriterV2 not made by DataFrame.writeTo cannot be redirected")
        return target

    def action(name: str, needs_existing: bool) -> Callable[[Any], Callable[..., Any]]:
        def make(method: Any) -> Callable[..., Any]:
            def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
                production = target_of(self)
                if needs_existing:
                    sandbox.ensure_table(self._spark, production, for_write=True)
                try:
                    result = method(self, *args, **kwargs)
                except Exception as error:
                    sandbox.failed("table", production, sandbox.sandbox_name(production), f"writeTo {name}", error)
                    raise
                sandbox.wrote("table", production, sandbox.sandbox_name(production), f"writeTo {name}")
                return result
            return wrapper
        return make

    for name, needs in (("create", False), ("createOrReplace", False), ("replace", True), ("append", True),
                        ("overwrite", True), ("overwritePartitions", True)):
        _wrap(sandbox, writer_cls, name, action(name, needs))

    def located(method: Any) -> Callable[..., Any]:
        def wrapper(self: Any, key: str, value: Any) -> Any:
            target_of(self)
            if key.lower() in ("path", "location"):
                value = sandbox.path(self._spark, str(value))[1]
            return method(self, key, value)
        return wrapper

    _wrap(sandbox, writer_cls, "option", located)
    _wrap(sandbox, writer_cls, "tableProperty", located)

    def using(method: Any) -> Callable[..., Any]:
        def wrapper(self: Any, provider: str) -> Any:
            target_of(self)
            sandbox.check_format(provider)
            return method(self, provider)
        return wrapper

    _wrap(sandbox, writer_cls, "using", using)

    def merge_into(method: Any) -> Callable[..., Any]:
        def wrapper(self: Any, table: str, condition: Any) -> Any:
            production = sandbox.table(self.sparkSession, table)
            sandbox.ensure_table(self.sparkSession, production, for_write=True)
            writer = method(self, sandbox.sandbox_table(production), condition)
            sandbox.wrote("table", production, sandbox.sandbox_name(production), "mergeInto")
            return writer
        return wrapper

    _wrap(sandbox, dataframe_cls, "mergeInto", merge_into)

    def options(method: Any) -> Callable[..., Any]:
        def wrapper(self: Any, **opts: Any) -> Any:
            target_of(self)
            return method(self, **{k: sandbox.path(self._spark, str(v))[1] if k.lower() in ("path", "location") else v
                                   for k, v in opts.items()})
        return wrapper

    _wrap(sandbox, writer_cls, "options", options)


def _install_readers(sandbox: Sandbox, session_cls: Any, reader_cls: Any) -> None:
    def read_table(spark: Any, name: str, read: Callable[[str], Any]) -> Any:
        if sandbox.is_temp_view(spark, name):
            return read(name)
        try:
            production = sandbox.table(spark, name)
        except HealerSandboxError:  # a table in another catalog: an input
            return sandbox.sample(read(name))[0]
        if sandbox.redirects_table(production):
            sandbox.ensure_table(spark, production, for_write=False)
            sandbox.read("table", production, redirected=True, sampled=False)
            return read(sandbox.sandbox_table(production))
        df, sampled = sandbox.sample(read(name))
        sandbox.read("table", production, redirected=False, sampled=sampled)
        return df

    def session_table(method: Any) -> Callable[..., Any]:
        def wrapper(self: Any, tableName: str) -> Any:
            return read_table(self, tableName, lambda n: method(self, n))
        return wrapper

    def reader_table(method: Any) -> Callable[..., Any]:
        def wrapper(self: Any, tableName: str) -> Any:
            return read_table(self._spark, tableName, lambda n: method(self, n))
        return wrapper

    _wrap(sandbox, session_cls, "table", session_table)
    _wrap(sandbox, reader_cls, "table", reader_table)

    def path_reader(method: Any) -> Callable[..., Any]:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            spark = self._spark
            redirected_any = False

            def redirect(path: Any) -> Any:
                nonlocal redirected_any
                if not isinstance(path, str):
                    return path  # an RDD or DataFrame of lines, not a location
                production = qualify(spark, path)
                out = sandbox.outputs.get(("path", production))
                if out is not None and out.written:
                    redirected_any = True
                    sandbox.read("path", production, redirected=True, sampled=False)
                    return out.sandbox
                sandbox.read("path", production, redirected=False, sampled=sandbox.settings.sample.kind != "none")
                return path

            args = tuple([redirect(p) for p in a] if isinstance(a, (list, tuple)) else redirect(a) for a in args[:1]) + args[1:]
            if "path" in kwargs:
                kwargs["path"] = [redirect(p) for p in kwargs["path"]] if isinstance(kwargs["path"], (list, tuple)) \
                    else redirect(kwargs["path"])
            df = method(self, *args, **kwargs)
            return df if redirected_any else sandbox.sample(df)[0]
        return wrapper

    for name in PATH_READERS:
        _wrap(sandbox, reader_cls, name, path_reader)


def _install_sql(sandbox: Sandbox, session_cls: Any) -> None:
    from pyspark.sql.sql_formatter import SQLStringFormatter

    def sql(method: Any) -> Callable[..., Any]:
        def wrapper(self: Any, sqlQuery: str, args: Any = None, **kwargs: Any) -> Any:
            formatter = SQLStringFormatter(self)
            try:
                # format `{df}` placeholders first (as pyspark does): the rewrite needs the real text
                text = formatter.format(sqlQuery, **kwargs) if kwargs else sqlQuery
                return run_sql(self, text, args, method)
            finally:
                if kwargs:
                    formatter.clear()
        return wrapper

    def run_sql(spark: Any, text: str, args: Any, method: Any) -> Any:
        def resolve(parts: tuple[str, ...], writing: bool) -> tuple[str, str] | None:
            if sandbox.is_temp_view(spark, parts):
                return None
            try:
                production = sandbox.table(spark, parts)
            except HealerSandboxError:
                if writing:
                    raise
                return None  # a read in another catalog: an input, read as written
            if not writing and not sandbox.redirects_table(production):
                sandbox.read("table", production, redirected=False, sampled=False)
                return None
            if not writing:
                sandbox.ensure_table(spark, production, for_write=False)
                sandbox.read("table", production, redirected=True, sampled=False)
            database, table = production.split(".", 1)
            return sandbox.settings.database, f"{database}__{table}"

        rewrite = rewrite_sql(text, resolve, lambda path: sandbox.path(spark, path)[1])
        if rewrite.skip:
            return method(spark, "SELECT 1 AS skipped_by_healer_sandbox WHERE false")
        targets = [sandbox.table(spark, parts) for parts in rewrite.targets]
        if rewrite.operation in NEEDS_EXISTING:
            for production in targets:
                sandbox.ensure_table(spark, production, for_write=True)
        try:
            result = method(spark, rewrite.sql, args) if args is not None else method(spark, rewrite.sql)
        except Exception as error:
            for production in targets:
                sandbox.failed("table", production, sandbox.sandbox_name(production), f"sql {rewrite.operation}", error)
            raise
        for production in targets:
            sandbox.wrote("table", production, sandbox.sandbox_name(production), f"sql {rewrite.operation}")
        return result

    _wrap(sandbox, session_cls, "sql", sql)


# -- running and reporting ------------------------------------------------------------------------

@dataclass
class AppOutcome:
    exit_code: int | None = 0
    error: str | None = None
    exception: BaseException | None = None
    seconds: float = 0.0


def run_app(app: str, args: list[str]) -> AppOutcome:
    """Run the application as `python app args...` would (run_name __main__, its directory on sys.path)."""
    path = os.path.abspath(app)
    sys.argv = [app, *args]
    sys.path[0:1] = [os.path.dirname(path)]  # was the launcher's directory
    started = time.monotonic()
    outcome = AppOutcome()
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as exit_:
        code = exit_.code
        outcome.exit_code = code if isinstance(code, int) else (0 if code is None else 1)
        if outcome.exit_code != 0:
            outcome.exception = exit_
    except BaseException as error:  # noqa: BLE001 - reported, then re-raised by main()
        outcome.exit_code, outcome.error, outcome.exception = 1, _error_text(error), error
    outcome.seconds = time.monotonic() - started
    return outcome


def output_report(spark: Any, sandbox: Sandbox | None, out: Output, with_stats: bool) -> dict[str, Any]:
    """One report entry: stats of what the output holds (sandbox, or production in stats mode) and the
    production baseline (preflight)."""
    read_table = original(type(spark), "table")
    fmt = out.format or spark.conf.get("spark.sql.sources.default")

    def read_path(path: str) -> Any:
        reader = spark.read.format(fmt).options(**out.options)
        return original(type(reader), "load")(reader, path)

    def stats_of(kind: str, where: str) -> dict[str, Any] | None:
        if kind == "table":
            if not spark.catalog.tableExists(where):
                return None
            return table_stats(read_table(spark, where))
        if not path_exists(spark, where):
            return None
        return table_stats(read_path(where))

    entry: dict[str, Any] = {"kind": out.kind, "name": out.name, "sandbox": out.sandbox if sandbox else None,
                             "operations": out.operations, "format": out.format,
                             "stats": None, "baseline": None, "error": None}
    if not with_stats:
        return entry
    def spark_name(name: str) -> str:
        return quote(SESSION_CATALOG, *name.split(".", 1)) if out.kind == "table" else name

    production = spark_name(out.name)
    errors = []
    try:
        entry["stats"] = stats_of(out.kind, spark_name(out.sandbox) if sandbox and out.sandbox else production)
        if entry["stats"] is None:
            errors.append("absent from the sandbox" if sandbox else "absent")
    except Exception as error:  # noqa: BLE001 - reported per output; the other outputs still count
        errors.append(_error_text(error))
    if sandbox is not None:
        try:
            entry["baseline"] = stats_of(out.kind, production)
        except Exception as error:  # noqa: BLE001
            errors.append("baseline: " + _error_text(error))
    entry["error"] = "; ".join(errors) or None
    return entry


def print_report(report: dict[str, Any]) -> None:
    print(REPORT_MARKER + json.dumps(report, separators=(",", ":"), default=str), flush=True)


def base_report(settings: Settings) -> dict[str, Any]:
    return {"healer_sandbox": 1, "mode": settings.mode, "database": settings.database,
            "sample": {"kind": settings.sample.kind, "value": settings.sample.value},
            "app_exit": None, "app_error": None, "outputs": [], "reads": [], "seconds": {"app": 0.0, "stats": 0.0}}


def stats_run(spark: Any, settings: Settings) -> dict[str, Any]:
    """Stats mode: measure the declared outputs as production holds them now."""
    report = base_report(settings)
    started = time.monotonic()
    for declared in settings.outputs:
        try:
            name = (".".join(production_table(split_name(declared.name), spark.catalog.currentDatabase()))
                    if declared.kind == "table" else qualify(spark, declared.name))
        except HealerSandboxError as error:
            report["outputs"].append({"kind": declared.kind, "name": declared.name, "sandbox": None, "operations": [],
                                      "format": None, "stats": None, "baseline": None, "error": str(error)})
            continue
        out = Output(declared.kind, name, None, format=declared.format, options=dict(declared.options))
        report["outputs"].append(output_report(spark, None, out, settings.stats))
    report["seconds"]["stats"] = round(time.monotonic() - started, 3)
    return report


def preflight_report(spark: Any, sandbox: Sandbox, outcome: AppOutcome) -> dict[str, Any]:
    report = base_report(sandbox.settings)
    report["app_exit"], report["app_error"] = outcome.exit_code, outcome.error
    if sandbox.blocked and outcome.exit_code == 0:  # the app swallowed a refused write: still a failure
        report["app_exit"], report["app_error"] = 1, "HealerSandboxError: " + sandbox.blocked[0]
    started = time.monotonic()
    sandbox.prepare(spark)
    for declared in sandbox.settings.outputs:  # a declared output the run never wrote is reported too
        if declared.kind == "table":
            production = sandbox.table(spark, declared.name)
            sandbox.output("table", production, sandbox.sandbox_name(production))
    for out in sandbox.outputs.values():
        report["outputs"].append(output_report(spark, sandbox, out, sandbox.settings.stats))
    report["reads"] = sandbox.reads
    report["seconds"] = {"app": round(outcome.seconds, 3), "stats": round(time.monotonic() - started, 3)}
    return report


def conf_getter() -> Callable[[str, str], str]:
    """Spark conf without creating a SparkContext (the app must create it, with its own static confs)."""
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()  # connects to spark-submit's JVM; creates no context
    conf = SparkConf()
    return lambda key, default: conf.get(key, default) or default


def current_session() -> Any:
    from pyspark.sql import SparkSession

    return (SparkSession.getActiveSession() or SparkSession._instantiatedSession
            or SparkSession.builder.getOrCreate())  # the app made none: the report still needs one


def main(argv: list[str]) -> None:
    settings = read_settings(conf_getter())
    if settings.mode == "stats":
        spark = current_session()
        print_report(stats_run(spark, settings))
        spark.stop()
        return
    sandbox = Sandbox(settings)
    install(sandbox)
    outcome = run_app(settings.app, argv)
    spark = current_session()
    try:
        report = preflight_report(spark, sandbox, outcome)
    except BaseException as error:  # noqa: BLE001 - the report must still be printed
        report = base_report(settings) | {"app_exit": outcome.exit_code or 1,
                                          "app_error": outcome.error or "launcher: " + _error_text(error)}
    print_report(report)
    uninstall()
    spark.stop()
    if outcome.exception is not None:
        raise outcome.exception  # the app's own traceback / exit code
    if sandbox.blocked:
        raise HealerSandboxError("writes were refused (the app caught the error): " + "; ".join(sandbox.blocked))


if __name__ == "__main__":
    main(sys.argv[1:])

"""The patch guard: every proposed change passes these checks before it can be deployed.

``check_patch`` returns one ``GuardVerdict`` per rule, in a fixed order, each with a reason clear
enough to show the model when its patch is rejected. A patch is accepted when every verdict is ok
(``accepted``). The rules:

- ``well-formed``: the patch carries what its kind needs (code for "code", changes for "config",
  nothing for "rerun") within size limits.
- ``parses``: the new code parses and compiles.
- ``no-new-dangerous-calls``: no new imports or calls that reach the OS, the network or other
  processes, or run dynamic code (AST-based, counted per kind, aliases resolved).
- ``no-new-destructive-sql``: no new DROP / TRUNCATE / DELETE-without-WHERE in string literals.
- ``bounded-diff``: the change touches at most ``max_changed_share`` of the lines.
- ``not-a-no-op``: the code or the configuration actually changes.
- ``not-a-repeat``: the same patch was not tried before.
- ``allowed-config``: configuration changes only to resource settings and safe spark.conf keys,
  with sane values (memory within named caps).
"""

from __future__ import annotations

import ast
import difflib
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agents.errors import InvalidInput
from agents.record import GuardVerdict, Patch

# --- limits -----------------------------------------------------------------------------------

MAX_CODE_CHARS = 500_000
MAX_CONFIG_VALUE_CHARS = 200
MAX_CORES = 8
MAX_EXECUTORS = 50
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
COUNT_LIMITS: dict[str, int] = {
    "driverCores": MAX_CORES,
    "executorCores": MAX_CORES,
    "numExecutors": MAX_EXECUTORS,
    "spark.driver.cores": MAX_CORES,
    "spark.executor.cores": MAX_CORES,
    "spark.executor.instances": MAX_EXECUTORS,
    "spark.dynamicAllocation.maxExecutors": MAX_EXECUTORS,
}
# Fields of the job's "spark" section a patch may change (never file, mounts, pythonEnv, args).
ALLOWED_SPARK_FIELDS = frozenset({"driverMemory", "driverCores", "executorMemory", "executorCores", "numExecutors"})
MAX_ARGS, MAX_ARG_CHARS = 50, 1000
ALLOWED_CONF_PREFIXES = ("spark.sql.", "spark.driver.", "spark.executor.", "spark.memory.", "spark.network.")
# Keys under those prefixes that load code, move data or rebind the driver.
DENIED_CONF_PARTS = (
    "extraJavaOptions",
    "extraClassPath",
    "extraLibraryPath",
    "userClassPathFirst",
    "plugins",
    "spark.sql.extensions",
    "spark.sql.warehouse.dir",
    "spark.sql.catalog",
    "spark.sql.hive.metastore",
    "spark.driver.host",
    "spark.driver.bindAddress",
    "spark.driver.port",
    "spark.driver.resource",
    "spark.executor.resource",
)

# --- dangerous calls --------------------------------------------------------------------------

# Importing these at all reaches processes, the network, or unsafe deserialisation.
DANGEROUS_MODULES = frozenset(
    {
        "subprocess",
        "socket",
        "requests",
        "urllib",
        "urllib3",
        "http",
        "httpx",
        "aiohttp",
        "ftplib",
        "smtplib",
        "telnetlib",
        "paramiko",
        "pickle",
        "marshal",
        "shelve",
        "dill",
        "ctypes",
        "multiprocessing",
        "pty",
        "importlib",
        "webbrowser",
    }
)
# Functions of otherwise ordinary modules that run programs or delete files.
_OS_DANGEROUS = re.compile(
    r"os\.(system|popen|exec\w*|spawn\w*|fork\w*|kill\w*|remove|removedirs|unlink|rmdir|truncate|posix_spawn\w*)$"
)
DANGEROUS_FUNCTIONS = frozenset({"shutil.rmtree", "shutil.move", "shutil.chown", "sys.settrace", "sys.setprofile"})
DANGEROUS_BUILTINS = frozenset({"eval", "exec", "compile", "__import__", "breakpoint"})
# Method names that delete files whatever object they are called on (pathlib, fs clients).
DANGEROUS_METHODS = frozenset({"unlink", "rmdir", "rmtree"})
# Attributes that reach into the JVM behind PySpark (and from there, anything).
DANGEROUS_ATTRIBUTES = frozenset({"_jvm", "_gateway", "_jsc"})

_DESTRUCTIVE_SQL = {
    "DROP": re.compile(
        r"\bDROP\s+(?:TABLE|VIEW|DATABASE|SCHEMA|NAMESPACE|PARTITION|COLUMNS?|FUNCTION|INDEX|IF\s+EXISTS)\b", re.I
    ),
    "TRUNCATE": re.compile(r"\bTRUNCATE\s+(?:TABLE\s+)?[`\w]", re.I),
}
_DELETE = re.compile(r"\bDELETE\s+FROM\b", re.I)
_WHERE = re.compile(r"\bWHERE\b", re.I)

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$", re.I)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def parse_size(text: str | int) -> int:
    """Bytes in a Spark/JVM size: "512m", "2g", "1024k", "1024.0 B", "27.1 KiB". Plain numbers are bytes."""
    if isinstance(text, bool):
        raise InvalidInput(f"not a size: {text!r}")
    if isinstance(text, int):
        return text
    match = _SIZE.match(str(text))
    if not match:
        raise InvalidInput(f"not a size: {text!r} (expected e.g. 512m, 2g)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def format_size(size: int) -> str:
    """The shortest whole Spark size string at least ``size`` bytes: 2g, 1536m, 64k."""
    for unit in ("g", "m", "k"):
        factor = _UNITS[unit]
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    for unit in ("m", "k"):
        factor = _UNITS[unit]
        if size >= factor:
            return f"{-(-size // factor)}{unit}"
    return f"{-(-size // 1024)}k"


# --- helpers ----------------------------------------------------------------------------------


def _lines(code: str) -> list[str]:
    return [line.rstrip() for line in code.rstrip().splitlines()]


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> dotted origin for every import (``import subprocess as sp``, ``from os import system``)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    root = alias.name.split(".")[0]
                    names[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.AST, aliases: Mapping[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(aliases.get(node.id, node.id))
    return ".".join(reversed(parts))


def _is_dangerous_name(dotted: str) -> bool:
    root = dotted.split(".")[0]
    return (
        root in DANGEROUS_MODULES
        or dotted in DANGEROUS_FUNCTIONS
        or bool(_OS_DANGEROUS.match(dotted))
        or dotted in DANGEROUS_BUILTINS
    )


def dangerous_uses(code: str) -> Counter[str]:
    """Counts of dangerous imports, calls and attributes in ``code``, by kind ("call os.system")."""
    tree = ast.parse(code)
    aliases = _aliases(tree)
    found: Counter[str] = Counter()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _is_dangerous_name(alias.name):
                    found[f"import {alias.name}"] += 1
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                dotted = f"{node.module}.{alias.name}"
                if _is_dangerous_name(dotted):
                    found[f"import {dotted}"] += 1
        elif isinstance(node, ast.Call):
            dotted = _dotted(node.func, aliases)
            if dotted and dotted not in DANGEROUS_BUILTINS and _is_dangerous_name(dotted):
                found[f"call {dotted}"] += 1
            elif isinstance(node.func, ast.Attribute) and node.func.attr in DANGEROUS_METHODS:
                found[f"call .{node.func.attr}()"] += 1
        elif isinstance(node, ast.Attribute) and node.attr in DANGEROUS_ATTRIBUTES:
            found[f"attribute .{node.attr}"] += 1
        elif (
            isinstance(node, ast.Name)
            and node.id in DANGEROUS_BUILTINS
            and node.id not in aliases  # e.g. "from re import compile"
            and isinstance(node.ctx, ast.Load)
        ):
            # called or passed around (map(eval, ...), f = exec): both run dynamic code
            found[f"use of {node.id}"] += 1
    return found


def _folded_strings(tree: ast.AST) -> Iterable[str]:
    """Every string literal, with ``"a" + "b"`` folded and f-string constant parts joined."""

    def fold(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = fold(node.left), fold(node.right)
            if left is not None and right is not None:
                return left + right
        if isinstance(node, ast.JoinedStr):
            return " ".join(fold(v) or " x " for v in node.values)
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp | ast.Constant | ast.JoinedStr):
            text = fold(node)
            if text:
                yield text


def destructive_sql(code: str) -> Counter[str]:
    """Counts of destructive SQL statements in the string literals of ``code``, by kind."""
    found: Counter[str] = Counter()
    seen: set[str] = set()
    for text in _folded_strings(ast.parse(code)):
        if text in seen:
            continue  # a folded concatenation also appears as its parts; count each text once
        seen.add(text)
        for statement in text.split(";"):
            for kind, pattern in _DESTRUCTIVE_SQL.items():
                found[kind] += len(pattern.findall(statement))
            if _DELETE.search(statement) and not _WHERE.search(statement):
                found["DELETE without WHERE"] += 1
    return +found


def _describe(counter: Counter[str]) -> str:
    return ", ".join(f"{count} x {kind}" for kind, count in sorted(counter.items()))


def changed_share(original: str, new: str) -> float:
    """The share of lines the change touches: (removed + added lines) / (old + new lines)."""
    return 1.0 - difflib.SequenceMatcher(None, _lines(original), _lines(new), autojunk=False).ratio()


def _patch_key(patch: Patch) -> str:
    return json.dumps(
        {
            "kind": patch.kind,
            "code": "\n".join(_lines(patch.code)) if patch.code is not None else None,
            "spark": {k: str(v) for k, v in patch.spark_changes.items()},
            "conf": patch.conf_changes,
        },
        sort_keys=True,
    )


# --- rules ------------------------------------------------------------------------------------


def _well_formed(patch: Patch) -> GuardVerdict:
    rule = "well-formed"
    has_config = bool(patch.spark_changes or patch.conf_changes)
    if patch.kind == "code":
        if not patch.code or not patch.code.strip():
            return GuardVerdict(ok=False, rule=rule, reason="a code patch must carry the complete new file in `code`")
        if len(patch.code) > MAX_CODE_CHARS:
            return GuardVerdict(ok=False, rule=rule, reason=f"the new code is over {MAX_CODE_CHARS} characters")
    elif patch.kind == "config":
        if patch.code is not None:
            return GuardVerdict(
                ok=False, rule=rule, reason="a config patch must not carry code; use kind 'code' for code changes"
            )
    elif patch.kind == "rerun" and (patch.code is not None or has_config):
        return GuardVerdict(
            ok=False, rule=rule, reason="a rerun patch changes nothing; use kind 'code' or 'config' to change something"
        )
    return GuardVerdict(ok=True, rule=rule)


def _parses(patch: Patch) -> GuardVerdict:
    rule = "parses"
    if patch.kind != "code" or not patch.code:
        return GuardVerdict(ok=True, rule=rule, reason="no code change")
    try:
        compile(patch.code, "<patched application>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f"line {exc.lineno}" + (f", column {exc.offset}" if exc.offset else "")
        text = f": {exc.text.strip()}" if exc.text and exc.text.strip() else ""
        return GuardVerdict(ok=False, rule=rule, reason=f"the new code does not compile: {exc.msg} at {where}{text}")
    except (ValueError, RecursionError, MemoryError) as exc:
        return GuardVerdict(ok=False, rule=rule, reason=f"the new code does not compile: {exc}")
    return GuardVerdict(ok=True, rule=rule)


def _code_counts(original: str, new: str, count: Any) -> tuple[Counter[str], Counter[str]] | None:
    try:
        return count(original), count(new)
    except (SyntaxError, ValueError, RecursionError):
        return None


def _no_new_dangerous_calls(original: str, patch: Patch) -> GuardVerdict:
    rule = "no-new-dangerous-calls"
    if patch.kind != "code" or not patch.code:
        return GuardVerdict(ok=True, rule=rule, reason="no code change")
    counts = _code_counts(original, patch.code, dangerous_uses)
    if counts is None:
        try:
            ast.parse(patch.code)
        except (SyntaxError, ValueError, RecursionError):
            return GuardVerdict(ok=False, rule=rule, reason="cannot check: the new code does not parse")
        counts = (Counter(), dangerous_uses(patch.code))  # the original does not parse: everything is new
    added = counts[1] - counts[0]
    if added:
        return GuardVerdict(
            ok=False,
            rule=rule,
            reason=f"the patch adds calls that reach the OS, network, processes or dynamic code: {_describe(added)}. "
            "Fix the Spark logic without them.",
        )
    return GuardVerdict(ok=True, rule=rule)


def _no_new_destructive_sql(original: str, patch: Patch) -> GuardVerdict:
    rule = "no-new-destructive-sql"
    if patch.kind != "code" or not patch.code:
        return GuardVerdict(ok=True, rule=rule, reason="no code change")
    counts = _code_counts(original, patch.code, destructive_sql)
    if counts is None:
        try:
            counts = (Counter(), destructive_sql(patch.code))
        except (SyntaxError, ValueError, RecursionError):
            return GuardVerdict(ok=False, rule=rule, reason="cannot check: the new code does not parse")
    added = counts[1] - counts[0]
    if added:
        return GuardVerdict(
            ok=False,
            rule=rule,
            reason=f"the patch adds destructive SQL: {_describe(added)}. Never drop, truncate or delete data to fix a job.",
        )
    return GuardVerdict(ok=True, rule=rule)


def _bounded_diff(original: str, patch: Patch, max_changed_share: float) -> GuardVerdict:
    rule = "bounded-diff"
    if patch.kind != "code" or not patch.code:
        return GuardVerdict(ok=True, rule=rule, reason="no code change")
    share = changed_share(original, patch.code)
    if share > max_changed_share:
        return GuardVerdict(
            ok=False,
            rule=rule,
            reason=f"the patch changes {share:.0%} of the lines (limit {max_changed_share:.0%}); "
            "make the smallest change that fixes the cause and keep every other line as it is",
        )
    return GuardVerdict(ok=True, rule=rule, reason=f"{share:.0%} of the lines changed")


def _not_a_no_op(original: str, patch: Patch, job_spark: Mapping[str, Any] | None) -> GuardVerdict:
    rule = "not-a-no-op"
    if patch.kind == "rerun":
        return GuardVerdict(ok=True, rule=rule, reason="a rerun changes nothing by design")
    if patch.kind == "code":
        if patch.code is not None and _lines(patch.code) == _lines(original):
            return GuardVerdict(ok=False, rule=rule, reason="the new code is the same as the original code")
        return GuardVerdict(ok=True, rule=rule)
    if not patch.spark_changes and not patch.conf_changes:
        return GuardVerdict(ok=False, rule=rule, reason="the config patch changes no setting")
    if job_spark is not None:
        current_conf = job_spark.get("conf") or {}
        same_spark = all(str(job_spark.get(k)) == str(v) for k, v in patch.spark_changes.items())
        same_conf = all(str(current_conf.get(k)) == str(v) for k, v in patch.conf_changes.items())
        if same_spark and same_conf:
            return GuardVerdict(ok=False, rule=rule, reason="every setting in the patch already has that value in the job")
    return GuardVerdict(ok=True, rule=rule)


def _not_a_repeat(patch: Patch, previous: Sequence[Patch]) -> GuardVerdict:
    rule = "not-a-repeat"
    key = _patch_key(patch)
    for number, earlier in enumerate(previous, start=1):
        if _patch_key(earlier) == key:
            return GuardVerdict(
                ok=False,
                rule=rule,
                reason=f"the same patch was already tried (attempt {number}) and did not fix the job; propose a different change",
            )
    return GuardVerdict(ok=True, rule=rule)


def _check_value(key: str, value: Any) -> str | None:
    """Why ``value`` is not acceptable for ``key``, or None."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return f"{key}: value {value!r} must be a string (or an integer count)"
    text = str(value)
    if len(text) > MAX_CONFIG_VALUE_CHARS or "\n" in text or "\r" in text:
        return f"{key}: value is too long or spans lines"
    if key in MEMORY_CAPS:
        try:
            size = parse_size(text)
        except InvalidInput:
            return f"{key}: {text!r} is not a memory size like 2g or 512m"
        if size <= 0 or size > parse_size(MEMORY_CAPS[key]):
            return f"{key}: {text} is over the cap of {MEMORY_CAPS[key]}"
    if key in COUNT_LIMITS:
        if not text.isdigit() or not 1 <= int(text) <= COUNT_LIMITS[key]:
            return f"{key}: {text!r} must be a whole number from 1 to {COUNT_LIMITS[key]}"
    return None


def _args_problem(value: Any, job_spark: Mapping[str, Any] | None) -> str | None:
    """Arguments may only be appended: existing ones (the tables a job reads and writes) never change."""
    if not isinstance(value, list) or not all(isinstance(a, str) and len(a) <= MAX_ARG_CHARS for a in value):
        return f"args must be a list of strings of at most {MAX_ARG_CHARS} characters"
    if len(value) > MAX_ARGS:
        return f"args: at most {MAX_ARGS} arguments"
    current = list((job_spark or {}).get("args") or [])
    if value[: len(current)] != current or len(value) == len(current):
        return (f"args may only append missing arguments; the existing ones {current!r} must stay as they are, "
                "in order")
    return None


def _allowed_config(patch: Patch, job_spark: Mapping[str, Any] | None = None) -> GuardVerdict:
    rule = "allowed-config"
    problems: list[str] = []
    for key, value in patch.spark_changes.items():
        if key == "args":
            problem = _args_problem(value, job_spark)
            if problem:
                problems.append(problem)
            continue
        if key not in ALLOWED_SPARK_FIELDS:
            problems.append(
                f"job field {key!r} may not be changed (allowed: {', '.join(sorted(ALLOWED_SPARK_FIELDS))}; "
                "or appending missing args; never the application file, mounts or python environment)"
            )
            continue
        problem = _check_value(key, value)
        if problem:
            problems.append(problem)
    for key, value in patch.conf_changes.items():
        if not key.startswith(ALLOWED_CONF_PREFIXES):
            problems.append(f"spark.conf key {key!r} is not allowed (allowed prefixes: {', '.join(ALLOWED_CONF_PREFIXES)})")
            continue
        if any(part in key for part in DENIED_CONF_PARTS):
            problems.append(f"spark.conf key {key!r} loads code, moves data or rebinds the driver; it may not be changed")
            continue
        if not isinstance(value, str):
            problems.append(f"{key}: spark.conf values must be strings")
            continue
        problem = _check_value(key, value)
        if problem:
            problems.append(problem)
    if problems:
        return GuardVerdict(ok=False, rule=rule, reason="; ".join(problems))
    return GuardVerdict(ok=True, rule=rule)


def check_patch(
    original_code: str,
    patch: Patch,
    *,
    previous: Sequence[Patch] = (),
    max_changed_share: float = 0.5,
    job_spark: Mapping[str, Any] | None = None,
) -> list[GuardVerdict]:
    """Every guard rule's verdict on ``patch`` (see the module docstring); accepted when all are ok.

    ``previous`` are the patches already tried for this incident. ``job_spark`` (the job's "spark"
    section), when given, lets a config patch that sets only the current values count as a no-op.
    """
    if not isinstance(original_code, str):
        raise InvalidInput("check_patch() needs the original application code as text")
    if not 0.0 < max_changed_share <= 1.0:
        raise InvalidInput(f"max_changed_share must be in (0, 1], got {max_changed_share}")
    return [
        _well_formed(patch),
        _parses(patch),
        _no_new_dangerous_calls(original_code, patch),
        _no_new_destructive_sql(original_code, patch),
        _bounded_diff(original_code, patch, max_changed_share),
        _not_a_no_op(original_code, patch, job_spark),
        _not_a_repeat(patch, previous),
        _allowed_config(patch, job_spark),
    ]


def accepted(verdicts: Iterable[GuardVerdict]) -> bool:
    """True when every verdict is ok."""
    return all(verdict.ok for verdict in verdicts)


def rejection_reasons(verdicts: Iterable[GuardVerdict]) -> str:
    """The failed verdicts as lines for the model ("- rule: reason"); empty when accepted."""
    return "\n".join(f"- {v.rule}: {v.reason}" for v in verdicts if not v.ok)

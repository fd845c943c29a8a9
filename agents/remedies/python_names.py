"""Python names: a misspelt name or attribute Python suggests (P101), a well-known name used without
its import (P102).

Both read the exception line Python prints (3.10+ adds "Did you mean: 'y'?" to ``NameError`` and
``AttributeError``) and edit the application file with LibCST, so formatting and comments stay.

- P101 renames the failing reference at the traceback's line to Python's suggestion, and for a
  ``NameError`` also the other references to the same missing binding (LibCST's scope analysis: a
  load of the name that nothing in its scope binds, where the suggestion is visible). For an
  ``AttributeError`` on a module it renames ``alias.x`` wherever the alias is the same import;
  on any other object only at the failing line (the type of other objects is unknown statically).
  The suggestion must exist: a binding of the file or a builtin; a member of the module; an
  attribute of the PySpark API or of Python's own types (agents/guard/vocabulary).
- P102 adds the import of a name listed in ``IMPORTS`` (an explicit table, never a guess) when the
  file binds the name nowhere and every use fits what the import provides (a module alias used
  only as ``F.member`` with members of that module; a function used only in calls). The import goes
  after the file's imports, in their style (``import a.b as F`` or ``from a import b as F``; a plain
  name joins an existing ``from module import ...`` of the same module).
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import libcst as cst
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider, ScopeProvider

from agents.guard import vocabulary as vocab
from agents.record import Diagnosis, Evidence, Patch
from agents.remedies.registry import Rule, finding, lines_with, spark_file

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_NAME_ERROR = re.compile(
    rf"NameError: name '({_IDENT})' is not defined"
    rf"(?:\. Did you mean: '({_IDENT})'\?|\. Did you forget to import '({_IDENT})'\?)?"
)
_ATTRIBUTE_ERROR = re.compile(
    rf"AttributeError: (?:module '([\w.]+)'|'({_IDENT})' object|type object '({_IDENT})') "
    rf"has no attribute '({_IDENT})'(?:\. Did you mean: '({_IDENT})'\?)?"
)
_BUILTINS = frozenset(dir(builtins))


# --- the import table (P102) ------------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    """How to import one name: ``from module import member as name`` or, for a module alias,
    ``import module as name`` (``member`` is None then)."""

    module: str
    member: str | None
    # "module": used only as name.member; "callable": only called; "class": called, its attributes
    # read, or in annotations (never as a bare value)
    kind: str


_FUNCTIONS = "pyspark.sql.functions"
_TYPES = "pyspark.sql.types"
# Bare functions of pyspark.sql.functions that are commonly imported by name. Names that are Python
# builtins (sum, max, min, round, abs, ...) never raise NameError, and names that another module of
# the table also exports (reduce) are ambiguous: neither is listed.
_FUNCTION_NAMES = (
    "col", "column", "lit", "when", "expr", "coalesce", "concat", "concat_ws", "avg", "mean", "count",
    "count_distinct", "sum_distinct", "approx_count_distinct", "collect_list", "collect_set",
    "first", "last", "stddev", "variance", "percentile_approx", "to_date", "to_timestamp", "date_format",
    "date_add", "date_sub", "datediff", "date_trunc", "trunc", "current_date", "current_timestamp", "year",
    "month", "dayofmonth", "dayofweek", "weekofyear", "quarter", "hour", "minute", "unix_timestamp",
    "from_unixtime", "upper", "lower", "trim", "ltrim", "rtrim", "initcap", "length", "substring", "lpad",
    "rpad", "regexp_replace", "regexp_extract", "split", "explode", "explode_outer", "posexplode", "array",
    "array_contains", "element_at", "size", "sort_array", "struct", "create_map", "broadcast", "desc", "asc",
    "row_number", "rank", "dense_rank", "percent_rank", "ntile", "lag", "lead", "isnan", "isnull", "nanvl",
    "greatest", "least", "floor", "ceil", "sqrt", "exp", "format_number", "format_string", "sha2", "md5",
    "monotonically_increasing_id", "from_json", "to_json", "udf", "pandas_udf",
)
_TYPE_NAMES = (
    "StructType", "StructField", "StringType", "IntegerType", "LongType", "ShortType", "ByteType", "DoubleType",
    "FloatType", "BooleanType", "DateType", "TimestampType", "DecimalType", "ArrayType", "MapType", "BinaryType",
    "NullType",
)

IMPORTS: dict[str, Import] = {
    "F": Import("pyspark.sql.functions", None, "module"),
    "T": Import("pyspark.sql.types", None, "module"),
    "SparkSession": Import("pyspark.sql", "SparkSession", "class"),
    "Row": Import("pyspark.sql", "Row", "class"),
    "DataFrame": Import("pyspark.sql", "DataFrame", "class"),
    "Column": Import("pyspark.sql", "Column", "class"),
    "Window": Import("pyspark.sql.window", "Window", "class"),
    **{name: Import(_FUNCTIONS, name, "callable") for name in _FUNCTION_NAMES},
    **{name: Import(_TYPES, name, "class") for name in _TYPE_NAMES},
    "re": Import("re", None, "module"),
    "json": Import("json", None, "module"),
    "math": Import("math", None, "module"),
    "sys": Import("sys", None, "module"),
    "decimal": Import("decimal", None, "module"),
    "functools": Import("functools", None, "module"),
    "itertools": Import("itertools", None, "module"),
    "Decimal": Import("decimal", "Decimal", "class"),
    "date": Import("datetime", "date", "class"),
    "timedelta": Import("datetime", "timedelta", "class"),
    "timezone": Import("datetime", "timezone", "class"),
    "reduce": Import("functools", "reduce", "callable"),
    "defaultdict": Import("collections", "defaultdict", "class"),
    "Counter": Import("collections", "Counter", "class"),
    "OrderedDict": Import("collections", "OrderedDict", "class"),
    "namedtuple": Import("collections", "namedtuple", "callable"),
    # "datetime" is both a module and its class: decided by its uses (_datetime_import).
}
_DATETIME_MODULE = frozenset({"date", "datetime", "time", "timedelta", "timezone", "tzinfo", "MINYEAR", "MAXYEAR",
                              "UTC"})
_DATETIME_CLASS = frozenset({"now", "today", "utcnow", "strptime", "fromisoformat", "fromtimestamp",
                             "utcfromtimestamp", "combine", "min", "max"})


def _module_members(module: str) -> frozenset[str] | None:
    """The public members of a module the table imports (None: not known here)."""
    members = vocab.pyspark_api()["modules"].get(module)
    if members is not None:
        return frozenset(members)
    if module in vocab.SAFE_MODULES:
        return vocab.safe_members(module)
    return None


# --- reading the exception --------------------------------------------------------------------------


@dataclass(frozen=True)
class NameFailure:
    kind: str  # "name" | "attribute"
    name: str  # the missing name or attribute
    suggestion: str | None  # Python's "Did you mean" (or "Did you forget to import")
    owner_module: str | None = None  # AttributeError on a module: its dotted name
    owner_type: str | None = None  # AttributeError on an object or a class: its type's name
    line: str = ""


def name_failure(evidence: Evidence) -> NameFailure | None:
    """The NameError/AttributeError Python printed last (the exception first, then key lines)."""
    candidates = [t for t in (evidence.exception,) if t] + list(reversed(evidence.key_lines))
    for text in candidates:
        match = _NAME_ERROR.search(text)
        if match:
            return NameFailure("name", match.group(1), match.group(2) or match.group(3), line=text)
        match = _ATTRIBUTE_ERROR.search(text)
        if match:
            module, obj, cls, name, suggestion = match.groups()
            return NameFailure("attribute", name, suggestion, owner_module=module, owner_type=obj or cls, line=text)
    return None


def _user_line(evidence: Evidence, job: Mapping[str, Any] | None) -> int | None:
    """The failing line in the application file, or None when the traceback's frame is elsewhere."""
    frame_file = (evidence.user_frame or "").split('"')[1:2]
    app = spark_file(job)
    if frame_file and app and frame_file[0].rsplit("/", 1)[-1] != app:
        return None
    return evidence.user_line


# --- the code as a program (LibCST) -----------------------------------------------------------------


class _Program:
    """The parsed file with positions, scopes and parents."""

    def __init__(self, code: str) -> None:
        self.wrapper = MetadataWrapper(cst.parse_module(code))
        self.module = self.wrapper.module
        self.positions = self.wrapper.resolve(PositionProvider)
        self.scopes = self.wrapper.resolve(ScopeProvider)
        self.parents = self.wrapper.resolve(ParentNodeProvider)

    def names(self, value: str) -> list[cst.Name]:
        return [n for n in self.positions if isinstance(n, cst.Name) and n.value == value]

    def loads(self, value: str) -> list[cst.Name]:
        """Names that read ``value`` as a variable (not attributes, keywords, or assignment targets)."""
        found = []
        for name in self.names(value):
            scope = self.scopes.get(name)
            if scope is None:
                continue
            if any(access.node is name for access in scope.accesses[value]):
                found.append(name)
        return found

    def unbound(self, name: cst.Name) -> bool:
        """Whether nothing visible from the name's scope binds it (and it is no builtin)."""
        scope = self.scopes.get(name)
        return scope is not None and not _visible(scope, name.value)

    def bound_anywhere(self, value: str) -> bool:
        return any(scope.assignments[value] for scope in set(self.scopes.values()) if scope is not None)

    def bound_names(self) -> set[str]:
        """Every name the file binds, in any scope."""
        return {a.name for scope in set(self.scopes.values()) if scope is not None
                for a in scope.assignments if not isinstance(a, _builtin_types())}

    def line(self, node: cst.CSTNode) -> int:
        return self.positions[node].start.line

    def span(self, node: cst.CSTNode) -> tuple[int, int]:
        position = self.positions[node]
        return position.start.line, position.end.line


def _visible(scope: Any, value: str) -> bool:
    """A binding of ``value`` (not a builtin) visible from ``scope``."""
    return any(getattr(a, "scope", None) is not None and not isinstance(a, _builtin_types()) for a in scope[value])


def _builtin_types() -> tuple[type, ...]:
    from libcst.metadata.scope_provider import BuiltinAssignment

    return (BuiltinAssignment,)


def _rename(module: cst.Module, targets: set[int], new: str) -> cst.Module:
    """``module`` with the Name nodes whose ids are in ``targets`` renamed to ``new``."""

    class Renamer(cst.CSTTransformer):
        def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
            return updated_node.with_changes(value=new) if id(original_node) in targets else updated_node

    return module.visit(Renamer())


# --- P101: the name Python suggests ------------------------------------------------------------------


def _candidates(failure: NameFailure, program: _Program | None) -> frozenset[str] | None:
    """The names the suggestion must be one of: the file's bindings and the builtins (NameError); the
    module's members; the PySpark and Python attribute vocabulary. None when not known."""
    if failure.kind == "name":
        return None if program is None else frozenset(program.bound_names()) | _BUILTINS
    if failure.owner_module:
        return _module_members(failure.owner_module)
    return vocab.attribute_names()


def _suggestion_exists(failure: NameFailure, program: _Program | None) -> bool:
    """Whether the suggested name exists where it is suggested (see the module docstring)."""
    candidates = _candidates(failure, program)
    return bool(failure.suggestion) and candidates is not None and failure.suggestion in candidates


def _rivals(failure: NameFailure, program: _Program | None) -> list[str]:
    """Other existing names as close to the misspelt one as Python's suggestion (``avgg``: ``agg``
    and ``avg``): then the suggestion is a coin toss, not the fix."""
    suggestion = failure.suggestion or ""
    distance = edit_distance(failure.name, suggestion)
    return sorted(c for c in _candidates(failure, program) or () if c not in (suggestion, failure.name)
                  and abs(len(c) - len(failure.name)) <= distance and edit_distance(failure.name, c) <= distance)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions and substitutions cost 1)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _name_targets(program: _Program, failure: NameFailure, line: int | None) -> list[cst.Name]:
    """NameError: the unbound loads of the name where the suggestion is visible, provided the
    failing line has one of them (the traceback's reference)."""
    suggestion = failure.suggestion or ""
    loads = [n for n in program.loads(failure.name) if program.unbound(n)]
    usable = [n for n in loads if suggestion in _BUILTINS or _visible(program.scopes[n], suggestion)]
    if line is not None and not any(program.line(n) == line for n in usable):
        return []
    if line is None and not usable:
        return []
    return usable


def _attribute_nodes(program: _Program, attr: str) -> list[cst.Attribute]:
    return [n for n in program.positions if isinstance(n, cst.Attribute) and n.attr.value == attr]


def _attribute_targets(program: _Program, failure: NameFailure, line: int | None) -> list[cst.Name]:
    """AttributeError: ``x.attr`` at the failing line; on a module, every ``alias.attr`` whose
    alias is the same import."""
    if line is None:
        return []
    nodes = _attribute_nodes(program, failure.name)
    at_line = [n for n in nodes if program.line(n.attr) == line] or [
        n for n in nodes if program.span(n)[0] <= line <= program.span(n)[1]]
    if len(at_line) != 1:
        return []  # none, or several on one line: which one failed is not known
    failing = at_line[0]
    if failure.owner_module and isinstance(failing.value, cst.Name):
        binding = _import_binding(program, failing.value)
        if binding is not None:
            return [n.attr for n in nodes if isinstance(n.value, cst.Name)
                    and _import_binding(program, n.value) is binding]
    return [failing.attr]


def _import_binding(program: _Program, name: cst.Name) -> object | None:
    """The single import statement that binds ``name`` where it is read, or None."""
    scope = program.scopes.get(name)
    if scope is None:
        return None
    bindings = [a for a in scope[name.value] if isinstance(getattr(a, "node", None), (cst.Import, cst.ImportFrom))]
    return bindings[0].node if len(bindings) == 1 and len(scope[name.value]) == 1 else None


def _diagnose_suggestion(evidence: Evidence, code: str | None) -> Diagnosis | None:
    failure = name_failure(evidence)
    if failure is None or not failure.suggestion:
        return None
    if failure.kind == "name" and _import_for(failure.name, code) is not None:
        return None  # a known name used without its import: P102
    lines = lines_with(evidence, [failure.line]) or [failure.line]
    program = _parse(code)
    exists = _suggestion_exists(failure, program)
    what = "name" if failure.kind == "name" else "attribute"
    owner = f" of {failure.owner_module or failure.owner_type}" if failure.kind == "attribute" else ""
    rivals = _rivals(failure, program) if exists else []
    if rivals:
        return finding("code", f"The code uses the {what} `{failure.name}`{owner}, which does not exist; Python "
                       f"suggests `{failure.suggestion}`, but {', '.join(f'`{r}`' for r in rivals[:3])} "
                       "is as close: which one was meant is not certain.", lines, 0.6)
    if not exists:
        return finding("code", f"The code uses the {what} `{failure.name}`{owner}, which does not exist; Python "
                       f"suggests `{failure.suggestion}`, but that is not a name the file or the API defines.",
                       lines, 0.6)
    return finding("code", f"The code uses the {what} `{failure.name}`{owner}, which does not exist (a typo); "
                   f"Python suggests `{failure.suggestion}`, which does.", lines, 0.9)


def _fix_suggestion(evidence: Evidence, code: str | None, job_spark: Mapping[str, Any],
                    job: Mapping[str, Any]) -> Patch | None:
    failure = name_failure(evidence)
    program = _parse(code)
    if failure is None or not failure.suggestion or program is None or not _suggestion_exists(failure, program):
        return None
    if _rivals(failure, program):
        return None
    line = _user_line(evidence, job)
    if failure.kind == "name":
        targets = _name_targets(program, failure, line)
    else:
        targets = _attribute_targets(program, failure, line)
    if not targets:
        return None
    new_code = _rename(program.module, {id(n) for n in targets}, failure.suggestion).code
    count = len(targets)
    what = "name" if failure.kind == "name" else "attribute"
    return Patch(kind="code", code=new_code, source="rule",
                 explanation=f"Renamed the {what} `{failure.name}` to `{failure.suggestion}`, as Python suggested "
                 f"({count} reference{'s' if count != 1 else ''}).")


def _parse(code: str | None) -> _Program | None:
    if not code:
        return None
    try:
        return _Program(code)
    except (cst.ParserSyntaxError, RecursionError, ValueError):
        return None


# --- P102: the missing import -----------------------------------------------------------------------


def _uses(program: _Program, name: str) -> list[tuple[str, str | None]]:
    """How each load of ``name`` is used: ("attribute", attr), ("call", None) or ("value", None)."""
    found: list[tuple[str, str | None]] = []
    for node in program.loads(name):
        parent = program.parents.get(node)
        if isinstance(parent, cst.Attribute) and parent.value is node:
            found.append(("attribute", parent.attr.value))
        elif isinstance(parent, cst.Call) and parent.func is node:
            found.append(("call", None))
        elif isinstance(parent, cst.Annotation):
            found.append(("annotation", None))
        else:
            found.append(("value", None))
    return found


def _datetime_import(uses: list[tuple[str, str | None]]) -> Import | None:
    """``import datetime`` or ``from datetime import datetime``, as the uses show (None: unclear)."""
    attrs = {a for kind, a in uses if kind == "attribute"}
    if uses and all(kind == "attribute" for kind, _ in uses) and attrs <= _DATETIME_MODULE and not attrs & _DATETIME_CLASS:
        return Import("datetime", None, "module")
    if all(kind == "call" or (kind == "attribute" and a in _DATETIME_CLASS) for kind, a in uses):
        return Import("datetime", "datetime", "class")
    return None


def _import_for(name: str, code: str | None, program: _Program | None = None) -> Import | None:
    """The table's import for ``name`` when the file binds it nowhere and its uses fit the import."""
    if name not in IMPORTS and name != "datetime":
        return None
    program = program or _parse(code)
    if program is None or program.bound_anywhere(name):
        return None
    uses = _uses(program, name)
    if not uses:
        return None
    if name == "datetime":
        return _datetime_import(uses)
    entry = IMPORTS[name]
    if entry.kind == "module":
        members = _module_members(entry.module)
        if members is None or not all(kind == "attribute" and a in members for kind, a in uses):
            return None
    elif entry.kind == "callable" and not all(kind == "call" for kind, _ in uses):
        return None
    elif entry.kind == "class" and any(kind == "value" for kind, _ in uses):
        return None  # a bare value (`print(date)`) may be a variable the code forgot to set
    return entry


def _import_statement(name: str, entry: Import, module: cst.Module) -> str:
    """The import line in the file's style."""
    if entry.member is None:
        if name == entry.module:
            return f"import {name}"
        parent, _, leaf = entry.module.rpartition(".")
        dotted_style = any(isinstance(s, cst.Import) and any(
            a.asname is not None and "." in _dotted(a.name) for a in s.names)
            for s in _top_level_imports(module))
        return f"import {entry.module} as {name}" if dotted_style else f"from {parent} import {leaf} as {name}"
    alias = "" if entry.member == name else f" as {name}"
    return f"from {entry.module} import {entry.member}{alias}"


def _dotted(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return ""


def _top_level_imports(module: cst.Module) -> list[cst.Import | cst.ImportFrom]:
    found = []
    for statement in module.body:
        if isinstance(statement, cst.SimpleStatementLine):
            found += [s for s in statement.body if isinstance(s, (cst.Import, cst.ImportFrom))]
    return found


def _is_import_line(statement: cst.CSTNode) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and all(
        isinstance(s, (cst.Import, cst.ImportFrom)) for s in statement.body)


def _add_import(module: cst.Module, name: str, entry: Import) -> cst.Module:
    """``module`` with the import: joined to a top-level ``from <module> import a, b`` of the same
    module for a plain name, else a new line after the last top-level import of the leading block."""
    body = list(module.body)
    if entry.member is not None and entry.member == name:
        for index, statement in enumerate(body):
            if not _is_import_line(statement):
                continue
            assert isinstance(statement, cst.SimpleStatementLine)
            small = statement.body[0]
            if (len(statement.body) == 1 and isinstance(small, cst.ImportFrom) and not small.relative
                    and small.module is not None and _dotted(small.module) == entry.module
                    and not isinstance(small.names, cst.ImportStar)):
                names = list(small.names)
                trailing = names[-1].comma
                if isinstance(trailing, cst.Comma) and len(names) > 1:
                    # one name a line, with a trailing comma: the new name on a line of its own
                    names[-1] = names[-1].with_changes(comma=names[-2].comma)
                    names.append(cst.ImportAlias(name=cst.Name(name), comma=trailing))
                elif isinstance(trailing, cst.Comma):
                    continue  # a lone parenthesised name: a line of its own below
                else:
                    names[-1] = names[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
                    names.append(cst.ImportAlias(name=cst.Name(name)))
                body[index] = statement.with_changes(body=[small.with_changes(names=names)])
                return module.with_changes(body=body)
    new_line = cst.parse_statement(_import_statement(name, entry, module) + "\n")
    position = 0
    for index, statement in enumerate(body):
        if _is_import_line(statement):
            position = index + 1
        elif index == 0 and _is_docstring(statement):
            position = 1
        else:
            break
    body.insert(position, new_line)
    return module.with_changes(body=body)


def _is_docstring(statement: cst.CSTNode) -> bool:
    return (isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1
            and isinstance(statement.body[0], cst.Expr) and isinstance(statement.body[0].value, cst.SimpleString))


def _diagnose_import(evidence: Evidence, code: str | None) -> Diagnosis | None:
    failure = name_failure(evidence)
    if failure is None or failure.kind != "name":
        return None
    entry = _import_for(failure.name, code)
    if entry is None:
        return None
    lines = lines_with(evidence, [failure.line]) or [failure.line]
    source = entry.module if entry.member is None else f"{entry.module}.{entry.member}"
    return finding("code", f"The code uses `{failure.name}` ({source}) without importing it.", lines, 0.9)


def _fix_import(evidence: Evidence, code: str | None, job_spark: Mapping[str, Any],
                job: Mapping[str, Any]) -> Patch | None:
    failure = name_failure(evidence)
    program = _parse(code)
    if failure is None or failure.kind != "name" or program is None:
        return None
    entry = _import_for(failure.name, code, program)
    line = _user_line(evidence, job)
    if entry is None or (line is not None and not any(program.line(n) == line for n in program.loads(failure.name))):
        return None
    new_module = _add_import(program.module, failure.name, entry)
    statement = _import_statement(failure.name, entry, program.module)
    return Patch(kind="code", code=new_module.code, source="rule",
                 explanation=f"Imported `{failure.name}`, which the code uses without importing it "
                 f"({statement}).")


RULES = (
    Rule(
        code="P102", name="missing-import",
        summary="A well-known name (F, col, Window, json, ...) used without its import: the import added",
        explanation="A NameError for a name of the rule's import table (pyspark.sql.functions as F, "
        "pyspark.sql.types as T, the common functions of pyspark.sql.functions and types of pyspark.sql.types, "
        "SparkSession, Row, Window, datetime, re, json, math, ...) that the file binds nowhere. The import is "
        "added after the file's imports, in their style. No fix when a use does not fit the import (a module "
        "alias whose attribute the module lacks, a function that is not called, datetime used both as module "
        "and as class), or for a name outside the table.",
        markers=("NameError: name",), diagnose=_diagnose_import, fix=_fix_import, applicability="safe",
    ),
    Rule(
        code="P101", name="python-name-suggestion",
        summary="A misspelt Python name or attribute, renamed to the one Python suggests (Did you mean)",
        explanation="A NameError or AttributeError with Python's \"Did you mean: 'y'?\". The failing reference "
        "at the traceback's line is renamed to the suggestion; for a NameError, also the other reads of the "
        "same missing name where the suggestion is visible; for a module's attribute, every use through the "
        "same import. No fix when the suggestion is not a name the file, the module or the PySpark/Python "
        "vocabulary defines, or when the failing line has several candidate references.",
        markers=("NameError: name", "has no attribute"), diagnose=_diagnose_suggestion, fix=_fix_suggestion,
        applicability="safe",
    ),
)

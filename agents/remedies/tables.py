"""Tables: the job's own output table already exists when the job re-runs → overwrite that table.

Spark says ``[TABLE_OR_VIEW_ALREADY_EXISTS] Cannot create table or view <name> because it already
exists`` when ``saveAsTable`` runs in its default mode (``errorifexists``) or SQL runs ``CREATE
TABLE t AS SELECT`` / ``CREATE VIEW v AS`` and the object is there (yesterday's run left it).

The fix edits only the write that failed (the statement at the traceback's line in the
application file, else the one write whose literal target is the table Spark names), so it can
only ever overwrite a table the job itself writes:

- DataFrame writer: ``.mode("error"|"errorifexists"|"default")`` → ``.mode("overwrite")``; without
  a mode, ``.mode("overwrite")`` is inserted before ``saveAsTable`` (a ``mode=`` argument of
  ``saveAsTable`` is changed instead);
- SQL ``CREATE VIEW v AS ...`` → ``CREATE OR REPLACE VIEW v AS ...``;
- SQL ``CREATE TABLE t [USING fmt] [PARTITIONED BY (cols)] AS <query>`` →
  ``spark.sql("<query>").write[.format(fmt)][.partitionBy(cols)].mode("overwrite").saveAsTable(t)``.
  ``CREATE OR REPLACE TABLE`` would be the obvious edit, but Spark's session catalog (in-memory and
  Hive/Derby, as the local CDE uses) refuses it for its v1 tables (measured on Spark 4.3:
  ``UNSUPPORTED_FEATURE.TABLE_OPERATION ... does not support REPLACE TABLE AS SELECT``), and
  ``INSERT OVERWRITE`` would fail on a fresh warehouse and match columns by position. Overwriting
  ``saveAsTable`` replaces the table (data and schema) like a CTAS on an empty warehouse does. A
  CTAS with any other clause (LOCATION, OPTIONS, TBLPROPERTIES, STORED AS, ...) is not fixed.

Applicability ``changes-results``: the table's previous content is replaced.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import libcst as cst
import sqlglot
from libcst.metadata import MetadataWrapper, PositionProvider
from sqlglot import exp
from sqlglot.errors import SqlglotError

from agents.record import Diagnosis, Evidence, Patch
from agents.remedies.registry import Rule, finding, lines_with, spark_file, texts, unquote

CONDITION = "TABLE_OR_VIEW_ALREADY_EXISTS"
FAILING_MODES = frozenset({"error", "errorifexists", "default"})  # saveAsTable's modes that fail on a table
_NAME = re.compile(r"Cannot create table or view ((?:`[^`]*`\.)*`[^`]*`|\S+) because it already exists")
_PLACEHOLDER = "__healer_fx{}__"
_PLACEHOLDER_RE = re.compile(r"__healer_fx\d+__")


def existing_table(evidence: Evidence) -> str | None:
    """The table Spark names (``spark_catalog.default.t``), from its parameters or its message."""
    name = evidence.message_parameters.get("relationName")
    if isinstance(name, str) and name:
        return unquote(name)
    for text in texts(evidence):
        match = _NAME.search(text)
        if match:
            return unquote(match.group(1).rstrip("."))
    return None


def same_table(spark_name: str, code_name: str) -> bool:
    """Whether the code's table name (``t``, ``db.t``) is the one Spark names (``catalog.db.t``)."""
    spark_parts = [p.lower() for p in spark_name.split(".")]
    code_parts = [p.lower() for p in unquote(code_name).split(".")]
    return len(code_parts) <= len(spark_parts) and spark_parts[-len(code_parts):] == code_parts


# --- reading string literals (plain, concatenated, f-strings) as SQL text ----------------------


@dataclass
class _Sql:
    text: str  # the SQL, f-string expressions replaced by placeholders
    expressions: dict[str, str]  # placeholder -> the expression's source ("{out}" without braces)


def _string_sql(node: cst.BaseExpression, module: cst.Module, counter: list[int] | None = None) -> _Sql | None:
    """The text of a string expression, or None when it is not a string literal. ``counter`` keeps
    placeholders unique across the parts of one concatenated string."""
    counter = [0] if counter is None else counter
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return _Sql(value, {}) if isinstance(value, str) else None
    if isinstance(node, cst.ConcatenatedString):
        left, right = _string_sql(node.left, module, counter), _string_sql(node.right, module, counter)
        if left is None or right is None:
            return None
        return _Sql(left.text + right.text, {**left.expressions, **right.expressions})
    if isinstance(node, cst.FormattedString):
        prefix = node.prefix.lower().replace("f", "")
        if "b" in prefix:
            return None
        source, expressions = [], {}
        for part in node.parts:
            if isinstance(part, cst.FormattedStringText):
                source.append(part.value.replace("{{", "{").replace("}}", "}"))
            else:
                key = _PLACEHOLDER.format(counter[0])
                counter[0] += 1
                expressions[key] = module.code_for_node(part)[1:-1]
                source.append(key)
        quote = node.end
        try:
            value = ast.literal_eval(prefix + quote + "".join(source) + quote)
        except (SyntaxError, ValueError):
            return None
        return _Sql(value, expressions) if isinstance(value, str) else None
    return None


def _string_literal(text: str, expressions: dict[str, str]) -> str:
    """Python source of a string with ``text``; an f-string when it holds placeholders."""
    used = [p for p in _PLACEHOLDER_RE.findall(text) if p in expressions]
    if not used:
        return _quoted(text)
    escaped = text.replace("{", "{{").replace("}", "}}")
    body = _quoted(escaped)
    for placeholder in used:
        body = body.replace(placeholder, "{" + expressions[placeholder] + "}")
    return "f" + body


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"') + '"'


# --- finding the failing write -------------------------------------------------------------------


@dataclass
class _Write:
    call: cst.Call  # the saveAsTable(...) or spark.sql(...) call
    start: int
    end: int
    target: str | None  # the table's name when it is a literal, else None
    statement: exp.Create | None = None  # for SQL
    sql: _Sql | None = None


def _target_of(call: cst.Call) -> cst.BaseExpression | None:
    for arg in call.args:
        if arg.keyword is None or arg.keyword.value in ("name", "tableName"):
            return arg.value
    return None


class _Writes(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, module: cst.Module) -> None:
        self.module = module
        self.found: list[_Write] = []

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not isinstance(func, cst.Attribute):
            return
        position = self.get_metadata(PositionProvider, node)
        span = (position.start.line, position.end.line)
        if func.attr.value == "saveAsTable":
            target = _target_of(node)
            literal = _string_sql(target, self.module) if target is not None else None
            name = literal.text if literal is not None and not literal.expressions else None
            self.found.append(_Write(node, *span, target=name))
        elif func.attr.value == "sql" and node.args and node.args[0].keyword is None:
            sql = _string_sql(node.args[0].value, self.module)
            if sql is None:
                return
            try:
                statements = [s for s in sqlglot.parse(sql.text, read="spark") if s is not None]
            except SqlglotError:
                return
            if len(statements) != 1 or not isinstance(statements[0], exp.Create):
                return
            create = statements[0]
            table = create.this.this if isinstance(create.this, exp.Schema) else create.this
            if not isinstance(table, exp.Table):
                return
            name = table.sql(dialect="spark")
            literal_name = None if _PLACEHOLDER_RE.search(name) else name
            self.found.append(_Write(node, *span, target=literal_name, statement=create, sql=sql))


def _failing_write(code: str, evidence: Evidence, job: Mapping[str, Any]) -> tuple[cst.Module, _Write] | None:
    """The write that failed: at the traceback's line, else the one write of the table Spark names."""
    table = existing_table(evidence)
    try:
        module = cst.parse_module(code)
        wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    except cst.ParserSyntaxError:
        return None
    visitor = _Writes(module)
    wrapper.visit(visitor)
    writes = visitor.found
    line = evidence.user_line
    frame_file = (evidence.user_frame or "").split('"')[1:2]
    app = spark_file(job)
    if frame_file and app and frame_file[0].rsplit("/", 1)[-1] != app:
        line = None  # the frame is in another file: its line number means nothing here
    if line is not None:
        here = [w for w in writes if w.start <= line <= w.end]
        if len(here) == 1:
            write = here[0]
            if write.target is not None and table is not None and not same_table(table, write.target):
                return None  # the failing write names another table: nothing we understand
            return module, write
    if table is None:
        return None
    named = [w for w in writes if w.target is not None and same_table(table, w.target)]
    return (module, named[0]) if len(named) == 1 else None


# --- the edits ------------------------------------------------------------------------------------


def _overwrite_writer(call: cst.Call) -> cst.Call | None:
    """``saveAsTable`` that fails on an existing table → one that overwrites it (None: cannot tell)."""
    args = list(call.args)
    for i, arg in enumerate(args):
        if (arg.keyword is not None and arg.keyword.value == "mode") or (arg.keyword is None and i == 2):
            return _with_overwrite(call, args, i)
    # A .mode(...) along the writer chain, nearest first.
    node: cst.BaseExpression = call.func.value if isinstance(call.func, cst.Attribute) else call.func
    while isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        if node.func.attr.value == "mode" and node.args:
            mode = node.args[0].value
            if not isinstance(mode, cst.SimpleString) or str(mode.evaluated_value).lower() not in FAILING_MODES:
                return None  # a mode we cannot read, or one that does not fail on an existing table
            # Replace that mode in place: rebuild the chain below saveAsTable.
            replaced = _replace_mode(call.func.value, node)  # type: ignore[union-attr]
            return call.with_changes(func=call.func.with_changes(value=replaced))  # type: ignore[union-attr]
        node = node.func.value
    assert isinstance(call.func, cst.Attribute)
    mode_call = cst.Call(
        func=cst.Attribute(value=call.func.value, attr=cst.Name("mode")),
        args=[cst.Arg(cst.SimpleString('"overwrite"'))],
    )
    return call.with_changes(func=call.func.with_changes(value=mode_call))


def _with_overwrite(call: cst.Call, args: list[cst.Arg], i: int) -> cst.Call | None:
    value = args[i].value
    if not isinstance(value, cst.SimpleString) or str(value.evaluated_value).lower() not in FAILING_MODES:
        return None
    args[i] = args[i].with_changes(value=cst.SimpleString(value.prefix + value.quote + "overwrite" + value.quote))
    return call.with_changes(args=args)


def _replace_mode(node: cst.BaseExpression, mode_call: cst.Call) -> cst.BaseExpression:
    if node is mode_call:
        old = mode_call.args[0].value
        assert isinstance(old, cst.SimpleString)
        new = cst.SimpleString(old.prefix + old.quote + "overwrite" + old.quote)
        return mode_call.with_changes(args=[mode_call.args[0].with_changes(value=new), *mode_call.args[1:]])
    assert isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)
    return node.with_changes(func=node.func.with_changes(value=_replace_mode(node.func.value, mode_call)))


def _overwrite_sql(call: cst.Call, write: _Write) -> cst.BaseExpression | None:
    create, sql = write.statement, write.sql
    assert create is not None and sql is not None
    kind = (create.args.get("kind") or "").upper()
    if create.args.get("exists") or create.args.get("replace"):
        return None  # IF NOT EXISTS / OR REPLACE do not raise this error: not the failing statement
    if kind == "VIEW":
        if any(isinstance(p, exp.TemporaryProperty) for p in create.find_all(exp.TemporaryProperty)):
            return None  # a temporary view fails with another condition
        replaced = create.copy()
        replaced.set("replace", True)
        text = _string_literal(replaced.sql(dialect="spark"), sql.expressions)
        return call.with_changes(args=[call.args[0].with_changes(value=cst.parse_expression(text)), *call.args[1:]])
    query = create.expression
    if kind != "TABLE" or query is None or isinstance(create.this, exp.Schema):
        return None
    writer: cst.BaseExpression = cst.Attribute(
        value=call.with_changes(args=[call.args[0].with_changes(
            value=cst.parse_expression(_string_literal(query.sql(dialect="spark"), sql.expressions))),
            *call.args[1:]]),
        attr=cst.Name("write"),
    )
    for prop in (create.args.get("properties") or exp.Properties(expressions=[])).expressions:
        if isinstance(prop, exp.FileFormatProperty):
            writer = _method(writer, "format", [_quoted(prop.name or prop.this.sql(dialect="spark"))])
        elif isinstance(prop, exp.PartitionedByProperty) and isinstance(prop.this, exp.Schema) and all(
                isinstance(c, exp.Identifier) for c in prop.this.expressions):
            writer = _method(writer, "partitionBy", [_quoted(c.name) for c in prop.this.expressions])
        else:
            return None  # LOCATION, OPTIONS, TBLPROPERTIES, STORED AS...: no writer equivalent we trust
    writer = _method(writer, "mode", ['"overwrite"'])
    table = create.this
    assert isinstance(table, exp.Table)
    target = _string_literal(table.sql(dialect="spark"), sql.expressions)
    if _PLACEHOLDER_RE.fullmatch(table.sql(dialect="spark")):
        target = sql.expressions[table.sql(dialect="spark")]  # the table's name is a Python value
    return _method(writer, "saveAsTable", [target])


def _method(value: cst.BaseExpression, name: str, args: list[str]) -> cst.Call:
    return cst.Call(func=cst.Attribute(value=value, attr=cst.Name(name)),
                    args=[cst.Arg(cst.parse_expression(a)) for a in args])


class _Replace(cst.CSTTransformer):
    def __init__(self, old: cst.Call, new: cst.BaseExpression) -> None:
        self.old, self.new = old, new

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        return self.new if original_node is self.old else updated_node


# --- the rule ---------------------------------------------------------------------------------------


def _diagnose(evidence: Evidence, code: str | None) -> Diagnosis | None:
    table = existing_table(evidence)
    lines = lines_with(evidence, [CONDITION])
    owned = bool(code) and _failing_write(code or "", evidence, {}) is not None
    if owned:
        return finding(
            "code",
            f"The job creates the table `{table or '?'}` and fails because it already exists (an earlier run "
            "wrote it): the write runs in a mode that refuses an existing table instead of replacing it.",
            lines, 0.9)
    return finding(
        "code",
        f"The table or view `{table or '?'}` already exists, and the job tries to create it; the failing write "
        "could not be tied to one the job owns, so whether it may be replaced is for a person to decide.",
        lines, 0.6)


def _fix(evidence: Evidence, code: str | None, job_spark: Mapping[str, Any], job: Mapping[str, Any]) -> Patch | None:
    if not code:
        return None
    found = _failing_write(code, evidence, job)
    if found is None:
        return None
    module, write = found
    new_call = _overwrite_writer(write.call) if write.statement is None else _overwrite_sql(write.call, write)
    if new_call is None:
        return None
    new_code = module.visit(_Replace(write.call, new_call)).code
    if new_code == code:
        return None
    table = write.target or existing_table(evidence) or "the table"
    how = ("SQL CREATE OR REPLACE VIEW" if write.statement is not None and
           (write.statement.args.get("kind") or "").upper() == "VIEW"
           else "saveAsTable in mode overwrite")
    return Patch(
        kind="code",
        explanation=f"The job's own output `{table}` already existed from an earlier run; the failing write now "
        f"replaces it ({how}) instead of failing. The table's previous content is replaced.",
        code=new_code,
        source="rule",
    )


RULES = (
    Rule(
        code="C121", name="table-exists-overwrite",
        summary="The job's own output table already exists on a re-run: the failing write overwrites it",
        explanation=__doc__ or "",
        conditions=(CONDITION,), diagnose=_diagnose, fix=_fix, applicability="changes-results",
    ),
)

"""Grouping and union shapes: a non-aggregated column added to its grouping; a positional union by name.

Both fixes are ``changes-results``: adding a column to the grouping makes the output finer-grained
(one row per group *and* value instead of a failure), and a union by name fills the columns one input
lacks with NULL. Either is what such jobs almost always meant, but the data is not what the original
code literally asked for, so the fix is flagged for review.

The code is edited as a program: LibCST for the Python (formatting and comments kept) and sqlglot's
Spark dialect to read SQL inside string literals (plain, concatenated, multi-line and f-strings, whose
``{...}`` parts stand in as placeholders). The SQL edit inserts the column at a position sqlglot's
tokens give, so the rest of the literal is untouched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import libcst as cst
import sqlglot
from libcst.metadata import MetadataWrapper, PositionProvider
from sqlglot import exp
from sqlglot.errors import SqlglotError

from agents.record import Diagnosis, Evidence, Patch
from agents.remedies.registry import Rule, finding, lines_with, texts

# Spark's messages (MISSING_AGGREGATION, NUM_COLUMNS_MISMATCH, UNRESOLVED_COLUMN_AMONG_FIELD_NAMES)
_NON_AGGREGATED = re.compile(r'The non-aggregating expression "([^"]+)" is based on columns')
_AGGREGATE_PLAN = re.compile(r"Aggregate \[([^\]]*)\], \[([^\]]*)\]")
_ATTRIBUTE_ID = re.compile(r"#\d+L?$")
_SET_OPERATOR = re.compile(r"\b([A-Z]+) can only be performed on inputs with")
_UNION_METHODS = ("union", "unionAll", "unionByName")
_GROUP_METHODS = ("groupBy", "groupby")
_COLUMN_FUNCTIONS = ("col", "column")  # F.col("x") / col("x"): a bare column
_PLACEHOLDER = "__grouping_v{}__"  # an f-string's {expression} while sqlglot reads the SQL
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


# --- reading the evidence -------------------------------------------------------------------------


def _message(evidence: Evidence, pattern: re.Pattern[str]) -> re.Match[str] | None:
    for text in [*texts(evidence), evidence.distilled]:
        match = pattern.search(text or "")
        if match:
            return match
    return None


def _attribute(text: str) -> str:
    """`cat#1` or `cat#0L` → cat (an attribute as Spark's plan prints it)."""
    return _ATTRIBUTE_ID.sub("", text.strip()).strip("`")


def _missing_column(evidence: Evidence) -> str | None:
    value = evidence.message_parameters.get("expression")
    if isinstance(value, str) and value.strip('"'):
        return value.strip('"').strip("`")
    match = _message(evidence, _NON_AGGREGATED)
    return match.group(1).strip("`") if match else None


def _plan_grouping(evidence: Evidence, column: str) -> list[str] | None:
    """The grouping of the Aggregate in Spark's plan whose output has ``column`` outside its grouping."""
    for text in [evidence.distilled, *texts(evidence)]:
        for match in _AGGREGATE_PLAN.finditer(text or ""):
            if "(" in match.group(1):
                return None  # grouping by expressions: their commas make the list unreadable here
            grouping = [_attribute(g) for g in match.group(1).split(",") if g.strip()]
            outputs = [_attribute(o) for o in match.group(2).split(",")]
            if column.lower() in (o.lower() for o in outputs) and column.lower() not in (g.lower() for g in grouping):
                return grouping
    return None


# --- locating the failing statement ---------------------------------------------------------------


def _parse(code: str | None) -> MetadataWrapper | None:
    if not code:
        return None
    try:
        return MetadataWrapper(cst.parse_module(code))
    except cst.ParserSyntaxError:
        return None


class _Collector(cst.CSTVisitor):
    """Calls and string literals with their line spans, and the innermost statement around a line."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, line: int | None) -> None:
        self.line = line
        self.calls: list[tuple[cst.Call, int, int]] = []
        self.strings: list[tuple[cst.BaseExpression, int, int]] = []
        self.statement: tuple[int, int] | None = None
        self._string_depth = 0

    def _span(self, node: cst.CSTNode) -> tuple[int, int]:
        position = self.get_metadata(PositionProvider, node)
        return position.start.line, position.end.line

    def _statement(self, node: cst.CSTNode) -> None:
        start, end = self._span(node)
        if self.line is not None and start <= self.line <= end:
            if self.statement is None or end - start <= self.statement[1] - self.statement[0]:
                self.statement = (start, end)

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self._statement(node)

    def visit_Call(self, node: cst.Call) -> None:
        self.calls.append((node, *self._span(node)))

    def _string(self, node: cst.BaseExpression) -> None:
        if self._string_depth == 0:
            self.strings.append((node, *self._span(node)))
        self._string_depth += 1

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        self._string(node)

    def leave_SimpleString(self, original_node: cst.SimpleString) -> None:
        self._string_depth -= 1

    def visit_FormattedString(self, node: cst.FormattedString) -> None:
        self._string(node)

    def leave_FormattedString(self, original_node: cst.FormattedString) -> None:
        self._string_depth -= 1

    def visit_ConcatenatedString(self, node: cst.ConcatenatedString) -> None:
        self._string(node)

    def leave_ConcatenatedString(self, original_node: cst.ConcatenatedString) -> None:
        self._string_depth -= 1


def _collect(wrapper: MetadataWrapper, line: int | None) -> _Collector:
    collector = _Collector(line)
    wrapper.visit(collector)
    return collector


def _near(items: Sequence[tuple[Any, int, int]], statement: tuple[int, int] | None) -> list[Any]:
    """The items inside the failing statement when it has any; otherwise all of them."""
    if statement is not None:
        inside = [item for item, start, end in items if statement[0] <= start and end <= statement[1]]
        if inside:
            return inside
    return [item for item, _, _ in items]


def _method(call: cst.Call) -> str | None:
    return call.func.attr.value if isinstance(call.func, cst.Attribute) else None


def _replace(wrapper: MetadataWrapper, replacements: Mapping[cst.CSTNode, cst.CSTNode]) -> str:
    class _Swap(cst.CSTTransformer):
        def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> Any:
            return replacements.get(original_node, updated_node)

    return wrapper.module.visit(_Swap()).code


def _user_line(evidence: Evidence, job: Mapping[str, Any]) -> int | None:
    """The traceback's line in the application file (None when the frame is in another file)."""
    frame = (evidence.user_frame or "").split('"')[1:2]
    spark = job.get("spark") if isinstance(job, Mapping) else None
    app = spark.get("file") if isinstance(spark, Mapping) else None
    if frame and isinstance(app, str) and app and frame[0].rsplit("/", 1)[-1] != app.rsplit("/", 1)[-1]:
        return None
    return evidence.user_line


# --- SQL inside string literals ------------------------------------------------------------------


@dataclass
class _Piece:
    node: cst.SimpleString | cst.FormattedStringText | None  # None: an f-string's {expression}
    start: int  # offset of the piece in the SQL text
    text: str


def _pieces(node: cst.BaseExpression) -> list[_Piece] | None:
    """The SQL text of a string literal as pieces that map back to the literal's nodes, or None
    (bytes, escapes or doubled braces: offsets would not map one to one)."""
    found: list[_Piece] = []
    offset = 0

    def add(piece_node: cst.SimpleString | cst.FormattedStringText | None, text: str) -> None:
        nonlocal offset
        found.append(_Piece(piece_node, offset, text))
        offset += len(text)

    def walk(part: cst.BaseExpression) -> bool:
        if isinstance(part, cst.ConcatenatedString):
            return walk(part.left) and walk(part.right)
        if isinstance(part, cst.SimpleString):
            body, prefix = part.raw_value, part.prefix.lower()
            if "b" in prefix or ("r" not in prefix and "\\" in body):
                return False
            add(part, body)
            return True
        if isinstance(part, cst.FormattedString):
            if "b" in part.start.lower():
                return False
            for fpart in part.parts:
                if isinstance(fpart, cst.FormattedStringText):
                    if "{{" in fpart.value or "}}" in fpart.value or ("r" not in part.start.lower() and "\\" in fpart.value):
                        return False
                    add(fpart, fpart.value)
                else:
                    add(None, _PLACEHOLDER.format(len(found)))
            return True
        return False

    return found if walk(node) else None


def _with_insertion(pieces: list[_Piece], at: int, text: str) -> tuple[cst.CSTNode, cst.CSTNode] | None:
    """(old node, new node) that inserts ``text`` at SQL offset ``at`` (inside a literal piece)."""
    for piece in pieces:
        if piece.node is not None and piece.start <= at <= piece.start + len(piece.text):
            local = at - piece.start
            new_text = piece.text[:local] + text + piece.text[local:]
            if isinstance(piece.node, cst.SimpleString):
                raw = piece.node.value
                head = len(piece.node.prefix) + len(piece.node.quote)
                new_node: cst.CSTNode = piece.node.with_changes(value=raw[:head] + new_text + raw[head + len(piece.text):])
            else:
                new_node = piece.node.with_changes(value=new_text)
            return piece.node, new_node
    return None


def _parse_sql(text: str) -> list[exp.Expression]:
    try:
        return [s for s in sqlglot.parse(text, read="spark") if s is not None]
    except (SqlglotError, ValueError):
        return []


def _is_aggregate(node: exp.Expression) -> bool:
    return isinstance(node, exp.AggFunc) or (isinstance(node, exp.Anonymous) and node.name.lower() == "any_value")


def _bare_references(select: exp.Select, column: str) -> list[exp.Column]:
    """References to ``column`` in the SELECT list outside any aggregate function (and not a window)."""
    found: list[exp.Column] = []
    for projection in select.expressions:
        for ref in projection.find_all(exp.Column):
            if ref.name.lower() != column.lower() or ref.find_ancestor(exp.Select) is not select:
                continue
            ancestor = ref.parent
            inside = False
            while ancestor is not None and ancestor is not projection.parent:
                if _is_aggregate(ancestor) or isinstance(ancestor, exp.Window):
                    inside = True
                    break
                ancestor = ancestor.parent
            if not inside:
                found.append(ref)
    return found


def _token_span(column: exp.Column) -> tuple[int, int] | None:
    """[start, end) of a column reference in the SQL text (from sqlglot's token positions)."""
    identifiers = [i for i in (column.args.get("table"), column.this) if isinstance(i, exp.Identifier)]
    metas = [i.meta for i in identifiers if "start" in i.meta and "end" in i.meta]
    if len(metas) != len(identifiers) or not metas:
        return None
    return min(m["start"] for m in metas), max(m["end"] for m in metas) + 1  # quoted: backticks included


@dataclass
class _SqlCandidate:
    string: cst.BaseExpression
    pieces: list[_Piece]
    select: exp.Select
    reference: str  # how the SELECT list names the column (e.g. o.channel)
    grouping: list[str]  # the GROUP BY's column names


def _sql_candidates(strings: list[cst.BaseExpression], column: str) -> list[_SqlCandidate]:
    found = []
    for string in strings:
        pieces = _pieces(string)
        if not pieces:
            continue
        for statement in _parse_sql("".join(p.text for p in pieces)):
            for select in statement.find_all(exp.Select):
                group = select.args.get("group")
                if not isinstance(group, exp.Group) or not group.expressions:
                    continue
                if any(group.args.get(k) for k in ("rollup", "cube", "grouping_sets", "all")):
                    continue
                grouped = {e.name.lower() for e in group.expressions if isinstance(e, exp.Column)}
                if column.lower() in grouped:
                    continue
                references = {r.sql(dialect="spark") for r in _bare_references(select, column)}
                if len(references) == 1:
                    found.append(_SqlCandidate(string, pieces, select, references.pop(),
                                               [e.sql(dialect="spark") for e in group.expressions]))
    return found


def _sql_fix(candidate: _SqlCandidate) -> tuple[cst.CSTNode, cst.CSTNode] | None:
    """Insert ``, <reference>`` after the GROUP BY's last column (or ``<reference>, `` before its first)."""
    expressions = candidate.select.args["group"].expressions
    last, first = expressions[-1], expressions[0]
    if isinstance(last, exp.Column) and (span := _token_span(last)):
        return _with_insertion(candidate.pieces, span[1], f", {candidate.reference}")
    if isinstance(first, exp.Column) and (span := _token_span(first)):
        return _with_insertion(candidate.pieces, span[0], f"{candidate.reference}, ")
    return None


# --- DataFrame API -------------------------------------------------------------------------------


def _string_value(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.SimpleString) and "b" not in node.prefix.lower():
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def _column_name(node: cst.BaseExpression) -> str | None:
    """The column a bare reference names: "x", F.col("x"), col("x"), df.x, df["x"] (aliases looked through)."""
    while isinstance(node, cst.Call) and _method(node) in ("alias", "name") and isinstance(node.func, cst.Attribute):
        node = node.func.value
    if (name := _string_value(node)) is not None:
        return name
    if isinstance(node, cst.Call) and len(node.args) == 1 and not node.args[0].keyword:
        func = node.func
        called = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
        if called in _COLUMN_FUNCTIONS:
            return _string_value(node.args[0].value)
    if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name):
        return node.attr.value
    if isinstance(node, cst.Subscript) and len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index):
        return _string_value(node.slice[0].slice.value)
    return None


@dataclass
class _AggCandidate:
    agg: cst.Call
    group: cst.Call
    argument: cst.Arg  # the agg argument that is the bare column
    grouping: list[str | None]


def _agg_candidates(calls: list[cst.Call], column: str) -> list[_AggCandidate]:
    found = []
    for call in calls:
        if _method(call) != "agg" or not isinstance(call.func, cst.Attribute):
            continue
        group = call.func.value
        if not isinstance(group, cst.Call) or _method(group) not in _GROUP_METHODS:
            continue
        if any(a.star or a.keyword for a in (*call.args, *group.args)):
            continue
        grouping = [_column_name(a.value) for a in group.args]
        if column.lower() in (g.lower() for g in grouping if g):
            continue
        bare = [a for a in call.args if (_column_name(a.value) or "").lower() == column.lower()]
        if len(bare) == 1 and len(call.args) > 1:
            found.append(_AggCandidate(call, group, bare[0], grouping))
    return found


def _agg_fix(candidate: _AggCandidate) -> dict[cst.CSTNode, cst.CSTNode]:
    """Move the bare column from ``agg(...)`` to ``groupBy(...)`` (kept in both, it would be two columns)."""
    moved = candidate.argument.with_changes(comma=cst.MaybeSentinel.DEFAULT)
    group_args = list(candidate.group.args)
    if group_args:
        last = group_args[-1]
        comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        if isinstance(last.comma, cst.Comma):  # a trailing comma: the new argument goes on the next line
            moved = moved.with_changes(comma=last.comma)
            before_args = candidate.group.whitespace_before_args
            if isinstance(before_args, cst.ParenthesizedWhitespace):
                comma = last.comma.with_changes(whitespace_after=before_args)
        group_args[-1] = last.with_changes(comma=comma)
    agg_args = [a for a in candidate.agg.args if a is not candidate.argument]
    if agg_args and candidate.agg.args[-1] is candidate.argument:
        agg_args[-1] = agg_args[-1].with_changes(comma=candidate.argument.comma)
    new_group = candidate.group.with_changes(args=[*group_args, moved])
    assert isinstance(candidate.agg.func, cst.Attribute)  # _agg_candidates checked it
    new_func = candidate.agg.func.with_changes(value=new_group)
    return {candidate.agg: candidate.agg.with_changes(func=new_func, args=agg_args)}


def _grouping_matches(grouping: Sequence[str | None], plan: list[str] | None) -> bool:
    if plan is None:
        return True
    return {g.lower() for g in grouping if g} == {p.lower() for p in plan} and None not in grouping


# --- missing aggregation -------------------------------------------------------------------------


def _missing_aggregation(evidence: Evidence, code: str | None) -> Diagnosis | None:
    column = _missing_column(evidence)
    lines = lines_with(evidence, ["MISSING_AGGREGATION"])
    if not column:
        return finding("code", "A column is selected that is neither grouped nor aggregated (MISSING_AGGREGATION).",
                       lines, 0.6)
    fixable = _plan_missing_aggregation(evidence, code, evidence.user_line) is not None
    return finding(
        "code",
        f"The aggregation selects column `{column}`, which is neither in its grouping nor aggregated "
        f"(MISSING_AGGREGATION); Spark's remedy: add `{column}` to the GROUP BY, aggregate it, or use "
        f"any_value({column}).",
        lines,
        0.9 if fixable else 0.6,
    )


def _plan_missing_aggregation(evidence: Evidence, code: str | None,
                              line: int | None) -> tuple[MetadataWrapper, dict[cst.CSTNode, cst.CSTNode], str] | None:
    """The one grouping to change, as node replacements, and a description; None unless exactly one."""
    column = _missing_column(evidence)
    wrapper = _parse(code)
    if not column or wrapper is None or not _IDENTIFIER.fullmatch(column):
        return None
    collected = _collect(wrapper, line)
    plan = _plan_grouping(evidence, column)
    sql = [c for c in _sql_candidates(_near(collected.strings, collected.statement), column)
           if _grouping_matches([_attribute(g.rsplit(".", 1)[-1]) for g in c.grouping], plan)]
    frames = [c for c in _agg_candidates(_near(collected.calls, collected.statement), column)
              if _grouping_matches(c.grouping, plan)]
    if len(sql) + len(frames) != 1:
        return None
    if sql:
        edit = _sql_fix(sql[0])
        if edit is None:
            return None
        return wrapper, dict([edit]), f"added `{sql[0].reference}` to the GROUP BY ({', '.join(sql[0].grouping)})"
    candidate = frames[0]
    return wrapper, _agg_fix(candidate), f"moved `{column}` from `.agg(...)` into `.groupBy(...)`"


def _fix_missing_aggregation(evidence: Evidence, code: str | None, job_spark: Mapping[str, Any],
                             job: Mapping[str, Any]) -> Patch | None:
    planned = _plan_missing_aggregation(evidence, code, _user_line(evidence, job))
    if planned is None:
        return None
    wrapper, replacements, what = planned
    new_code = _replace(wrapper, replacements)
    if new_code == code:
        return None
    column = _missing_column(evidence)
    return Patch(
        kind="code",
        explanation=f"`{column}` was selected but neither grouped nor aggregated: {what}, so the result has "
        f"one row per combination (finer-grained than the original grouping).",
        code=new_code,
        source="rule",
    )


# --- union of inputs with different columns ------------------------------------------------------


def _union_operator(evidence: Evidence) -> str | None:
    match = _message(evidence, _SET_OPERATOR)
    return match.group(1) if match else None


def _union_calls(evidence: Evidence, code: str | None, line: int | None) -> tuple[MetadataWrapper, list[cst.Call]] | None:
    """The union calls of the failing statement (of the file when the statement has none, except for
    UNRESOLVED_COLUMN_AMONG_FIELD_NAMES, which other calls raise too)."""
    wrapper = _parse(code)
    if wrapper is None:
        return None
    collected = _collect(wrapper, line)
    unions = [(c, s, e) for c, s, e in collected.calls if _method(c) in _UNION_METHODS]
    if (evidence.error_class or "").startswith("UNRESOLVED_COLUMN_AMONG_FIELD_NAMES"):
        statement = collected.statement
        if statement is None:
            return wrapper, []
        return wrapper, [c for c, s, e in unions if _method(c) == "unionByName" and statement[0] <= s and e <= statement[1]]
    return wrapper, _near(unions, collected.statement)


def _is_positional_union_failure(evidence: Evidence) -> bool:
    cls = evidence.error_class or ""
    if cls.startswith("NUM_COLUMNS_MISMATCH"):
        return _union_operator(evidence) in (None, "UNION")
    return cls.startswith("UNRESOLVED_COLUMN_AMONG_FIELD_NAMES")


def _union_target(evidence: Evidence, code: str | None, line: int | None) -> tuple[MetadataWrapper, cst.Call] | None:
    found = _union_calls(evidence, code, line)
    if found is None:
        return None
    wrapper, calls = found
    calls = [c for c in calls if len([a for a in c.args if not a.keyword]) == 1 and not any(a.star for a in c.args)]
    return (wrapper, calls[0]) if len(calls) == 1 else None


def _union_mismatch(evidence: Evidence, code: str | None) -> Diagnosis | None:
    cls = evidence.error_class or ""
    lines = lines_with(evidence, ["NUM_COLUMNS_MISMATCH", "INCOMPATIBLE_COLUMN_TYPE", "UNRESOLVED_COLUMN_AMONG"])
    operator = _union_operator(evidence)
    if cls.startswith(("NUM_COLUMNS_MISMATCH", "INCOMPATIBLE_COLUMN_TYPE")) and operator not in (None, "UNION"):
        return finding("code", f"{operator} combines inputs with different columns ({cls}); only a union can "
                       "match columns by name, so the inputs themselves must be aligned.", lines, 0.6)
    target = _union_target(evidence, code, evidence.user_line) if _is_positional_union_failure(evidence) else None
    if cls.startswith("UNRESOLVED_COLUMN_AMONG_FIELD_NAMES") and target is None:
        return None  # not a union: another rule's (or the model's) failure
    if cls.startswith("INCOMPATIBLE_COLUMN_TYPE"):
        cause = ("A union combines inputs whose columns at the same position have incompatible types "
                 "(INCOMPATIBLE_COLUMN_TYPE): the inputs' columns are in a different order or of different types.")
    else:
        cause = ("A union combines inputs with different columns (" + cls + "): a union matches columns by "
                 "position, so inputs whose columns differ (one gained or lost a column) cannot be combined; "
                 "a union by name with the missing columns as NULL can.")
    return finding("code", cause, lines, 0.9 if target is not None else 0.6)


def _fix_union_mismatch(evidence: Evidence, code: str | None, job_spark: Mapping[str, Any],
                        job: Mapping[str, Any]) -> Patch | None:
    if not _is_positional_union_failure(evidence):
        return None  # type mismatches and SQL unions (Spark SQL has no UNION BY NAME): the model's
    target = _union_target(evidence, code, _user_line(evidence, job))
    if target is None:
        return None
    wrapper, call = target
    assert isinstance(call.func, cst.Attribute)
    positional = [a for a in call.args if not a.keyword]
    flag = cst.Arg(keyword=cst.Name("allowMissingColumns"), value=cst.Name("True"),
                   equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                         whitespace_after=cst.SimpleWhitespace("")))
    args = [positional[0].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))), flag]
    new_call = call.with_changes(func=call.func.with_changes(attr=cst.Name("unionByName")), args=args)
    new_code = _replace(wrapper, {call: new_call})
    if new_code == code:
        return None
    return Patch(
        kind="code",
        explanation=f"Replaced the positional `.{call.func.attr.value}(...)` with `.unionByName(..., "
        "allowMissingColumns=True)`: columns are matched by name and a column one input lacks is NULL there.",
        code=new_code,
        source="rule",
    )


RULES = (
    Rule(
        code="C111", name="missing-aggregation",
        summary="A selected column neither grouped nor aggregated, added to the grouping",
        explanation="MISSING_AGGREGATION: Spark names the non-aggregated column and its plan the grouping. "
        "The column is added to that grouping: in SQL (also f-strings and multi-line strings) to the GROUP BY "
        "of the SELECT that lists it outside an aggregate; in the DataFrame API the bare column is moved from "
        "`.agg(...)` into `.groupBy(...)`. Changes results: the output has one row per combination, finer "
        "than the original grouping. No fix unless exactly one grouping in the failing statement fits, or "
        "when the column is used inside an expression (aggregate it or any_value() may be what was meant).",
        conditions=("MISSING_AGGREGATION",), diagnose=_missing_aggregation, fix=_fix_missing_aggregation,
        applicability="changes-results",
    ),
    Rule(
        code="C112", name="union-by-name",
        summary="A positional union of inputs with different columns, made a union by name",
        explanation="NUM_COLUMNS_MISMATCH of a UNION, or UNRESOLVED_COLUMN_AMONG_FIELD_NAMES raised by "
        "`unionByName`: the failing `.union`/`.unionAll`/`.unionByName` call becomes "
        "`.unionByName(other, allowMissingColumns=True)`. Changes results: a column one input lacks is NULL "
        "in its rows. Diagnosis only for SQL (Spark SQL has no UNION BY NAME), for EXCEPT/INTERSECT, for "
        "INCOMPATIBLE_COLUMN_TYPE, and when the failing statement has several unions.",
        conditions=("NUM_COLUMNS_MISMATCH", "INCOMPATIBLE_COLUMN_TYPE", "UNRESOLVED_COLUMN_AMONG_FIELD_NAMES"),
        diagnose=_union_mismatch, fix=_fix_union_mismatch, applicability="changes-results",
    ),
)

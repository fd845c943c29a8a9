"""Columns: an unresolved column replaced by the column Spark suggests along the job's dataflow
(C101), and an ambiguous join key qualified by the side that pins it down (C102).

Both fixers edit the code as a program: LibCST for the Python (formatting and comments kept), and
sqlglot (dialect "spark") for the SQL inside string literals, f-strings and implicitly
concatenated strings. Only column identifiers change; table names, aliases, Python names and
comments never do.
"""

from __future__ import annotations

import builtins
import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import libcst as cst
import sqlglot
from libcst.metadata import MetadataWrapper, PositionProvider
from sqlglot import exp

from agents.record import Diagnosis, Evidence, Patch
from agents.remedies.literals import LiteralText, Piece, string_text
from agents.remedies.registry import Rule, finding, lines_with, spark_file, unquote

MIN_SUGGESTION_SCORE = 0.3  # below this, no suggestion is close enough to apply without a model
MIN_SUGGESTION_MARGIN = 0.1  # the best suggestion must be this far ahead of the next one
MAX_SQL_CHARS = 100_000  # longer string literals are not parsed as SQL
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")

# DataFrame (and Window) methods whose string arguments are column names.
_COLUMN_METHODS = frozenset({
    "select", "groupBy", "groupby", "rollup", "cube", "orderBy", "sort", "sortWithinPartitions", "drop",
    "dropDuplicates", "drop_duplicates", "dropDuplicatesWithinWatermark", "partitionBy", "repartition",
    "repartitionByRange", "describe", "sampleBy", "approxQuantile", "corr", "cov", "crosstab", "freqItems",
})
_COLUMN_KEYWORDS = frozenset({"subset", "cols", "col", "on"})  # keyword arguments naming columns
_SQL_STATEMENT_METHODS = frozenset({"sql"})  # spark.sql("...")
_SQL_EXPRESSION_METHODS = frozenset({"selectExpr", "filter", "where", "expr"})  # df.filter("a > 1"), F.expr
_CREATING_METHODS = frozenset({"alias", "name", "as_", "toDF"})  # col.alias("x"): a new column x
_NOT_COLUMN_FUNCTIONS = frozenset({"lit", "typedLit", "expr"})  # string arguments that are not column names
_SESSION_MARKERS = ("getOrCreate", "SparkSession", "SparkContext")
_TABLE_METHODS = frozenset({"table", "saveAsTable", "insertInto", "createOrReplaceTempView", "createTempView",
                            "createGlobalTempView", "createOrReplaceGlobalTempView", "registerTempTable"})
_BUILTINS = frozenset(dir(builtins))


def _is_abbreviation(short: str, long: str) -> bool:
    """"qty" abbreviates "quantity": same first letter, letters in order."""
    if not short or not long or short[0] != long[0] or len(short) >= len(long):
        return False
    letters = iter(long)
    return all(ch in letters for ch in short)


def suggestion_score(name: str, suggestion: str) -> float:
    """How close ``suggestion`` is to the unresolved ``name`` (0..1): edit similarity, shared words
    (customer_id / account_id share "id") and abbreviation (qty / quantity)."""
    a, b = name.lower(), suggestion.lower().rsplit(".", 1)[-1]
    ratio = difflib.SequenceMatcher(None, a, b).ratio()
    words_a, words_b = set(re.split(r"[_\W]+", a)) - {""}, set(re.split(r"[_\W]+", b)) - {""}
    shared = len(words_a & words_b) / len(words_a | words_b) if words_a | words_b else 0.0
    abbreviation = 1.0 if _is_abbreviation(a, b) or _is_abbreviation(b, a) else 0.0
    return round(0.6 * ratio + 0.3 * shared + 0.1 * abbreviation, 4)


def best_suggestion(name: str, suggestions: list[str]) -> tuple[str, float] | None:
    """The closest suggestion (a bare column name) and its score, or None when no suggestion is
    close enough or clearly ahead of the next. Spark's order breaks ties."""
    if not suggestions:
        return None
    scored = sorted(((suggestion_score(name, s), -i, s) for i, s in enumerate(suggestions)), reverse=True)
    score, _, best = scored[0]
    if score < MIN_SUGGESTION_SCORE:
        return None
    if len(scored) > 1 and score - scored[1][0] < MIN_SUGGESTION_MARGIN:
        return None
    return best.rsplit(".", 1)[-1], score


@dataclass
class _SqlFindings:
    spans: list[tuple[int, int]]  # offsets in the text of the column identifiers named like the column
    creates: bool  # the SQL makes a column of that name (`... AS name`)
    tables: set[str]


def _parse_sql(text: str) -> exp.Expression | None:
    if len(text) > MAX_SQL_CHARS or not text.strip():
        return None
    try:
        return sqlglot.parse_one(text, read="spark")
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        return None


def _identifier_span(identifier: exp.Expression) -> tuple[int, int] | None:
    meta = identifier.meta
    if "start" not in meta or "end" not in meta:
        return None
    return int(meta["start"]), int(meta["end"]) + 1


def _sql_columns(tree: exp.Expression, name: str) -> _SqlFindings:
    wanted = name.lower()
    spans: list[tuple[int, int]] = []
    for column in tree.find_all(exp.Column):
        identifier = column.args.get("this")
        if isinstance(identifier, exp.Identifier) and identifier.name.lower() == wanted:
            span = _identifier_span(identifier)
            if span is not None:
                spans.append(span)
    creates = any(a.alias.lower() == wanted for a in tree.find_all(exp.Alias)) or any(
        c.name.lower() == wanted for t in tree.find_all(exp.TableAlias) for c in t.columns
    )
    tables = {t.name.lower() for t in tree.find_all(exp.Table) if t.name}
    return _SqlFindings(spans, creates, tables)


# --- the code model: statements, their names and tables, and the column references -------------


@dataclass
class _Statement:
    node: cst.SimpleStatementLine
    first: int
    last: int
    keys: set[str] = field(default_factory=set)  # names, tables and functions that link statements
    references: list[tuple[Piece | cst.Name, list[tuple[int, int]]]] = field(default_factory=list)
    creates: bool = False


def _callee(call: cst.Call) -> tuple[cst.BaseExpression | None, str | None]:
    """(receiver, method) of ``recv.method(...)``, or (None, name) of ``name(...)``."""
    if isinstance(call.func, cst.Attribute):
        return call.func.value, call.func.attr.value
    if isinstance(call.func, cst.Name):
        return None, call.func.value
    return None, None


def _positional(call: cst.Call) -> list[cst.BaseExpression]:
    return [a.value for a in call.args if a.keyword is None and not a.star]


def _keyword(call: cst.Call, name: str) -> cst.BaseExpression | None:
    return next((a.value for a in call.args if a.keyword is not None and a.keyword.value == name), None)


def _strings_in(node: cst.BaseExpression) -> Iterator[cst.BaseExpression]:
    """A string argument, or the strings of a list/tuple argument."""
    if isinstance(node, (cst.List, cst.Tuple)):
        for element in node.elements:
            yield from _strings_in(element.value)
    elif isinstance(node, (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString)):
        yield node


class _Imports(cst.CSTVisitor):
    """Names bound by imports, and the names `pyspark.sql.functions` is known by."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.functions_modules: set[str] = set()  # F in `from pyspark.sql import functions as F`
        self.functions: set[str] = set()  # col in `from pyspark.sql.functions import col`

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            dotted = cst.helpers.get_full_name_for_node(alias.name) or ""
            bound = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) else dotted.split(".")[0]
            self.names.add(bound)
            if dotted == "pyspark.sql.functions" and alias.asname:
                self.functions_modules.add(bound)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        module = cst.helpers.get_full_name_for_node(node.module) if node.module else ""
        if isinstance(node.names, cst.ImportStar):
            return
        for alias in node.names:
            name = cst.helpers.get_full_name_for_node(alias.name) or ""
            bound = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) else name
            self.names.add(bound)
            if module == "pyspark.sql" and name == "functions":
                self.functions_modules.add(bound)
            elif module == "pyspark.sql.functions":
                self.functions.add(bound)


class _Model(cst.CSTVisitor):
    """Every simple statement of the module with what links it to others (the names it binds and
    uses, the tables and views it reads or writes, its function) and its references to ``column``."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, column: str, imports: _Imports, sessions: set[str], bound: set[str]) -> None:
        self.column = column
        self.imports = imports
        self.excluded = imports.names | sessions | _BUILTINS | {"self"}
        self.bound = bound  # names the module binds: a name it never binds (a notebook's `spark`) links nothing
        self.statements: list[_Statement] = []
        self.functions: list[tuple[str, set[str]]] = []  # enclosing defs: (name, local names)
        self.current: _Statement | None = None
        self.not_names: set[int] = set()  # attribute and keyword names: not variables
        self.attributes: list[cst.Attribute] = []  # the `df.column` references
        self.methods: set[int] = set()  # `df.name(...)`: a method, not a column

    # scopes
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        local = {p.name.value for p in (*node.params.params, *node.params.kwonly_params, *node.params.posonly_params)}
        for target in _assigned_names(node.body):
            local.add(target)
        self.functions.append((node.name.value, local))

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.functions.pop()

    def _key(self, name: str) -> str:
        for function, local in reversed(self.functions):
            if name in local:
                return f"{function}.{name}"
        return name

    # statements
    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        position = self.get_metadata(PositionProvider, node)
        self.current = _Statement(node, position.start.line, position.end.line)
        if self.functions:
            self.current.keys.add(f"def:{self.functions[-1][0]}")

    def leave_SimpleStatementLine(self, original_node: cst.SimpleStatementLine) -> None:
        if self.current is not None:
            self.statements.append(self.current)
        self.current = None

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:
            self.not_names.add(id(node.keyword))

    def visit_Name(self, node: cst.Name) -> None:
        if self.current is not None and node.value not in self.excluded and id(node) not in self.not_names \
                and node.value in self.bound:
            self.current.keys.add(self._key(node.value))
            self.current.keys.add(f"def:{node.value}")  # a call of a function of the module

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self.not_names.add(id(node.attr))
        if self.current is None or node.attr.value.lower() != self.column.lower() or id(node) in self.methods:
            return
        if isinstance(node.value, cst.Name) and node.value.value in self.imports.names:
            return  # F.name, a module's attribute
        self.current.references.append((node.attr, [(0, len(node.attr.value))]))
        self.attributes.append(node)

    def visit_Subscript(self, node: cst.Subscript) -> None:
        if self.current is None or len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
            return
        self._string_reference(node.slice[0].slice.value)

    def visit_Call(self, node: cst.Call) -> None:
        self.methods.add(id(node.func))
        if self.current is None:
            return
        receiver, method = _callee(node)
        if method is None:
            return
        args = _positional(node)
        is_function = (receiver is None and method in self.imports.functions) or (
            isinstance(receiver, cst.Name) and receiver.value in self.imports.functions_modules)
        if method in _TABLE_METHODS and args:
            text = string_text(args[0])
            if text is not None and not text.placeholders:
                self.current.keys.add(f"table:{text.text.strip().lower()}")
        if method in _SQL_STATEMENT_METHODS and args and not is_function:
            self._sql(args[0])
        elif method in _SQL_EXPRESSION_METHODS and (is_function or receiver is not None):
            for arg in args if method == "selectExpr" else args[:1]:
                self._sql(arg)
        elif is_function and method not in _NOT_COLUMN_FUNCTIONS:
            for arg in args:
                self._string_reference(arg)
        elif method in _COLUMN_METHODS:
            for arg in args:
                for string in _strings_in(arg):
                    self._string_reference(string)
        elif method == "join":
            on = _keyword(node, "on") or (args[1] if len(args) > 1 else None)
            for string in _strings_in(on) if on is not None else ():
                self._string_reference(string)
        elif method == "withColumnRenamed" and len(args) == 2:
            self._string_reference(args[0])
            self.current.creates |= self._names_column(args[1])
        elif method == "withColumn" and args:
            self.current.creates |= self._names_column(args[0])
        elif method == "withColumns" and args and isinstance(args[0], cst.Dict):
            self.current.creates |= any(
                isinstance(e, cst.DictElement) and self._names_column(e.key) for e in args[0].elements)
        elif method in _CREATING_METHODS:
            self.current.creates |= any(self._names_column(s) for a in args for s in _strings_in(a))
        for keyword in _COLUMN_KEYWORDS - {"on"} if method != "join" else ():
            value = _keyword(node, keyword)
            for string in _strings_in(value) if value is not None else ():
                self._string_reference(string)

    def _names_column(self, node: cst.BaseExpression) -> bool:
        text = string_text(node)
        return text is not None and text.text.lower() == self.column.lower()

    def _string_reference(self, node: cst.BaseExpression) -> None:
        if isinstance(node, cst.SimpleString) and self._names_column(node):
            assert self.current is not None
            start = len(node.prefix) + len(node.quote)
            self.current.references.append((node, [(start, start + len(self.column))]))

    def _sql(self, node: cst.BaseExpression) -> None:
        assert self.current is not None
        text = string_text(node)
        tree = _parse_sql(text.text) if text is not None else None
        if text is None or tree is None:
            return
        found = _sql_columns(tree, self.column)
        self.current.creates |= found.creates
        self.current.keys.update(f"table:{t}" for t in found.tables if t not in text.placeholders)
        by_piece: dict[int, tuple[Piece, list[tuple[int, int]]]] = {}
        for start, end in found.spans:
            for piece, a, b, offset in text.pieces:
                if a <= start and end <= b:
                    entry = by_piece.setdefault(id(piece), (piece, []))
                    entry[1].append((start - a + offset, end - a + offset))
                    break
        self.current.references.extend(by_piece.values())


def _assigned_names(body: cst.CSTNode) -> set[str]:
    names: set[str] = set()

    class Targets(cst.CSTVisitor):
        def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
            if isinstance(node.target, cst.Name):
                names.add(node.target.value)

        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return node is body  # nested functions have their own locals

    body.visit(Targets())
    return names


def _bound_names(module: cst.Module) -> set[str]:
    """Every name the module binds: assignment, loop and `with` targets, parameters, functions."""
    names: set[str] = set()

    class Binders(cst.CSTVisitor):
        def _add(self, target: cst.BaseExpression | None) -> None:
            if isinstance(target, cst.Name):
                names.add(target.value)
            elif isinstance(target, (cst.Tuple, cst.List)):
                for element in target.elements:
                    self._add(element.value)

        def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
            self._add(node.target)

        def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
            self._add(node.target)

        def visit_For(self, node: cst.For) -> None:
            self._add(node.target)

        def visit_CompFor(self, node: cst.CompFor) -> None:
            self._add(node.target)

        def visit_AsName(self, node: cst.AsName) -> None:
            self._add(node.name)  # type: ignore[arg-type]

        def visit_Param(self, node: cst.Param) -> None:
            names.add(node.name.value)

        def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
            names.add(node.name.value)

    module.visit(Binders())
    return names


def _session_names(module: cst.Module) -> set[str]:
    """Names bound to the Spark session (or context): every statement uses them, they link nothing."""
    names: set[str] = set()
    for node in module.body:
        if isinstance(node, cst.SimpleStatementLine):
            for small in node.body:
                if isinstance(small, cst.Assign):
                    source = module.code_for_node(small.value)
                    if any(marker in source for marker in _SESSION_MARKERS):
                        names.update(t.target.value for t in small.targets if isinstance(t.target, cst.Name))
    return names


def _dataflow(statements: list[_Statement], seed: _Statement) -> list[_Statement]:
    """The statements connected to ``seed`` through shared names, tables or functions."""
    component, keys, changed = {id(seed)}, set(seed.keys), True
    for _ in range(len(statements)):  # each round adds at least one statement, or stops
        if not changed:
            break
        changed = False
        for statement in statements:
            if id(statement) not in component and statement.keys & keys:
                component.add(id(statement))
                keys |= statement.keys
                changed = True
    return [s for s in statements if id(s) in component]


class _Replace(cst.CSTTransformer):
    def __init__(self, edits: Mapping[int, tuple[cst.CSTNode, cst.CSTNode]]) -> None:
        self.edits = edits

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> Any:
        edit = self.edits.get(id(original_node))
        return edit[1] if edit is not None and edit[0] is original_node else updated_node


def _edited(node: Piece | cst.Name, spans: Sequence[tuple[int, int]], new: str) -> cst.CSTNode:
    if isinstance(node, cst.Name):
        return node.with_changes(value=new)
    value = node.value
    for start, end in sorted(set(spans), reverse=True):
        old = value[start:end]
        replacement = f"`{new}`" if old.startswith("`") else new
        value = value[:start] + replacement + value[end:]
    return node.with_changes(value=value)


def replace_column(code: str, old: str, new: str, *, near_line: int | None = None,
                   subscripts: bool = False) -> tuple[str, int] | None:
    """``code`` with the column references to ``old`` replaced by ``new``, and how many were replaced.

    With ``near_line``, the references along the dataflow of the statement on that line: the
    statements linked to it through the DataFrames they bind and use, the tables and views they
    read and write, and the functions they call. Without it (or when no statement is on that
    line), every column reference in the file. References are column names in DataFrame calls
    (`select("x")`, `F.col("x")`, `df.x`, `df["x"]`, join keys) and column identifiers in SQL text
    (`spark.sql`, `selectExpr`, `expr`, `filter`/`where`). None when there is no reference, when
    the job itself makes a column named ``old`` along that dataflow (`.alias("x")`,
    `withColumn("x", ...)`, `AS x`: references after it are legitimate), or when the code does
    not parse. With ``subscripts``, an attribute reference ``df.old`` becomes ``df["new"]`` (the
    guard admits no attribute the original code does not use).
    """
    if not _IDENTIFIER.fullmatch(new) or not old:
        return None
    try:
        module = cst.parse_module(code)
    except cst.ParserSyntaxError:
        return None
    wrapper = MetadataWrapper(module)
    imports = _Imports()
    wrapper.module.visit(imports)
    model = _Model(old, imports, _session_names(wrapper.module), _bound_names(wrapper.module))
    wrapper.visit(model)
    statements = model.statements
    if near_line is not None:
        around = [s for s in statements if s.first <= near_line <= s.last]
        if around:
            statements = _dataflow(statements, min(around, key=lambda s: s.last - s.first))
    if any(s.creates for s in statements):
        return None
    edits: dict[int, tuple[cst.CSTNode, list[tuple[int, int]]]] = {}
    for statement in statements:
        for node, spans in statement.references:
            edits.setdefault(id(node), (node, []))[1].extend(spans)
    if not edits:
        return None
    count = sum(len(set(spans)) for _, spans in edits.values())
    replaced = {key: (node, _edited(node, spans, new)) for key, (node, spans) in edits.items()}  # type: ignore[arg-type]
    if subscripts:
        for attribute in model.attributes:
            if id(attribute.attr) in replaced:
                del replaced[id(attribute.attr)]
                replaced[id(attribute)] = (attribute, cst.Subscript(
                    value=attribute.value, slice=[cst.SubscriptElement(cst.Index(cst.SimpleString(f'"{new}"')))]))
    result = wrapper.module.visit(_Replace(replaced)).code
    try:
        cst.parse_module(result)
    except cst.ParserSyntaxError:
        return None
    return result, count


# --- C101 unresolved column ------------------------------------------------------------------------


def _unresolved_name(evidence: Evidence) -> str:
    return unquote(str(evidence.message_parameters.get("objectName", ""))).rsplit(".", 1)[-1]


def _unresolved_column(evidence: Evidence, code: str | None) -> Diagnosis | None:
    cls = evidence.error_class or ""
    if not cls.startswith("UNRESOLVED_COLUMN"):
        return None
    name = _unresolved_name(evidence)
    lines = lines_with(evidence, ["UNRESOLVED_COLUMN"])
    best = best_suggestion(name, evidence.suggestions) if name else None
    if best is None:
        return finding(
            "code",
            f"The code references a column `{name or '?'}` that does not exist in the data"
            + (f"; none of Spark's suggestions ({', '.join(evidence.suggestions)}) is close." if evidence.suggestions else "."),
            lines,
            0.6,
        )
    target, score = best
    referenced = bool(code) and re.search(r"(?<![\w$])" + re.escape(name) + r"(?![\w$])", code or "") is not None
    confidence = 0.9 if score >= 0.4 or len(evidence.suggestions) == 1 else 0.75
    if not referenced:
        confidence = 0.5
    return finding(
        "code",
        f"The code references column `{name}`, which does not exist (schema drift or a typo); "
        f"Spark suggests `{target}`, which is the closest existing column.",
        lines,
        confidence,
    )


def _line_in_app(evidence: Evidence, job: Mapping[str, Any]) -> int | None:
    """The failing line, when the traceback's frame is in the application file."""
    frame_file = (evidence.user_frame or "").split('"')[1:2]
    app = spark_file(job)
    if frame_file and app and frame_file[0].rsplit("/", 1)[-1] != app:
        return None  # the frame is in another file: its line number means nothing here
    return evidence.user_line


def _fix_unresolved_column(evidence: Evidence, code: str | None, job_spark: Mapping[str, Any],
                           job: Mapping[str, Any]) -> Patch | None:
    if not code:
        return None
    name = _unresolved_name(evidence)
    best = best_suggestion(name, evidence.suggestions) if name else None
    if best is None or not _IDENTIFIER.fullmatch(best[0]):
        return None
    target = best[0]
    replaced = replace_column(code, name, target, near_line=_line_in_app(evidence, job), subscripts=True)
    if replaced is None:
        return None
    new_code, count = replaced
    return Patch(
        kind="code",
        explanation=f"Replaced the unresolved column `{name}` with `{target}`, the existing column Spark "
        f"suggested ({count} reference{'s' if count != 1 else ''} along the job's dataflow).",
        code=new_code,
        source="rule",
    )



# --- C102 ambiguous column -------------------------------------------------------------------------
#
# The rule for which side: Spark reports `x` ambiguous when both sides of a join carry a column x.
# When x is an equi-join key (`a.x = b.x` in the join's condition), both sides hold the same value
# on every row an inner join returns, so either side gives the job's intended output; we qualify
# with the side whose rows the join keeps: the left for an inner or left join, the right for a
# right join. A full outer join (either side may be NULL), a column that is not the join key (the
# sides hold different data), more than two candidates, or a condition we cannot read: no fix.

_LEFT_JOINS = frozenset({"", "inner", "left", "leftouter", "left_outer"})
_RIGHT_JOINS = frozenset({"right", "rightouter", "right_outer"})


def _ambiguous(evidence: Evidence) -> tuple[str, list[str]] | None:
    """The ambiguous column and the qualifiers of its candidates (empty strings when Spark prints
    bare names, as it does for DataFrame joins)."""
    parameters = evidence.message_parameters
    name = unquote(str(parameters.get("name", ""))).rsplit(".", 1)[-1]
    references = parameters.get("referenceNames", "")
    if isinstance(references, list):
        references = ", ".join(str(r) for r in references)
    candidates = re.findall(r"(?:`[^`]*`\.)*`[^`]*`", str(references))
    qualifiers = [unquote(c).rpartition(".")[0].rsplit(".", 1)[-1] for c in candidates]
    return (name, qualifiers) if name else None


def _ambiguous_column(evidence: Evidence, code: str | None) -> Diagnosis | None:
    found = _ambiguous(evidence)
    if found is None:
        return None
    name, qualifiers = found
    sides = f" ({', '.join(f'{q}.{name}' for q in qualifiers)})" if all(qualifiers) and qualifiers else ""
    return finding(
        "code",
        f"The column `{name}` is ambiguous: both sides of a join carry it{sides}; the reference must "
        "name the side it means.",
        lines_with(evidence, ["AMBIGUOUS_REFERENCE"]),
        0.85,
    )


def _side_for(how: str) -> str | None:
    how = how.lower().replace(" ", "")
    return "left" if how in _LEFT_JOINS else "right" if how in _RIGHT_JOINS else None


def _sql_qualify(tree: exp.Expression, name: str, qualifiers: list[str]) -> list[tuple[int, str]]:
    """(offset, text to insert) that qualify the bare references to ``name`` in each SELECT whose join
    has ``name`` as an equi-join key, with the side the rule picks."""
    wanted = name.lower()
    inserts: list[tuple[int, str]] = []
    for select in tree.find_all(exp.Select):
        source = select.args.get("from_") or select.args.get("from")
        joins = select.args.get("joins") or []
        if source is None or not joins:
            continue
        earlier = [source.this.alias_or_name.lower()]
        chosen: str | None = None
        for join in joins:
            own = join.this.alias_or_name.lower()
            on = join.args.get("on")
            keys = [
                (eq.left.table.lower(), eq.right.table.lower()) for eq in (on.find_all(exp.EQ) if on else [])
                if isinstance(eq.left, exp.Column) and isinstance(eq.right, exp.Column)
                and eq.left.name.lower() == wanted and eq.right.name.lower() == wanted
            ]
            for a, b in keys:
                if own in (a, b) and ({a, b} - {own}) <= set(earlier) and a != b:
                    other = a if b == own else b
                    side = _side_for(f"{join.side}{join.kind}".lower() if join.side else join.kind.lower())
                    if side is not None and chosen is None:
                        chosen = other if side == "left" else own
            earlier.append(own)
        known = {q.lower() for q in qualifiers if q}
        if chosen is None or (known and chosen not in known):
            continue
        for column in select.find_all(exp.Column):
            identifier = column.args.get("this")
            if (column.table or column.find_ancestor(exp.Select) is not select
                    or not isinstance(identifier, exp.Identifier) or identifier.name.lower() != wanted):
                continue
            span = _identifier_span(identifier)
            alias = next(t.alias_or_name for t in select.find_all(exp.Table) if t.alias_or_name.lower() == chosen) \
                if any(t.alias_or_name.lower() == chosen for t in select.find_all(exp.Table)) else chosen
            if span is not None:
                inserts.append((span[0], f"{alias}."))
    return inserts


def _frame_side(node: cst.BaseExpression, name: str) -> tuple[str, bool] | None:
    """(frame, attribute style) of ``frame.name`` or ``frame["name"]``."""
    if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.attr.value == name:
        return node.value.value, True
    if isinstance(node, cst.Subscript) and isinstance(node.value, cst.Name) and len(node.slice) == 1:
        index = node.slice[0].slice
        text = string_text(index.value) if isinstance(index, cst.Index) else None
        if text is not None and text.text == name:
            return node.value.value, False
    return None


def _join_side(call: cst.Call, name: str) -> tuple[str, bool] | None:
    """The frame (and its reference style) to qualify ``name`` with after ``left.join(right, on, how)``
    when ``on`` is ``left.name == right.name``; None when the rule does not pin one side down."""
    receiver, method = _callee(call)
    args = _positional(call)
    if method != "join" or not isinstance(receiver, cst.Name) or not args or not isinstance(args[0], cst.Name):
        return None
    left, right = receiver.value, args[0].value
    on = _keyword(call, "on") or (args[1] if len(args) > 1 else None)
    how_node = _keyword(call, "how") or (args[2] if len(args) > 2 else None)
    how_text = string_text(how_node) if how_node is not None else None
    if how_node is not None and (how_text is None or how_text.placeholders):
        return None
    side = _side_for(how_text.text if how_text is not None else "inner")
    if side is None or not isinstance(on, cst.Comparison) or len(on.comparisons) != 1:
        return None
    if not isinstance(on.comparisons[0].operator, cst.Equal):
        return None
    a, b = _frame_side(on.left, name), _frame_side(on.comparisons[0].comparator, name)
    if a is None or b is None or {a[0], b[0]} != {left, right} or left == right:
        return None
    chosen = left if side == "left" else right
    return chosen, (a if a[0] == chosen else b)[1]


def _chain_root(node: cst.BaseExpression) -> cst.BaseExpression:
    while True:
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
            node = node.func.value
        elif isinstance(node, cst.Attribute):
            node = node.value
        else:
            return node


def _chained_calls(node: cst.BaseExpression) -> Iterator[cst.Call]:
    """The calls of a method chain, outermost first."""
    while isinstance(node, (cst.Call, cst.Attribute)):
        if isinstance(node, cst.Call):
            yield node
            node = node.func.value if isinstance(node.func, cst.Attribute) else node.func
        else:
            node = node.value


class _DataFrameQualifier(cst.CSTVisitor):
    """The bare references to ``name`` in the calls chained after a join whose key it is."""

    def __init__(self, name: str, imports: _Imports, joins: Mapping[str, tuple[str, bool]]) -> None:
        self.name = name
        self.imports = imports
        self.joins = joins  # frame variable -> side, for frames assigned from such a join
        self.found: list[tuple[cst.BaseExpression, str, bool]] = []  # (node, frame, attribute style)
        self.seen: set[int] = set()

    def visit_Call(self, node: cst.Call) -> None:
        if id(node) in self.seen:
            return
        calls = list(_chained_calls(node))
        self.seen.update(id(c) for c in calls)
        root = _chain_root(node)
        side = self.joins.get(root.value) if isinstance(root, cst.Name) else None
        for call in reversed(calls):  # innermost first: the join, then what follows it
            joined = _join_side(call, self.name)
            if joined is not None:
                side = joined
                continue
            _, method = _callee(call)
            if side is None or method not in _COLUMN_METHODS | {"agg", "where", "filter"}:
                continue
            for arg in call.args:
                self._collect(arg.value, side, direct=method in _COLUMN_METHODS)

    def _collect(self, node: cst.BaseExpression, side: tuple[str, bool], *, direct: bool) -> None:
        text = string_text(node) if isinstance(node, cst.SimpleString) else None
        if direct and text is not None and text.text == self.name:
            self.found.append((node, *side))
            return
        if isinstance(node, cst.Call):
            receiver, method = _callee(node)
            is_function = (receiver is None and method in self.imports.functions) or (
                isinstance(receiver, cst.Name) and receiver.value in self.imports.functions_modules)
            if is_function and method in ("col", "column") and len(node.args) == 1:
                inner = string_text(node.args[0].value)
                if inner is not None and inner.text == self.name:
                    self.found.append((node, *side))
                    return
            if is_function and method not in _NOT_COLUMN_FUNCTIONS:
                for arg in node.args:
                    self._collect(arg.value, side, direct=True)
                return
        for child in node.children:
            if isinstance(child, cst.BaseExpression) and not isinstance(child, cst.SimpleString):
                self._collect(child, side, direct=False)
            elif isinstance(child, cst.Arg):
                self._collect(child.value, side, direct=False)


def _qualified(frame: str, name: str, attribute: bool) -> cst.BaseExpression:
    if attribute and _IDENTIFIER.fullmatch(name):
        return cst.Attribute(value=cst.Name(frame), attr=cst.Name(name))
    return cst.Subscript(value=cst.Name(frame),
                         slice=[cst.SubscriptElement(slice=cst.Index(value=cst.SimpleString(f'"{name}"')))])


def _sql_inserts_by_piece(text: LiteralText, inserts: list[tuple[int, str]]) -> dict[int, tuple[Piece, list[tuple[int, str]]]]:
    by_piece: dict[int, tuple[Piece, list[tuple[int, str]]]] = {}
    for offset, insert in inserts:
        for piece, a, b, start in text.pieces:
            if a <= offset < b:
                by_piece.setdefault(id(piece), (piece, []))[1].append((offset - a + start, insert))
                break
    return by_piece


def qualify_ambiguous(code: str, name: str, qualifiers: list[str], *, near_line: int | None) -> tuple[str, int] | None:
    """``code`` with the bare references to the ambiguous join key ``name`` qualified by the side the
    rule picks (see above), in the statement on ``near_line``, and how many; None when the rule does
    not pin one side down."""
    if near_line is None or len(qualifiers) != 2:
        return None
    try:
        wrapper = MetadataWrapper(cst.parse_module(code))
    except cst.ParserSyntaxError:
        return None
    imports = _Imports()
    wrapper.module.visit(imports)
    positions = wrapper.resolve(PositionProvider)
    lines = [n for n in positions if isinstance(n, cst.SimpleStatementLine)
             and positions[n].start.line <= near_line <= positions[n].end.line]
    if not lines:
        return None
    statement = min(lines, key=lambda n: positions[n].end.line - positions[n].start.line)
    edits: dict[int, tuple[cst.CSTNode, cst.CSTNode]] = {}
    count = 0
    # SQL: spark.sql("... JOIN ... ON a.x = b.x") selecting a bare x.
    for call in _calls(statement):
        _, method = _callee(call)
        args = _positional(call)
        if method not in _SQL_STATEMENT_METHODS or not args:
            continue
        text = string_text(args[0])
        tree = _parse_sql(text.text) if text is not None else None
        if text is None or tree is None:
            continue
        inserts = _sql_qualify(tree, name, qualifiers)
        for piece, changes in _sql_inserts_by_piece(text, inserts).values():
            value = piece.value
            for offset, insert in sorted(changes, reverse=True):
                value = value[:offset] + insert + value[offset:]
            edits[id(piece)] = (piece, piece.with_changes(value=value))
            count += len(changes)
    # DataFrame API: left.join(right, left.x == right.x, how) then select("x"), F.col("x"), ...
    if not edits:
        joins = _frame_joins(wrapper.module, name, positions, near_line)
        visitor = _DataFrameQualifier(name, imports, joins)
        statement.visit(visitor)
        for node, frame, attribute in visitor.found:
            edits[id(node)] = (node, _qualified(frame, name, attribute))
        count = len(visitor.found)
    if not edits:
        return None
    return wrapper.module.visit(_Replace(edits)).code, count


def _calls(node: cst.CSTNode) -> list[cst.Call]:
    found: list[cst.Call] = []

    class Calls(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            found.append(call)

    node.visit(Calls())
    return found


def _frame_joins(module: cst.Module, name: str, positions: Mapping[cst.CSTNode, Any],
                 before: int) -> dict[str, tuple[str, bool]]:
    """Frames assigned (before line ``before``) from a join on ``name``: variable -> side; the last
    assignment of each variable counts."""
    joins: dict[str, tuple[str, bool]] = {}
    for node in positions:
        if not isinstance(node, cst.Assign) or positions[node].start.line >= before or len(node.targets) != 1:
            continue
        target = node.targets[0].target
        if not isinstance(target, cst.Name):
            continue
        side = next((s for c in _chained_calls(node.value) if (s := _join_side(c, name)) is not None), None)
        if side is not None:
            joins[target.value] = side
        else:
            joins.pop(target.value, None)
    return joins


def _fix_ambiguous_column(evidence: Evidence, code: str | None, job_spark: Mapping[str, Any],
                          job: Mapping[str, Any]) -> Patch | None:
    found = _ambiguous(evidence)
    if not code or found is None:
        return None
    name, qualifiers = found
    qualified = qualify_ambiguous(code, name, qualifiers, near_line=_line_in_app(evidence, job))
    if qualified is None:
        return None
    new_code, count = qualified
    return Patch(
        kind="code",
        explanation=f"Qualified the ambiguous join key `{name}` by one side of the join ({count} "
        f"reference{'s' if count != 1 else ''}): the join matches the key on equality, so both sides "
        "hold the same value on every row the join keeps.",
        code=new_code,
        source="rule",
    )


RULES = (
    Rule(
        code="C101", name="unresolved-column",
        summary="A column that does not exist, replaced by the existing column Spark suggests",
        explanation="UNRESOLVED_COLUMN with Spark's suggestions. The unresolved name is replaced by the "
        "closest suggestion wherever the job's dataflow references it as a column, in DataFrame calls and in "
        "SQL text, never in other identifiers. No fix when no suggestion is clearly closest.",
        conditions=("UNRESOLVED_COLUMN.",), diagnose=_unresolved_column, fix=_fix_unresolved_column,
        applicability="safe",
    ),
    Rule(
        code="C102", name="ambiguous-column",
        summary="A join key both sides carry, qualified by the side the join keeps",
        explanation="AMBIGUOUS_REFERENCE after a join. When the ambiguous column is an equi-join key (`a.x = b.x` "
        "in SQL, `left.x == right.x` in a DataFrame join), both sides hold the same value on every row an "
        "inner join returns: the bare references in that query (SQL) or in the calls after the join "
        "(DataFrame) are qualified by the left side (the right side for a right join). No fix for a full "
        "outer join, a column that is not the join key, or more than two candidates: those need a decision.",
        conditions=("AMBIGUOUS_REFERENCE",), diagnose=_ambiguous_column, fix=_fix_ambiguous_column,
        applicability="safe",
    ),
)

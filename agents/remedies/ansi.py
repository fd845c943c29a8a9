"""ANSI data errors: the `try_` form Spark names in its message (A101), and a timestamp pattern that
does not match the data (A102).

Spark's ANSI errors say how to tolerate the bad value: "Use `try_cast` to tolerate malformed input",
"Use `try_divide` to tolerate divisor being 0", "Use 'try_add' to tolerate overflow", ... (every
condition of error-conditions.json whose message names a `try_` function: CAST_INVALID_INPUT,
CAST_OVERFLOW, DIVIDE_BY_ZERO, REMAINDER_BY_ZERO, ARITHMETIC_OVERFLOW, INVALID_ARRAY_INDEX_IN_ELEMENT_AT,
INVALID_URL, CONVERSION_INVALID_INPUT, CANNOT_PARSE_TIMESTAMP, ...). A101 reads the named function
from the message, not from a table per condition: `try_X` replaces the function `X` (`try_to_timestamp`
replaces `to_timestamp`, `try_element_at` replaces `element_at`), `try_cast` the CAST (and
`Column.cast`), and `try_divide`/`try_mod`/`try_add`/`try_subtract`/`try_multiply` the operator.

Spark's query context says where: `== SQL (line N, position M) ==` (the position of the failing
expression in the SQL text) or `== DataFrame ==` / `"__truediv__" was called from <file>:<line>`.
Only the expression there changes when it can be identified; in SQL whose text differs from the
literal (an f-string), every instance in the one statement that has them. Without a context, or
when the statement is ambiguous, the rule diagnoses and leaves the fix to the model.

Edits are made as a program: LibCST for the Python (formatting and comments kept), sqlglot's Spark
tokens and parser for SQL inside string literals (the edit splices tokens, so the rest of the
literal is untouched; sqlglot checks the operands of a rewritten operator).

A102 (CANNOT_PARSE_TIMESTAMP): when the value in the message parses with a variant of the job's
own pattern (day and month swapped, other separators, a time part dropped or added), that pattern
replaces the old one (where the pattern is: the literal, or the module constant it names); else the
`try_` form. Both are ``changes-results``: a new pattern reads values the old one accepted differently
(03/02 becomes 3 February instead of 2 March), and the `try_` form turns unparsable values into NULL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import libcst as cst
import sqlglot
from libcst.metadata import MetadataWrapper, PositionProvider
from sqlglot import exp
from sqlglot.dialects import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.tokens import Token, TokenType

from agents.record import Diagnosis, Evidence, Patch
from agents.remedies.literals import string_text
from agents.remedies.registry import Rule, finding, lines_with, texts

MAX_SQL_CHARS = 100_000  # longer string literals are not read as SQL
MAX_OPERAND_TOKENS = 10_000  # a walk over an operand's tokens stops here

# "Use `try_cast` to tolerate", "Use 'try_add' to tolerate", "use `try_make_timestamp`, which returns
# NULL", "Please use `try_variant_get` instead"
_TRY_NAME = re.compile(r"\b[Uu]se [`']?(try_[a-z0-9_]+)[`']?")
_SQL_CONTEXT = re.compile(r"== SQL(?: of VIEW [^(]*)? \(line (\d+), position (\d+)\) ==")
_DATAFRAME_SITE = re.compile(r'"(\w+)" was called from\s*\n(?:\s*\d+\| )?(\S+?):(\d+)\b')
_UNPARSABLE_TEXT = re.compile(r"Text '([^']{1,100})' could not be parsed")
_TRY_MARKERS = ("Use `try_", "use `try_", "Use 'try_")

# try_ functions that stand for an operator: (SQL tokens, sqlglot node, LibCST operator, Column dunders)
_OPERATORS: dict[str, tuple[tuple[TokenType, ...], type[exp.Binary], type[cst.BaseBinaryOp], tuple[str, ...]]] = {
    "try_divide": ((TokenType.SLASH,), exp.Div, cst.Divide, ("__truediv__", "__rtruediv__", "__div__", "__rdiv__")),
    "try_mod": ((TokenType.MOD,), exp.Mod, cst.Modulo, ("__mod__", "__rmod__")),
    "try_add": ((TokenType.PLUS,), exp.Add, cst.Add, ("__add__", "__radd__")),
    "try_subtract": ((TokenType.DASH,), exp.Sub, cst.Subtract, ("__sub__", "__rsub__")),
    "try_multiply": ((TokenType.STAR,), exp.Mul, cst.Multiply, ("__mul__", "__rmul__")),
}
# Other functions a try_ function also stands for: (failing function, its try_ form)
_ALSO: dict[str, tuple[tuple[str, str], ...]] = {
    "try_to_timestamp": (("to_date", "try_to_date"),),
    "try_avg": (("mean", "try_avg"),),
    "try_mod": (("mod", "try_mod"),),
}
# A division fails on its divisor: the same divisor elsewhere in the statement fails on the same rows.
_DIVISIONS = frozenset({"try_divide", "try_mod"})
_CAST_METHODS = ("cast", "astype")  # Column.cast / Column.astype → Column.try_cast
_SQL_STATEMENT_METHODS = frozenset({"sql"})
_SQL_EXPRESSION_METHODS = frozenset({"selectExpr", "filter", "where", "expr"})
_MULTIPLICATIVE = frozenset({TokenType.STAR, TokenType.SLASH, TokenType.MOD, TokenType.DIV})
_ADDITIVE = frozenset({TokenType.PLUS, TokenType.DASH, TokenType.DPIPE})
_TERMINALS = frozenset({TokenType.VAR, TokenType.NUMBER, TokenType.STRING, TokenType.IDENTIFIER, TokenType.NULL,
                        TokenType.TRUE, TokenType.FALSE, TokenType.PARAMETER, TokenType.PLACEHOLDER})
_NOT_CALLABLE = frozenset({"and", "or", "not", "in", "exists", "select", "from", "where", "on", "by", "when",
                           "then", "else", "as", "having", "join", "using", "values", "over", "filter", "case"})


# --- reading the evidence -------------------------------------------------------------------------


def _search(evidence: Evidence, pattern: re.Pattern[str]) -> re.Match[str] | None:
    for text in [*texts(evidence), evidence.distilled]:
        match = pattern.search(text or "")
        if match:
            return match
    return None


def try_function(evidence: Evidence) -> str | None:
    """The `try_` function Spark's message names ("Use `try_cast` to tolerate ..."), or None."""
    match = _search(evidence, _TRY_NAME)
    return match.group(1).lower() if match else None


@dataclass(frozen=True)
class Site:
    """Where Spark says the failing expression is."""

    sql_line: int | None = None  # == SQL (line N, position M) ==: in the SQL text, 1-based
    sql_position: int | None = None
    function: str | None = None  # == DataFrame ==: "__truediv__" was called from app.py:21
    file: str | None = None
    line: int | None = None


def failure_site(evidence: Evidence) -> Site:
    sql = _search(evidence, _SQL_CONTEXT)
    # the query context as distillation kept it whatever the prompt's budget, else the distilled text
    frame = _DATAFRAME_SITE.search((evidence.site or "").replace(" was called from ", " was called from\n")
                                   or evidence.distilled or "")
    return Site(
        sql_line=int(sql.group(1)) if sql else None,
        sql_position=int(sql.group(2)) if sql else None,
        function=frame.group(1) if frame else None,
        file=frame.group(2).rsplit("/", 1)[-1] if frame else None,
        line=int(frame.group(3)) if frame else None,
    )


def _site_line(site: Site, job: Mapping[str, Any]) -> int | None:
    """The DataFrame call site's line when it is in the application file."""
    spark = job.get("spark") if isinstance(job, Mapping) else None
    app = spark.get("file") if isinstance(spark, Mapping) else None
    if site.line is None:
        return None
    if isinstance(app, str) and app and site.file and site.file != app.rsplit("/", 1)[-1]:
        return None
    return site.line


# --- what a try_ function replaces ---------------------------------------------------------------


@dataclass(frozen=True)
class Replacement:
    """What to change for a `try_` function: an operator, the cast, or functions by name."""

    try_name: str
    operator: str | None  # a key of _OPERATORS
    cast: bool
    functions: tuple[tuple[str, str], ...]  # (failing function, its try_ form), lower case


def replacement_for(try_name: str) -> Replacement:
    base = try_name.removeprefix("try_")
    functions = ((base, try_name), *_ALSO.get(try_name, ()))
    return Replacement(try_name, try_name if try_name in _OPERATORS else None, try_name == "try_cast",
                       () if try_name == "try_cast" else functions)


# --- SQL inside string literals: token splices ---------------------------------------------------


@dataclass(frozen=True)
class Splice:
    start: int  # offsets in the SQL text
    end: int
    text: str


def _tokens(text: str) -> list[Token] | None:
    try:
        return list(Dialect.get_or_raise("spark").tokenize(text))
    except (SqlglotError, ValueError):
        return None


def _matches(tokens: list[Token]) -> dict[int, int]:
    """Matching brackets and CASE/END, both ways (token indexes)."""
    pairs: dict[int, int] = {}
    stack: list[tuple[TokenType, int]] = []
    opening = {TokenType.L_PAREN: TokenType.R_PAREN, TokenType.L_BRACKET: TokenType.R_BRACKET,
               TokenType.CASE: TokenType.END}
    for i, token in enumerate(tokens):
        if token.token_type in opening:
            stack.append((opening[token.token_type], i))
        elif stack and token.token_type == stack[-1][0]:
            _, j = stack.pop()
            pairs[i], pairs[j] = j, i
    return pairs


def _callable(token: Token) -> bool:
    return token.text.isidentifier() and token.text.lower() not in _NOT_CALLABLE


class _Operands:
    """Extents of a binary operator's operands in a token list, by Spark SQL's precedence."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pairs = _matches(tokens)

    def _type(self, i: int) -> TokenType | None:
        return self.tokens[i].token_type if 0 <= i < len(self.tokens) else None

    def unit_back(self, j: int) -> int | None:
        """The first token of the primary expression that ends at token j."""
        kind = self._type(j)
        if kind in (TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.END) and j in self.pairs:
            start = self.pairs[j]
            if kind == TokenType.R_BRACKET:
                start = self.unit_back(start - 1) if start > 0 else None
            elif kind == TokenType.R_PAREN and start > 0 and _callable(self.tokens[start - 1]):
                start -= 1
        elif kind in _TERMINALS or (kind is not None and self._type(j - 1) == TokenType.DCOLON):
            start = j
        else:
            return None
        if start is None:
            return None
        while self._type(start - 1) == TokenType.DOT and start >= 2:
            start -= 2
        if self._type(start - 1) == TokenType.DCOLON:
            return self.unit_back(start - 2)
        return start

    def unit_forward(self, i: int) -> int | None:
        """The last token of the primary expression that starts at token i (a sign included)."""
        if self._type(i) in (TokenType.DASH, TokenType.PLUS):
            i += 1
        kind = self._type(i)
        if kind in (TokenType.L_PAREN, TokenType.CASE) and i in self.pairs:
            end = self.pairs[i]
        elif kind is not None and self._type(i + 1) == TokenType.L_PAREN and _callable(self.tokens[i]) and i + 1 in self.pairs:
            end = self.pairs[i + 1]
        elif kind in _TERMINALS:
            end = i
        else:
            return None
        for _ in range(MAX_OPERAND_TOKENS):
            following = self._type(end + 1)
            if following == TokenType.DOT and self._type(end + 2) in _TERMINALS:
                end += 2
            elif following == TokenType.L_BRACKET and end + 1 in self.pairs:
                end = self.pairs[end + 1]
            elif following == TokenType.DCOLON and self._type(end + 2) is not None:
                end += 2
                if self._type(end + 1) == TokenType.L_PAREN and end + 1 in self.pairs:
                    end = self.pairs[end + 1]
            else:
                return end
        return None

    def _level(self, i: int) -> int:
        kind = self._type(i)
        return 2 if kind in _MULTIPLICATIVE else 1 if kind in _ADDITIVE else 0

    def _unary(self, i: int) -> bool:
        """Whether the sign at token i is a unary one (nothing that ends an operand before it)."""
        before = self._type(i - 1)
        return before is None or before in (TokenType.L_PAREN, TokenType.COMMA) or self._level(i - 1) > 0 or (
            before not in _TERMINALS and before not in (TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.END))

    def of(self, op: int) -> tuple[int, int] | None:
        """(first token of the left operand, last token of the right operand) of the operator at ``op``."""
        level = self._level(op)
        if level == 0 or self._unary(op):
            return None
        start = self.unit_back(op - 1)
        for _ in range(MAX_OPERAND_TOKENS):
            if start is None:
                return None
            if self._type(start - 1) in (TokenType.DASH, TokenType.PLUS) and self._unary(start - 1):
                start -= 1
            if self._level(start - 1) >= level and not self._unary(start - 1):
                start = self.unit_back(start - 2)
            else:
                break
        end = self.unit_forward(op + 1)
        for _ in range(MAX_OPERAND_TOKENS):
            if end is None:
                return None
            if self._level(end + 1) > level:
                end = self.unit_forward(end + 2)
            else:
                break
        return (start, end) if start is not None and end is not None else None


def _same_expression(text: str, node: exp.Expression) -> bool:
    try:
        parsed = sqlglot.parse_one(text, read="spark")
    except (SqlglotError, ValueError):
        return False
    return parsed.sql("spark") == node.sql("spark")


def _normal(sql: str) -> str | None:
    try:
        return sqlglot.parse_one(sql, read="spark").sql("spark")
    except (SqlglotError, ValueError):
        return None


def _cased(name: str, like: str) -> str:
    return name.upper() if like.isupper() else name


@dataclass(frozen=True)
class SqlCandidate:
    start: int  # where Spark's position points for this expression (its first character)
    splices: tuple[Splice, ...]
    divisor: str | None = None  # a division's right operand, as sqlglot writes it


def sql_candidates(text: str, replacement: Replacement) -> list[SqlCandidate]:
    """Every expression in the SQL ``text`` the `try_` function replaces, with the splices that do it."""
    if len(text) > MAX_SQL_CHARS or not text.strip():
        return []
    tokens = _tokens(text)
    if tokens is None:
        return []
    try:
        tree = sqlglot.parse_one(text, read="spark")
    except (SqlglotError, ValueError):
        return []
    found: list[SqlCandidate] = []
    if replacement.operator is not None:
        kinds, node_type, _, _ = _OPERATORS[replacement.operator]
        integral = replacement.operator == "try_divide"  # a DIV b: integral division, kept integral
        operands = _Operands(tokens)
        for i, token in enumerate(tokens):
            is_div = integral and token.token_type == TokenType.DIV
            if token.token_type not in kinds and not is_div:
                continue
            nodes = list(tree.find_all(exp.IntDiv if is_div else node_type))
            extent = operands.of(i)
            if extent is None:
                continue
            first, last = extent
            left = text[tokens[first].start: tokens[i - 1].end + 1]
            right = text[tokens[i + 1].start: tokens[last].end + 1]
            whole = text[tokens[first].start: tokens[last].end + 1]
            if not any(_same_expression(whole, n) and _same_expression(left, n.left) and _same_expression(right, n.right)
                       for n in nodes):
                continue
            if is_div:  # a DIV NULLIF(b, 0): NULL for a zero divisor, the same integer otherwise
                found.append(SqlCandidate(tokens[first].start, (
                    Splice(tokens[i + 1].start, tokens[i + 1].start, _cased("nullif(", token.text)),
                    Splice(tokens[last].end + 1, tokens[last].end + 1, ", 0)"),
                ), _normal(right)))
                continue
            found.append(SqlCandidate(tokens[first].start, (
                Splice(tokens[first].start, tokens[first].start, f"{replacement.try_name}("),
                Splice(tokens[i - 1].end + 1, tokens[i + 1].start, ", "),
                Splice(tokens[last].end + 1, tokens[last].end + 1, ")"),
            ), _normal(right) if replacement.try_name in _DIVISIONS else None))
        return found
    names = {failing: new for failing, new in replacement.functions}
    for i, token in enumerate(tokens[:-1]):
        if tokens[i + 1].token_type != TokenType.L_PAREN or (i > 0 and tokens[i - 1].token_type == TokenType.DOT):
            continue
        name = token.text.lower()
        if replacement.cast and name == "cast":
            found.append(SqlCandidate(token.start, (Splice(token.start, token.start, _cased("try_", token.text)),)))
        elif name in names:
            new = names[name]
            found.append(SqlCandidate(token.start, (Splice(token.start, token.end + 1, _cased(new, token.text)),)))
    return found


def sql_offset(text: str, line: int, position: int) -> int | None:
    """The offset in ``text`` of Spark's (line, position), both 1-based."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines) or not 1 <= position <= len(lines[line - 1]) + 1:
        return None
    return sum(len(x) + 1 for x in lines[: line - 1]) + position - 1


# --- the Python side -----------------------------------------------------------------------------


class _Imports(cst.CSTVisitor):
    """How the module reaches pyspark.sql.functions, and every name it binds at the top."""

    def __init__(self) -> None:
        self.modules: list[str] = []  # F in `from pyspark.sql import functions as F`
        self.functions: set[str] = set()  # names imported from pyspark.sql.functions
        self.function_imports: list[cst.ImportFrom] = []
        self.bound: set[str] = set()

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            dotted = cst.helpers.get_full_name_for_node(alias.name) or ""
            bound = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) else None
            self.bound.add(bound or dotted.split(".")[0])
            if dotted == "pyspark.sql.functions" and bound:
                self.modules.append(bound)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        module = cst.helpers.get_full_name_for_node(node.module) if node.module else ""
        if isinstance(node.names, cst.ImportStar):
            return
        if module == "pyspark.sql.functions":
            self.function_imports.append(node)
        for alias in node.names:
            name = cst.helpers.get_full_name_for_node(alias.name) or ""
            bound = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) else name
            self.bound.add(bound)
            if module == "pyspark.sql" and name == "functions":
                self.modules.append(bound)
            elif module == "pyspark.sql.functions":
                self.functions.add(bound)

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            if isinstance(target.target, cst.Name):
                self.bound.add(target.target.value)


@dataclass
class _PyCandidate:
    node: cst.CSTNode
    first: int
    last: int
    anchor: int  # the line Python reports for the call (a method call: its attribute's line)


class _Finder(cst.CSTVisitor):
    """The Python expressions the try_ function replaces, and every SQL string literal."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, replacement: Replacement, imports: _Imports) -> None:
        self.replacement = replacement
        self.imports = imports
        self.found: list[_PyCandidate] = []
        self.sql: list[tuple[cst.BaseExpression, int]] = []  # (literal, line)

    def _add(self, node: cst.CSTNode, anchor_node: cst.CSTNode) -> None:
        span = self.get_metadata(PositionProvider, node)
        anchor = self.get_metadata(PositionProvider, anchor_node).start.line
        self.found.append(_PyCandidate(node, span.start.line, span.end.line, anchor))

    def _is_function(self, call: cst.Call, names: Iterable[str]) -> bool:
        names = set(names)
        func = call.func
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
            return func.value.value in self.imports.modules and func.attr.value in names
        return isinstance(func, cst.Name) and func.value in names and func.value in self.imports.functions

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        operator = self.replacement.operator
        if operator is not None and isinstance(node.operator, _OPERATORS[operator][2]):
            if not all(isinstance(side, (cst.Integer, cst.Float)) for side in (node.left, node.right)):
                self._add(node, node)

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if self.replacement.cast and isinstance(func, cst.Attribute) and func.attr.value in _CAST_METHODS:
            self._add(node, func.attr)
        elif self._is_function(node, (f for f, _ in self.replacement.functions)):
            self._add(node, func)
        method = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else None
        args = [a.value for a in node.args if a.keyword is None and not a.star]
        if method in _SQL_STATEMENT_METHODS and args:
            self.sql.append((args[0], self.get_metadata(PositionProvider, node).start.line))
        elif method in _SQL_EXPRESSION_METHODS and args:
            for arg in args if method == "selectExpr" else args[:1]:
                self.sql.append((arg, self.get_metadata(PositionProvider, node).start.line))


@dataclass(frozen=True)
class _Access:
    """How the code names ``pyspark.sql.functions.<name>``, and the import that needs (if any)."""

    expression: cst.BaseExpression
    add_name: str | None = None  # added to the last `from pyspark.sql.functions import ...`
    add_module_as: str | None = None  # `from pyspark.sql import functions as <this>` added at the top


def _access(imports: _Imports, name: str) -> _Access:
    if imports.modules:
        return _Access(cst.Attribute(cst.Name(imports.modules[0]), cst.Name(name)))
    if imports.function_imports:
        return _Access(cst.Name(name), add_name=None if name in imports.functions else name)
    alias = next(a for a in ("F", "SF", "spark_functions", "pyspark_functions") if a not in imports.bound)
    return _Access(cst.Attribute(cst.Name(alias), cst.Name(name)), add_module_as=alias)


def _with_imports(module: cst.Module, accesses: Iterable[_Access]) -> cst.Module:
    names = list(dict.fromkeys(a.add_name for a in accesses if a.add_name))
    aliases = list(dict.fromkeys(a.add_module_as for a in accesses if a.add_module_as))
    if names:
        current = _Imports()  # the module was rebuilt: its import nodes are new objects
        module.visit(current)
        target = current.function_imports[-1]

        class AddNames(cst.CSTTransformer):
            def leave_ImportFrom(self, original: cst.ImportFrom, updated: cst.ImportFrom) -> cst.ImportFrom:
                if original is not target or isinstance(updated.names, cst.ImportStar):
                    return updated
                old = list(updated.names)
                old[-1] = old[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
                added = [cst.ImportAlias(cst.Name(n), comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
                         for n in names]
                added[-1] = added[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
                return updated.with_changes(names=[*old, *added])

        module = module.visit(AddNames())
    if aliases:
        body = list(module.body)
        at = 0
        for i, stmt in enumerate(body):  # after the docstring and the imports at the top
            if isinstance(stmt, cst.SimpleStatementLine) and all(
                    isinstance(s, (cst.Import, cst.ImportFrom))
                    or (isinstance(s, cst.Expr) and isinstance(s.value, (cst.SimpleString, cst.ConcatenatedString)))
                    for s in stmt.body):
                at = i + 1
            else:
                break
        body.insert(at, cst.parse_statement(f"from pyspark.sql import functions as {aliases[0]}\n"))
        module = module.with_changes(body=body)
    return module


class _Rewrite(cst.CSTTransformer):
    """Replaces the chosen Python expressions and applies the splices to SQL string pieces."""

    def __init__(self, replacement: Replacement, chosen: list[cst.CSTNode], pieces: dict[int, str],
                 try_access: cst.BaseExpression | None, access: Mapping[str, cst.BaseExpression]) -> None:
        self.replacement = replacement
        self.chosen = {id(n) for n in chosen}
        self.pieces = pieces  # id(piece node) → its new value
        self.try_access = try_access
        self.access = access

    def leave_SimpleString(self, original: cst.SimpleString, updated: cst.SimpleString) -> cst.BaseExpression:
        return updated.with_changes(value=self.pieces[id(original)]) if id(original) in self.pieces else updated

    def leave_FormattedStringText(self, original: cst.FormattedStringText, updated: cst.FormattedStringText) -> cst.FormattedStringText:
        return updated.with_changes(value=self.pieces[id(original)]) if id(original) in self.pieces else updated

    def leave_BinaryOperation(self, original: cst.BinaryOperation, updated: cst.BinaryOperation) -> cst.BaseExpression:
        if id(original) not in self.chosen or self.try_access is None:
            return updated
        return cst.Call(self.try_access, [
            cst.Arg(updated.left, comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))), cst.Arg(updated.right)])

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if id(original) not in self.chosen:
            return updated
        func = updated.func
        if self.replacement.cast and isinstance(func, cst.Attribute) and func.attr.value in _CAST_METHODS:
            return updated.with_changes(func=func.with_changes(attr=cst.Name("try_cast")))
        name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
        new = self.access.get(name)
        return updated.with_changes(func=new) if new is not None else updated


def _piece_edits(literal: cst.BaseExpression, splices: Iterable[Splice]) -> dict[int, str] | None:
    """The new values of the literal's pieces after the splices, or None when one falls outside a piece."""
    text = string_text(literal)
    if text is None:
        return None
    values: dict[int, tuple[Any, str, int, int]] = {}
    per_piece: dict[int, list[tuple[Splice, int]]] = {}
    for splice in splices:
        # An insertion where two pieces meet goes into the piece it precedes.
        inside = [p for p in text.pieces if p[1] <= splice.start and splice.end <= p[2]]
        inside.sort(key=lambda p: splice.start == splice.end == p[2])
        if not inside:
            return None
        node, start, _, offset = inside[0]
        values[id(node)] = (node, node.value, start, offset)
        per_piece.setdefault(id(node), []).append((splice, start))
    out: dict[int, str] = {}
    for key, edits in per_piece.items():
        _, value, start, offset = values[key]
        for splice, _ in sorted(edits, key=lambda e: e[0].start, reverse=True):
            a, b = offset + splice.start - start, offset + splice.end - start
            value = value[:a] + splice.text + value[b:]
        out[key] = value
    return out


def _statement_lines(module: cst.Module) -> list[tuple[int, int]]:
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    spans: list[tuple[int, int]] = []

    class Lines(cst.CSTVisitor):
        METADATA_DEPENDENCIES = (PositionProvider,)

        def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
            span = self.get_metadata(PositionProvider, node)
            spans.append((span.start.line, span.end.line))

    wrapper.visit(Lines())
    return spans


def apply_try(code: str, replacement: Replacement, site: Site, line: int | None) -> tuple[str, int] | None:
    """The code with the `try_` form applied where Spark says, and how many expressions changed; None
    when the failing expression cannot be located."""
    try:
        module = cst.parse_module(code)
    except cst.ParserSyntaxError:
        return None
    imports = _Imports()
    module.visit(imports)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    finder = _Finder(replacement, imports)
    wrapper.visit(finder)

    # SQL: the expression at Spark's position, else every one in the only statement that has them.
    sql_edits: list[tuple[cst.BaseExpression, list[Splice], int]] = []  # (literal, splices, expressions)
    if site.sql_line is not None and site.sql_position is not None:
        per_literal: list[tuple[cst.BaseExpression, list[SqlCandidate], int | None, int]] = []
        for literal, at in finder.sql:
            text = string_text(literal)
            if text is None:
                continue
            candidates = sql_candidates(text.text, replacement)
            if candidates:
                per_literal.append((literal, candidates, sql_offset(text.text, site.sql_line, site.sql_position), at))
        exact = [(lit, [c for c in cands if c.start == offset]) for lit, cands, offset, _ in per_literal]
        exact = [(lit, cands) for lit, cands in exact if cands]
        if len(exact) == 1:
            literal, (failing, *_) = exact[0]
            same = next(cands for lit, cands, _, _ in per_literal if lit is literal)
            picked = [c for c in same if c is failing or (failing.divisor is not None and c.divisor == failing.divisor)]
            sql_edits = [(literal, [s for c in picked for s in c.splices], len(picked))]
        elif not exact and len(per_literal) == 1:
            literal, candidates, _, _ = per_literal[0]
            sql_edits = [(literal, [s for c in candidates for s in c.splices], len(candidates))]
        else:
            return None

    # Python: the expressions on the line Spark's DataFrame context names (those starting there first).
    chosen: list[cst.CSTNode] = []
    if not sql_edits and line is not None:
        spanning = [c for c in finder.found if c.first <= line <= c.last]
        anchored = [c for c in spanning if c.anchor == line]
        picked = anchored or spanning
        innermost = [c for c in picked if not any(o is not c and o.first >= c.first and o.last <= c.last
                                                  and _contains(c.node, o.node) for o in picked)]
        if replacement.try_name in _DIVISIONS:  # the same divisor in the same statement fails on the same rows
            statement = next(((a, b) for a, b in _statement_lines(module) if a <= line <= b), (line, line))
            divisors = {module.code_for_node(c.node.right) for c in innermost if isinstance(c.node, cst.BinaryOperation)}
            innermost += [c for c in finder.found if c not in innermost and statement[0] <= c.first <= statement[1]
                          and isinstance(c.node, cst.BinaryOperation) and module.code_for_node(c.node.right) in divisors]
        chosen = [c.node for c in innermost]
    if not sql_edits and not chosen:
        return None

    pieces: dict[int, str] = {}
    for literal, splices, _ in sql_edits:
        edits = _piece_edits(literal, splices)
        if edits is None:
            return None
        pieces.update(edits)
    try_access: _Access | None = None
    access: dict[str, _Access] = {}
    if any(isinstance(n, cst.BinaryOperation) for n in chosen) and replacement.operator is not None:
        try_access = _access(imports, replacement.try_name)
    for failing, new_name in replacement.functions:
        if any(_call_name(n) == failing for n in chosen):
            access[failing] = _access(imports, new_name)
    rewrite = _Rewrite(replacement, chosen, pieces, try_access.expression if try_access else None,
                       {k: v.expression for k, v in access.items()})
    new = _with_imports(module.visit(rewrite), [*access.values(), *([try_access] if try_access else [])])
    count = len(chosen) + sum(sql_count for _, _, sql_count in sql_edits)
    return (new.code, count) if new.code != code else None


def _call_name(call: cst.CSTNode) -> str | None:
    if not isinstance(call, cst.Call):
        return None
    func = call.func
    return func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else None


def _contains(outer: cst.CSTNode, inner: cst.CSTNode) -> bool:
    found = False

    class Seek(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            nonlocal found
            if node is inner:
                found = True
            return not found

    outer.visit(Seek())
    return found


# --- A101: the try_ form Spark names -------------------------------------------------------------


def _where(site: Site) -> str:
    if site.sql_line is not None:
        return f" (SQL line {site.sql_line}, position {site.sql_position})"
    if site.function and site.line is not None:
        return f" ({site.function} at {site.file}:{site.line})"
    return ""


def _diagnose_try(evidence: Evidence, code: str | None) -> Diagnosis | None:
    name = try_function(evidence)
    if name is None:
        return None
    site = failure_site(evidence)
    condition = evidence.error_class or "an ANSI error"
    located = site.sql_line is not None or site.line is not None
    cause = (f"{condition}: a value the expression cannot take under ANSI mode{_where(site)}. Spark names "
             f"`{name}`, which returns NULL for such values instead of failing the job.")
    lines = lines_with(evidence, _TRY_MARKERS) or [t for t in texts(evidence)[:1]]
    return finding("code", cause, lines, 0.9 if located else 0.6)


def _fix_try(evidence: Evidence, code: str | None, job_spark: Mapping[str, Any], job: Mapping[str, Any]) -> Patch | None:
    name = try_function(evidence)
    if not code or name is None:
        return None
    site = failure_site(evidence)
    done = apply_try(code, replacement_for(name), site, _site_line(site, job))
    if done is None:
        return None
    new_code, count = done
    return Patch(kind="code", code=new_code, source="rule", explanation=(
        f"Applied `{name}`, as Spark's {evidence.error_class or 'error'} message suggests, to "
        f"{count} failing expression{'s' if count != 1 else ''}{_where(site)}: values that failed the job "
        f"now give NULL."))


# --- A102: a timestamp pattern that does not match the data --------------------------------------

_PATTERN_FIELD = re.compile(r"'[^']*'|([A-Za-z])\1*|[^A-Za-z']+")
_FIELD_REGEX = {"y": r"\d{4}", "yy": r"\d{2}", "M": r"\d{1,2}", "MM": r"\d{2}", "d": r"\d{1,2}", "dd": r"\d{2}",
                "H": r"\d{1,2}", "HH": r"\d{2}", "m": r"\d{1,2}", "mm": r"\d{2}", "s": r"\d{1,2}", "ss": r"\d{2}",
                "a": r"(?:AM|PM|am|pm)", "h": r"\d{1,2}", "hh": r"\d{2}", "MMM": r"[A-Za-z]{3}"}
_FIELD_RANGE = {"M": (1, 12), "d": (1, 31), "H": (0, 23), "h": (1, 12), "m": (0, 59), "s": (0, 59)}


def _field_key(piece: str) -> str | None:
    """The kind of a pattern field ("yyyy" → "y", "yy" → "yy"; "SSS" → "S"), or None when unsupported."""
    if piece[0] == "y":
        return "y" if len(piece) in (1, 4) else "yy" if len(piece) == 2 else None
    if set(piece) == {"S"}:
        return "S"
    return piece if piece in _FIELD_REGEX else None


def _fields(pattern: str) -> list[str] | None:
    """A Spark datetime pattern as its fields and literal separators, or None when it has others."""
    out = []
    for match in _PATTERN_FIELD.finditer(pattern):
        piece = match.group(0)
        if piece[0].isalpha() and _field_key(piece) is None:
            return None
        out.append(piece)
    return out


def parses(pattern: str, value: str) -> bool:
    """Whether a Spark datetime pattern (digit fields, am/pm, fractions, literals) reads ``value``."""
    fields = _fields(pattern)
    if fields is None:
        return False
    regex, names = "", []
    for piece in fields:
        key = _field_key(piece) if piece[0].isalpha() else None
        if key == "S":
            regex += rf"(\d{{1,{len(piece)}}})"
        elif key is not None:
            regex += f"({_FIELD_REGEX[key]})"
        else:
            regex += re.escape(piece[1:-1] if piece.startswith("'") else piece)
            continue
        names.append(piece)
    match = re.fullmatch(regex, value.strip())
    if not match:
        return False
    for piece, text in zip(names, match.groups(), strict=True):
        bounds = _FIELD_RANGE.get(piece[0])
        if bounds and text.isdigit() and not bounds[0] <= int(text) <= bounds[1]:
            return False
    return True


def _swap_day_month(fields: list[str]) -> list[str] | None:
    days = [f for f in fields if f[0] == "d"]
    months = [f for f in fields if f[0] == "M"]
    if len(days) != 1 or len(months) != 1:
        return None
    return [months[0] if f[0] == "d" else days[0] if f[0] == "M" else f for f in fields]


def _with_separators(fields: list[str], separators: list[str]) -> str | None:
    literal = [i for i, f in enumerate(fields) if not f[0].isalpha()]
    if len(literal) != len(separators):
        return None
    changed = list(fields)
    for i, separator in zip(literal, separators, strict=True):
        changed[i] = separator
    return "".join(changed)


def _variants(pattern: str, value: str) -> list[str]:
    """Patterns near ``pattern``, closest first: the value's own separators (the fields keep their
    meaning), then day and month swapped, then both."""
    fields = _fields(pattern)
    if fields is None:
        return []
    separators = re.findall(r"[^A-Za-z0-9]+", value.strip())
    swapped = _swap_day_month(fields)
    found = [_with_separators(fields, separators)]
    if swapped:
        found += ["".join(swapped), _with_separators(swapped, separators)]
    return [p for p in dict.fromkeys(found) if p and p != pattern]


def infer_pattern(old: str, value: str) -> str | None:
    """The closest variant of the pattern ``old`` that reads ``value``, or None (none does, or ``old`` does)."""
    if parses(old, value):
        return None
    return next((p for p in _variants(old, value) if parses(p, value)), None)


@dataclass
class _PatternUse:
    """A to_timestamp/to_date call's pattern: where its text is (a Python literal, or SQL in a literal)."""

    pattern: str
    line: int  # of the call
    literal: cst.BaseExpression  # the Python string holding the pattern, or the SQL literal
    splice: Splice | None = None  # in the SQL literal's text; None: the Python string is the pattern


class _PatternFinder(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, imports: _Imports, functions: set[str]) -> None:
        self.imports = imports
        self.functions = functions
        self.constants: dict[str, list[cst.SimpleString]] = {}  # module-level NAME = "..." (each assignment)
        self.uses: list[tuple[cst.BaseExpression, int, int]] = []  # (format argument, call line, anchor)
        self.sql: list[tuple[cst.BaseExpression, int]] = []
        self.depth = 0

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.depth += 1

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.depth -= 1

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            if isinstance(target.target, cst.Name):
                value = node.value if self.depth == 0 and isinstance(node.value, cst.SimpleString) else None
                self.constants.setdefault(target.target.value, []).append(value)  # type: ignore[arg-type]

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else None
        is_function = (isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name)
                       and func.value.value in self.imports.modules) or (
            isinstance(func, cst.Name) and func.value in self.imports.functions)
        args = [a.value for a in node.args if a.keyword is None and not a.star]
        line = self.get_metadata(PositionProvider, node).start.line
        if is_function and name in self.functions:
            fmt = args[1] if len(args) > 1 else next((a.value for a in node.args if a.keyword and a.keyword.value == "format"), None)
            if fmt is not None:
                self.uses.append((fmt, line, self.get_metadata(PositionProvider, func).start.line))
        if name in _SQL_STATEMENT_METHODS and args or name in _SQL_EXPRESSION_METHODS and args:
            for arg in args if name == "selectExpr" else args[:1]:
                self.sql.append((arg, line))


def _python_pattern(node: cst.BaseExpression, constants: Mapping[str, list[cst.SimpleString | None]]) -> cst.SimpleString | None:
    if isinstance(node, cst.Name):
        assigned = constants.get(node.value, [])
        node = assigned[0] if len(assigned) == 1 and assigned[0] is not None else node
    if isinstance(node, cst.SimpleString) and "b" not in node.prefix.lower():
        return node
    return None


def _sql_patterns(text: str, functions: set[str]) -> list[tuple[int, str, Splice]]:
    """(offset of the call, pattern, its span) of each to_timestamp(x, 'pattern') in the SQL text."""
    tokens = _tokens(text) if len(text) <= MAX_SQL_CHARS else None
    if not tokens:
        return []
    pairs = _matches(tokens)
    found = []
    for i, token in enumerate(tokens[:-1]):
        if token.text.lower() not in functions or tokens[i + 1].token_type != TokenType.L_PAREN or i + 1 not in pairs:
            continue
        close = pairs[i + 1]
        last = tokens[close - 1]
        if last.token_type == TokenType.STRING and tokens[close - 2].token_type == TokenType.COMMA:
            raw = text[last.start: last.end + 1]
            if raw[:1] in "'\"" and raw[-1:] == raw[:1]:
                found.append((token.start, raw[1:-1], Splice(last.start + 1, last.end, "")))
    return found


def _pattern_uses(code: str, functions: set[str], site: Site, line: int | None) -> tuple[cst.Module, list[_PatternUse]] | None:
    try:
        module = cst.parse_module(code)
    except cst.ParserSyntaxError:
        return None
    imports = _Imports()
    module.visit(imports)
    finder = _PatternFinder(imports, functions)
    MetadataWrapper(module, unsafe_skip_copy=True).visit(finder)
    uses: list[_PatternUse] = []
    if site.sql_line is not None:
        for literal, at in finder.sql:
            text = string_text(literal)
            if text is None:
                continue
            offset = sql_offset(text.text, site.sql_line, site.sql_position or 0)
            for start, pattern, splice in _sql_patterns(text.text, functions):
                if start == offset:
                    uses.append(_PatternUse(pattern, at, literal, splice))
    else:
        for fmt, at, anchor in finder.uses:
            if line is not None and line not in (at, anchor):
                continue
            literal = _python_pattern(fmt, finder.constants)
            if literal is not None:
                uses.append(_PatternUse(literal.evaluated_value, at, literal))  # type: ignore[arg-type]
    return module, uses


def _fix_timestamp(evidence: Evidence, code: str | None, job_spark: Mapping[str, Any], job: Mapping[str, Any]) -> Patch | None:
    if not code:
        return None
    site = failure_site(evidence)
    line = _site_line(site, job)
    value = _search(evidence, _UNPARSABLE_TEXT)
    replacement = replacement_for(try_function(evidence) or "try_to_timestamp")
    functions = {f for f, _ in replacement.functions}
    found = _pattern_uses(code, functions, site, line) if value else None
    module, uses = found if found is not None else (None, [])
    uses = [u for u in uses if value and not parses(u.pattern, value.group(1))]
    if module is not None and uses and value:
        news = {infer_pattern(u.pattern, value.group(1)) for u in uses}  # type: ignore[union-attr]
        new = news.pop() if len(news) == 1 else None
        if new is not None and "'" not in new and '"' not in new and "\\" not in new:
            pieces: dict[int, str] = {}
            for use in uses:
                if use.splice is None:
                    assert isinstance(use.literal, cst.SimpleString)
                    prefix_len = len(use.literal.prefix) + len(use.literal.quote)
                    pieces[id(use.literal)] = use.literal.value[:prefix_len] + new + use.literal.value[-len(use.literal.quote):]
                else:
                    edits = _piece_edits(use.literal, [Splice(use.splice.start, use.splice.end, new)])
                    if edits is None:
                        break
                    pieces.update(edits)
            else:
                rewritten = module.visit(_Rewrite(replacement, [], pieces, None, {}))
                if rewritten.code != code:
                    old = uses[0].pattern
                    return Patch(kind="code", code=rewritten.code, source="rule", explanation=(
                        f"The value '{value.group(1)}' in Spark's {evidence.error_class} message does not match the "  # type: ignore[union-attr]
                        f"pattern \"{old}\"; \"{new}\" reads it. Values the old pattern read may now be read "
                        f"differently: review the output."))
    done = apply_try(code, replacement, site, line)
    if done is None:
        return None
    return Patch(kind="code", code=done[0], source="rule", explanation=(
        f"No pattern close to the job's reads the failing value: applied `{replacement.try_name}`, as Spark's "
        f"{evidence.error_class} message suggests ({done[1]} expression{'s' if done[1] != 1 else ''}{_where(site)}); "
        f"values that do not parse now give NULL."))


def _diagnose_timestamp(evidence: Evidence, code: str | None) -> Diagnosis | None:
    value = _search(evidence, _UNPARSABLE_TEXT)
    site = failure_site(evidence)
    shown = f" '{value.group(1)}'" if value else ""
    cause = (f"{evidence.error_class}: the text{shown} does not match the datetime pattern the job parses it "
             f"with{_where(site)}.")
    lines = lines_with(evidence, ("CANNOT_PARSE_TIMESTAMP", "could not be parsed")) or texts(evidence)[:1]
    return finding("code", cause, lines, 0.9 if value else 0.6)


RULES = (
    Rule(
        code="A102", name="timestamp-pattern",
        summary="A timestamp that does not match its pattern: the pattern that reads it, else try_to_timestamp",
        explanation="CANNOT_PARSE_TIMESTAMP under ANSI mode. When the value in Spark's message parses with a "
        "variant of the job's pattern (day and month swapped, the value's own separators), that pattern replaces "
        "the old one where it is written (the literal in to_timestamp/to_date, in SQL or DataFrame code, or the "
        "module constant it names); otherwise the try_ form Spark names. Changes results either way: the new "
        "pattern reads every value by the new layout, and the try_ form turns unparsable values into NULL.",
        conditions=("CANNOT_PARSE_TIMESTAMP",), diagnose=_diagnose_timestamp, fix=_fix_timestamp,
        applicability="changes-results",
    ),
    Rule(
        code="A101", name="try-function",
        summary="An ANSI error whose message names a try_ function: that try_ form, where Spark points",
        explanation="Any condition whose message says \"Use `try_xxx` to tolerate ...\" (CAST_INVALID_INPUT, "
        "DIVIDE_BY_ZERO, REMAINDER_BY_ZERO, ARITHMETIC_OVERFLOW, CAST_OVERFLOW, INVALID_ARRAY_INDEX_IN_ELEMENT_AT, "
        "INVALID_URL, CONVERSION_INVALID_INPUT, ...). The function or operator the try_ function stands for is "
        "replaced by it in the expression Spark's query context names: CAST(x AS T) → TRY_CAST, a / b → "
        "try_divide(a, b) in SQL text; col.cast(t) → col.try_cast(t), a / b → F.try_divide(a, b) in DataFrame "
        "code. Values that failed the job become NULL, so the fix changes results. No fix without a context that "
        "locates the expression.",
        markers=_TRY_MARKERS, diagnose=_diagnose_try, fix=_fix_try, applicability="changes-results",
    ),
)

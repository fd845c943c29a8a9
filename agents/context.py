"""The code the model sees: a focused excerpt of the application file that fits a token budget.

A job of 5,000 lines heals within the same budget as one of 50: the excerpt holds the failing
statements (whole, even when a DataFrame chain spans many lines), the headers of the functions
around them, the definitions those lines use (the DataFrame's construction chain, the helpers, the
module constants), the imports, and then whatever else fits, in that order. Lines not shown are
replaced by one marker line per gap, so the model knows what it does not see and can ask for it.

    ctx = code_context(code, focus_lines=[412, 97], budget_tokens=1200)
    ctx.text, ctx.shown, ctx.complete, ctx.tokens

Everything is found with `ast` (no import, no execution of the user's code); code that does not
parse falls back to plain line windows. The result depends only on the arguments.
"""

from __future__ import annotations

import ast
import bisect
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agents.tokens import CHARS_PER_TOKEN, estimate_tokens

__all__ = ["CodeContext", "code_context"]

Span = tuple[int, int]  # 1-based inclusive line range

MAX_LINE_CHARS = 300  # longer lines (generated SQL, data literals) are cut: they say little per token
CONTEXT_LINES = 2  # lines shown above and below a focus statement before any definition
SMALL_DEFINITION_LINES = 25  # a used function or class this short is shown whole, a longer one by its header
DEFINITION_DEPTH = 3  # how far definitions are followed: a name's assignment, the names it uses, ...
ENTRY_POINTS = 3  # statements taken as focus when there is no traceback

# Without a traceback the job's entry point is where its Spark writes (else actions) are.
_WRITE = re.compile(r"\.(write|writeTo|writeStream|save|saveAsTable|insertInto)\b|\bspark\.sql\s*\(")
_ACTION = re.compile(r"\.(collect|show|toPandas|take|first|foreach|foreachPartition)\s*\(|\.count\(\s*\)")
_BLANK_OR_COMMENT = re.compile(r"^\s*(#.*)?$")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # Python's own line breaks: the traceback counts lines so


@dataclass(frozen=True)
class CodeContext:
    """Numbered excerpts of a file ("  12| code", as `agents.prompts.number_lines` renders them),
    each gap shown as one marker line ("   ...  (lines 13–40 not shown)")."""

    text: str
    shown: tuple[Span, ...]  # the line ranges shown, sorted and merged
    total_lines: int
    complete: bool  # the whole file is shown
    tokens: int  # agents.tokens.estimate_tokens(text)


def code_context(
    code: str, focus_lines: Sequence[int], budget_tokens: int, requested: Sequence[Span] = ()
) -> CodeContext:
    """The excerpt of `code` to show the model within `budget_tokens`.

    `focus_lines` are the traceback's frames in this file, most important first (the traceback's
    last frame first); lines outside the file are ignored. `requested` are ranges the model asked
    for, clipped to the file. Without a usable focus line the job's entry point is the focus. The
    first focus line is shown even when it alone exceeds the budget, so the result is never empty
    for a non-empty file; otherwise `tokens <= budget_tokens`.
    """
    view = _View(_split_lines(code))
    whole = ((1, view.n),) if view.n else ()
    if view.tokens(whole) <= budget_tokens:
        return view.result(whole)
    focus = list(dict.fromkeys(line for line in focus_lines if 1 <= line <= view.n))
    wanted = _clip(requested, view.n)
    selection = _Selection(view, budget_tokens)
    try:
        model = _Model(ast.parse(code), view.lines)
    except (SyntaxError, ValueError, RecursionError) as error:  # ValueError: NUL bytes in the source
        if not focus:
            focus = _plain_entry(view.lines, getattr(error, "lineno", None))
        _select_plain(selection, focus, wanted)
    else:
        _select(selection, model, focus or model.entry_points(), wanted)
    return view.result(selection.ranges)


# --- rendering and cost -------------------------------------------------------------------------


class _View:
    """The numbered lines of one file, and the exact size of any excerpt of them."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.n = len(lines)
        self.width = len(str(self.n))
        self.rendered = [f"{i:>{self.width}}| {_cut(line)}" for i, line in enumerate(lines, start=1)]
        self.prefix = [0]  # prefix[i]: characters of rendered lines 1..i, a newline after each
        for text in self.rendered:
            self.prefix.append(self.prefix[-1] + len(text) + 1)

    def marker(self, start: int, end: int) -> str:
        lines = f"line {start}" if start == end else f"lines {start}–{end}"
        return f"{'':>{max(self.width - 1, 0)}}...  ({lines} not shown)"

    def normalize(self, spans: Iterable[Span]) -> tuple[Span, ...]:
        """Sorted, merged ranges; a gap whose lines cost no more than its marker is shown instead."""
        merged: list[list[int]] = []
        for start, end in sorted(spans):
            if merged and start <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        if not merged:
            return ()
        if self._cheap(1, merged[0][0] - 1):
            merged[0][0] = 1
        if self._cheap(merged[-1][1] + 1, self.n):
            merged[-1][1] = self.n
        filled = [merged[0]]
        for start, end in merged[1:]:
            if self._cheap(filled[-1][1] + 1, start - 1):
                filled[-1][1] = end
            else:
                filled.append([start, end])
        return tuple((start, end) for start, end in filled)

    def _cheap(self, start: int, end: int) -> bool:
        return start <= end and self.prefix[end] - self.prefix[start - 1] <= len(self.marker(start, end)) + 1

    def tokens(self, ranges: tuple[Span, ...]) -> int:
        chars, previous = 0, 0
        for start, end in ranges:
            if start > previous + 1:
                chars += len(self.marker(previous + 1, start - 1)) + 1
            chars += self.prefix[end] - self.prefix[start - 1]
            previous = end
        if previous < self.n:
            chars += len(self.marker(previous + 1, self.n)) + 1
        return -(-max(chars - 1, 0) // CHARS_PER_TOKEN)  # as estimate_tokens; the last line has no newline

    def result(self, ranges: tuple[Span, ...]) -> CodeContext:
        out: list[str] = []
        previous = 0
        for start, end in ranges:
            if start > previous + 1:
                out.append(self.marker(previous + 1, start - 1))
            out.extend(self.rendered[start - 1 : end])
            previous = end
        if ranges and previous < self.n:
            out.append(self.marker(previous + 1, self.n))
        text = "\n".join(out)
        complete = ranges == ((1, self.n),) or self.n == 0
        return CodeContext(text, ranges, self.n, complete, estimate_tokens(text))


class _Selection:
    """The ranges chosen so far; an addition is kept only while the whole excerpt fits."""

    def __init__(self, view: _View, budget: int) -> None:
        self.view, self.budget = view, budget
        self.ranges: tuple[Span, ...] = ()
        self.added: list[Span] = []  # what was added, in order of priority

    def shows(self, span: Span) -> bool:
        return any(start <= span[0] and span[1] <= end for start, end in self.ranges)

    def add(self, *spans: Span, force: bool = False) -> bool:
        ranges = self.view.normalize(self.ranges + spans)
        if ranges == self.ranges:
            return True
        if not force and self.view.tokens(ranges) > self.budget:
            return False
        self.ranges = ranges
        self.added.extend(spans)
        return True

    def add_lines(self, start: int, end: int) -> None:
        """As many lines of start..end as fit, from `start` on."""
        for line in range(start, end + 1):
            if not self.add((line, line)):
                return

    def range_of(self, line: int) -> Span | None:
        return next(((start, end) for start, end in self.ranges if start <= line <= end), None)

    def widen(self, focus: Sequence[int]) -> None:
        """Grow the windows around the focus lines one line at a time, below then above, in turn."""
        open_sides = {(line, side) for line in focus for side in (1, -1)}
        while open_sides:
            for line in focus:
                for side in (1, -1):
                    if (line, side) not in open_sides:
                        continue
                    window = self.range_of(line)
                    nxt = (window[1] + 1 if side == 1 else window[0] - 1) if window else line
                    if not (1 <= nxt <= self.view.n and self.add((nxt, nxt))):
                        open_sides.discard((line, side))

    def fill(self) -> None:
        """Everything else in file order, until the first line that does not fit."""
        line = 1
        while line <= self.view.n:
            window = self.range_of(line)
            if window:
                line = window[1] + 1
            elif self.add((line, line)):
                line += 1
            else:
                return


# --- what to show, by priority --------------------------------------------------------------------


def _select(selection: _Selection, model: _Model, focus: Sequence[int], wanted: Sequence[Span]) -> None:
    statements = [model.statement(line) for line in focus]
    # 1. the failing statement whole (else its line alone) and the ranges asked for
    if focus and not selection.add(statements[0]):
        selection.add((focus[0], focus[0]), force=True)
    for start, end in wanted:
        if not selection.add((start, end)):
            selection.add_lines(start, end)
    # 2. frame by frame, innermost first (the failing expression's own context before an outer
    #    caller's): the statement, a few lines around it, the headers of the functions, classes and
    #    loops around it, and what it uses (not the lines around it: their helpers are noise) --
    #    assignments followed to DEFINITION_DEPTH, functions, classes
    followed: set[Span] = set()
    definitions: list[Span] = []
    for index, (line, statement) in enumerate(zip(focus, statements, strict=True)):
        if index and not selection.add(statement):
            selection.add((line, line))
        start, end = statement
        if start > 1:
            selection.add((max(start - CONTEXT_LINES, 1), start - 1))
        if end < model.n:
            selection.add((end + 1, min(end + CONTEXT_LINES, model.n)))
        headers = model.enclosing_headers(line)
        for header in headers:
            selection.add(header)
        seeds = [statement, *headers, *(wanted if index == 0 else ())]
        frontier = [shown for shown in _lines(seeds) if selection.shows((shown, shown))]
        for _ in range(DEFINITION_DEPTH):
            reached: list[int] = []
            while frontier:
                free: list[int] = []  # a definition shown already costs nothing: follow it at this depth
                for target in model.targets(frontier):
                    if target.kind == "import" or target.span in followed:
                        continue
                    followed.add(target.span)
                    lines = range(target.span[0], target.span[1] + 1)
                    if selection.shows(target.span):
                        free.extend(lines)
                    elif selection.add(target.span):
                        definitions.append(target.span)
                        reached.extend(lines)
                frontier = free
            frontier = reached
    # 3. the module constants of everything shown, and the headers around definitions taken from
    #    other functions
    for target in model.targets(_shown_lines(selection)):
        if target.constant and selection.add(target.span):
            definitions.append(target.span)
    for start, _end in definitions:
        for header in model.enclosing_headers(start):
            if header[0] != start:
                selection.add(header)
    # 4. the imports: all of them if they fit, else those the shown lines use
    if not selection.add(*model.imports):
        for target in model.targets(_shown_lines(selection)):
            if target.kind == "import":
                selection.add(target.span)
    # 5. wider windows around the failing lines, then the rest of the file
    selection.widen(focus)
    selection.fill()


def _select_plain(selection: _Selection, focus: Sequence[int], wanted: Sequence[Span]) -> None:
    """Line windows only, for code `ast` cannot read."""
    if focus:
        selection.add((focus[0], focus[0]), force=True)
    for start, end in wanted:
        if not selection.add((start, end)):
            selection.add_lines(start, end)
    for line in focus[1:]:
        selection.add((line, line))
    selection.widen(focus)
    selection.fill()


def _plain_entry(lines: list[str], error_line: int | None) -> list[int]:
    """Where to look in code that does not parse: the syntax error, else the last write."""
    if error_line and 1 <= error_line <= len(lines):
        return [error_line]
    writes = [i for i, line in enumerate(lines, start=1) if _WRITE.search(line)]
    if writes:
        return writes[::-1][:ENTRY_POINTS]
    filled = [i for i, line in enumerate(lines, start=1) if line.strip()]
    return [filled[-1] if filled else len(lines)]


def _lines(spans: Iterable[Span]) -> list[int]:
    return list(dict.fromkeys(line for start, end in spans for line in range(start, end + 1)))


def _shown_lines(selection: _Selection) -> list[int]:
    """The lines shown, those added first (the most important) first."""
    return _lines([*selection.added, *selection.ranges])


# --- the file as `ast` sees it --------------------------------------------------------------------

BindingKind = Literal["assign", "def", "import", "param"]
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_LEAVES = (ast.Constant, ast.expr_context, ast.operator, ast.cmpop, ast.unaryop, ast.boolop)  # nothing to walk


@dataclass(frozen=True)
class _Binding:
    name: str
    kind: BindingKind
    span: Span  # what to show for it: the statement, a definition (whole or header), the import
    module_level: bool = False

    @property
    def constant(self) -> bool:
        return self.module_level and self.kind == "assign" and self.name.upper() == self.name != self.name.lower()


@dataclass(eq=False)  # scopes are compared by identity
class _Scope:
    kind: Literal["module", "function", "class", "comprehension"]
    parent: _Scope | None
    bindings: dict[str, list[_Binding]] = field(default_factory=lambda: defaultdict(list))
    skipped: set[str] = field(default_factory=set)  # declared global/nonlocal: bound elsewhere
    global_names: set[str] = field(default_factory=set)
    attributes: dict[str, list[tuple[_Binding, _Scope]]] = field(default_factory=lambda: defaultdict(list))
    self_name: str | None = None  # a method's first parameter


@dataclass(frozen=True)
class _Use:
    name: str
    line: int
    scope: _Scope
    attribute_of: _Scope | None = None  # `self.name` in a method of this class


class _Model:
    """Statements, scopes, bindings and name uses of one parsed file."""

    def __init__(self, tree: ast.Module, lines: list[str]) -> None:
        self.tree, self.lines, self.n = tree, lines, len(lines)
        self._children: dict[int, list[ast.stmt]] = {}
        collector = _Collector(self)
        collector.run(tree)
        self.module = collector.module
        self.uses = collector.uses
        self.imports = collector.imports

    # statements and headers

    def children(self, node: ast.AST) -> list[ast.stmt]:
        key = id(node)  # the tree lives as long as the model: ids are not reused
        if key not in self._children:
            self._children[key] = _children(node)
        return self._children[key]

    def statement(self, line: int) -> Span:
        """The whole statement `line` is in; for a compound statement, the clause header line(s)."""
        return self._locate(line)[0]

    def enclosing_headers(self, line: int) -> list[Span]:
        """The headers of the functions, classes and compound statements (`for`, `if`, `with`, ...)
        around `line`, innermost first."""
        return [self.header(node) for node in reversed(self._locate(line)[1])]

    def header(self, node: ast.stmt) -> Span:
        """A compound statement's first line(s) up to the colon, with a definition's decorators."""
        end = max(node.lineno, _start(self.children(node)[0]) - 1)
        return (_start(node), self._trim_end(node.lineno, end))

    def _locate(self, line: int) -> tuple[Span, list[ast.stmt]]:
        """The statement span for `line`, and the compound statements around it, outermost first."""
        node: ast.AST = self.tree
        enclosing: list[ast.stmt] = []
        while True:
            children = self.children(node)
            index = bisect.bisect_right([_start(s) for s in children], line) - 1
            hit = children[index] if index >= 0 and line <= _end(children[index]) else None
            if hit is None:
                return self._between(node, children, line), enclosing
            if not self.children(hit):
                return (_start(hit), _end(hit)), enclosing
            enclosing.append(hit)
            node = hit

    def _between(self, node: ast.AST, children: list[ast.stmt], line: int) -> Span:
        """The line's clause (`else:`, a `def` header, ...), when it is in no child statement."""
        if isinstance(node, ast.Module) or _BLANK_OR_COMMENT.match(self.lines[line - 1]):
            return (line, line)
        low, high = _start(node), _end(node)
        for child in children:
            if _end(child) < line:
                low = max(low, _end(child) + 1)
            elif _start(child) > line:
                high = min(high, _start(child) - 1)
        while low < line and _BLANK_OR_COMMENT.match(self.lines[low - 1]):
            low += 1
        return (low, self._trim_end(line, high))

    def _trim_end(self, low: int, high: int) -> int:
        while high > low and _BLANK_OR_COMMENT.match(self.lines[high - 1]):
            high -= 1
        return high

    # definitions

    def targets(self, lines: Iterable[int]) -> list[_Binding]:
        """What the names used on `lines` refer to, in order of first use."""
        found: dict[_Binding, None] = {}
        for line in lines:
            for use in self.uses.get(line, ()):
                for binding in self._resolve(use):
                    found.setdefault(binding)
        return list(found)

    def _resolve(self, use: _Use) -> list[_Binding]:
        if use.attribute_of is not None:
            return self._resolve_attribute(use, use.attribute_of)
        scope: _Scope | None = use.scope
        if use.name in use.scope.global_names:
            scope = self.module
        elif use.name in use.scope.skipped:
            scope = use.scope.parent
        while scope is not None:
            visible = scope is use.scope or scope.kind != "class"  # a class body is no enclosing scope
            if visible and scope.bindings.get(use.name):
                binding = _nearest(scope.bindings[use.name], use.line)
                return [] if binding.kind == "param" else [binding]
            scope = scope.parent
        return []  # a builtin, or defined nowhere in the file

    def _resolve_attribute(self, use: _Use, owner: _Scope) -> list[_Binding]:
        if owner.bindings.get(use.name):  # a method or class attribute
            return [_nearest(owner.bindings[use.name], use.line)]
        assigned = owner.attributes.get(use.name, [])
        here = [binding for binding, method in assigned if method is use.scope and binding.span[1] < use.line]
        if here:
            return [here[-1]]
        return [assigned[0][0]] if assigned else []  # most often set in __init__

    def entry_points(self) -> list[int]:
        """Focus lines without a traceback: the entry point (the `__main__` block, else the module's
        own statements), at its last writes (else actions, else its last statement); for a module of
        definitions only, the last writes anywhere."""
        body = self.tree.body
        main = [s for s in body if isinstance(s, ast.If) and _is_main_guard(s.test)]
        if main:
            statements = main[-1].body
        else:
            statements = [
                s for s in body
                if not isinstance(s, (ast.Import, ast.ImportFrom, *_DEFINITIONS)) and not _is_docstring(s)
            ]
        for scope in (statements, body):
            for pattern in (_WRITE, _ACTION):
                found = self._matching_lines(scope, pattern)
                if found:
                    return found
            if scope:
                return [_start(scope[-1])]
        return [self.n]

    def _matching_lines(self, statements: list[ast.stmt], pattern: re.Pattern[str]) -> list[int]:
        """The last line matching `pattern` in each of the last such statements, the last first."""
        found: list[int] = []
        for statement in reversed(statements):
            lines = range(_end(statement), _start(statement) - 1, -1)
            line = next((i for i in lines if pattern.search(self.lines[i - 1])), None)
            if line is not None:
                found.append(line)
                if len(found) == ENTRY_POINTS:
                    break
        return found


class _Collector(ast.NodeVisitor):
    """One walk over the tree: the scopes, what each binds (and where), and every name loaded."""

    def __init__(self, model: _Model) -> None:
        self.model = model
        self.module = _Scope("module", None)
        self.scope = self.module
        self.statement: ast.stmt | None = None  # the statement being walked
        self._visitors: dict[type, Callable[[Any], None]] = {}
        self.uses: dict[int, list[_Use]] = defaultdict(list)
        self.imports: list[Span] = []

    def run(self, tree: ast.Module) -> None:
        self.visit(tree)

    def bind(self, name: str, kind: BindingKind, span: Span, scope: _Scope | None = None) -> None:
        scope = scope or self.scope
        if name in scope.global_names:
            scope = self.module
        scope.bindings[name].append(_Binding(name, kind, span, scope is self.module))

    @property
    def span(self) -> Span:
        """The statement being walked, as shown for a binding it makes: a `for`/`with` binds in its header."""
        node = self.statement
        if node is None:
            return (1, 1)
        if self.model.children(node) and not isinstance(node, _DEFINITIONS):
            return self.model.header(node)
        return (_start(node), _end(node))

    def visit(self, node: ast.AST) -> None:
        visitor = self._visitors.get(type(node))
        if visitor is None:
            visitor = self._visitors[type(node)] = getattr(self, f"visit_{type(node).__name__}", self.generic_visit)
        if isinstance(node, ast.stmt):
            saved, self.statement = self.statement, node
            visitor(node)
            self.statement = saved
        else:
            visitor(node)

    def generic_visit(self, node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, _LEAVES):
                self.visit(child)

    # scopes

    def _in_scope(self, scope: _Scope, nodes: Iterable[ast.AST]) -> None:
        saved, self.scope = self.scope, scope
        for node in nodes:
            self.visit(node)
        self.scope = saved

    def _arguments(self, args: ast.arguments, scope: _Scope) -> None:
        """Defaults and annotations are evaluated outside; the parameters are bound inside."""
        for default in [*args.defaults, *args.kw_defaults]:
            if default is not None:
                self.visit(default)
        params = [*args.posonlyargs, *args.args, args.vararg, *args.kwonlyargs, args.kwarg]
        for param in params:
            if param is not None:
                if param.annotation is not None:
                    self.visit(param.annotation)
                self.bind(param.arg, "param", self.span, scope)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        if node.returns is not None:
            self.visit(node.returns)
        whole = (_start(node), _end(node))
        small = whole[1] - whole[0] + 1 <= SMALL_DEFINITION_LINES
        self.bind(node.name, "def", whole if small else self.model.header(node))
        scope = _Scope("function", self.scope)
        self._arguments(node.args, scope)
        if self.scope.kind == "class" and (node.args.posonlyargs or node.args.args):
            scope.self_name = (node.args.posonlyargs or node.args.args)[0].arg
        self._in_scope(scope, node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        scope = _Scope("function", self.scope)
        self._arguments(node.args, scope)
        self._in_scope(scope, [node.body])

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for child in [*node.decorator_list, *node.bases, *node.keywords]:
            self.visit(child)
        whole = (_start(node), _end(node))
        small = whole[1] - whole[0] + 1 <= SMALL_DEFINITION_LINES
        self.bind(node.name, "def", whole if small else self.model.header(node))
        self._in_scope(_Scope("class", self.scope), node.body)

    def _comprehension(self, node: ast.AST, results: list[ast.expr]) -> None:
        generators: list[ast.comprehension] = node.generators  # type: ignore[attr-defined]
        self.visit(generators[0].iter)  # the first iterable is evaluated outside
        scope = _Scope("comprehension", self.scope)
        saved, self.scope = self.scope, scope
        for index, generator in enumerate(generators):
            if index:
                self.visit(generator.iter)
            self.visit(generator.target)
            for condition in generator.ifs:
                self.visit(condition)
        for result in results:
            self.visit(result)
        self.scope = saved

    def visit_ListComp(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp) -> None:
        self._comprehension(node, [node.elt])

    visit_SetComp = visit_GeneratorExp = visit_ListComp

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._comprehension(node, [node.key, node.value])

    def visit_Global(self, node: ast.Global) -> None:
        self.scope.global_names.update(node.names)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self.scope.skipped.update(node.names)

    # bindings and uses

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.uses[node.lineno].append(_Use(node.id, node.lineno, self.scope))
        elif isinstance(node.ctx, ast.Store):
            self.bind(node.id, "assign", self.span)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):  # `x += y` reads x too: follow x to its earlier value
            self.uses[node.target.lineno].append(_Use(node.target.id, node.target.lineno, self.scope))
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        owner = self.scope.parent
        if (
            isinstance(node.value, ast.Name)
            and self.scope.self_name == node.value.id
            and owner is not None
            and owner.kind == "class"
        ):
            if isinstance(node.ctx, ast.Load):
                self.uses[node.end_lineno or node.lineno].append(
                    _Use(node.attr, node.end_lineno or node.lineno, self.scope, attribute_of=owner)
                )
            elif isinstance(node.ctx, ast.Store):
                owner.attributes[node.attr].append((_Binding(node.attr, "assign", self.span), self.scope))
        self.generic_visit(node)

    def _import(self, node: ast.Import | ast.ImportFrom) -> None:
        span = (node.lineno, _end(node))
        if self.scope is self.module:
            self.imports.append(span)
        for alias in node.names:
            if alias.name != "*":
                self.bind(alias.asname or alias.name.split(".")[0], "import", span)

    visit_Import = visit_ImportFrom = _import

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.bind(node.name, "assign", (node.lineno, node.lineno))
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.name:
            self.bind(node.name, "assign", self.span)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self.bind(node.name, "assign", self.span)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        if node.rest:
            self.bind(node.rest, "assign", self.span)
        self.generic_visit(node)


# --- small helpers ----------------------------------------------------------------------------------


def _nearest(bindings: list[_Binding], line: int) -> _Binding:
    """The last binding that ends before `line`, else the first one (a loop, or a later definition)."""
    before = [binding for binding in bindings if binding.span[1] < line]
    return before[-1] if before else bindings[0]


def _children(node: ast.AST) -> list[ast.stmt]:
    """The statements directly inside a module or compound statement, in order."""
    children: list[ast.stmt] = []
    for name in ("body", "orelse", "finalbody"):
        block = getattr(node, name, None)
        if isinstance(block, list):
            children.extend(s for s in block if isinstance(s, ast.stmt))
    for clause in [*getattr(node, "handlers", ()), *getattr(node, "cases", ())]:
        children.extend(clause.body)
    return sorted(children, key=_start)


def _start(node: ast.AST) -> int:
    decorators = getattr(node, "decorator_list", ())
    return min([node.lineno, *(d.lineno for d in decorators)])  # type: ignore[attr-defined]


def _end(node: ast.AST) -> int:
    return node.end_lineno or node.lineno  # type: ignore[attr-defined]


def _is_main_guard(test: ast.expr) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.comparators) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    names = {s.id for s in sides if isinstance(s, ast.Name)}
    values = {s.value for s in sides if isinstance(s, ast.Constant)}
    return names == {"__name__"} and values == {"__main__"}


def _is_docstring(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)


def _split_lines(code: str) -> list[str]:
    lines = _LINE_BREAK.split(code)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _cut(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 1] + "…"


def _clip(requested: Sequence[Span], n: int) -> list[Span]:
    clipped: list[Span] = []
    for first, last in requested:
        start, end = max(min(first, last), 1), min(max(first, last), n)
        if start <= end:
            clipped.append((start, end))
    return clipped

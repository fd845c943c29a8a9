"""The text of string expressions, evaluated as far as the guard can without running the code.

``Folder(tree).fold(node)`` gives the string an expression builds from literals: concatenation,
f-strings, ``%`` and ``.format``, ``.join`` of literal lists, common ``str`` methods, slices, and
names assigned exactly once to such an expression. What it cannot evaluate (a parameter, a call)
becomes a placeholder ``__v<hash>__`` derived from the expression's source, so the same
expression gives the same placeholder in the original and in the patch, and the SQL parser sees
an identifier there. ``Folded.exact`` says whether no placeholder was needed.
"""

from __future__ import annotations

import ast
import hashlib
from collections import Counter
from dataclasses import dataclass

MAX_DEPTH = 20
MAX_TEXT = 100_000  # a folded text longer than this is not evaluated (e.g. "x" * 10**9)
_STR_METHODS = frozenset({"upper", "lower", "strip", "lstrip", "rstrip", "replace", "title", "capitalize",
                          "casefold", "swapcase", "removeprefix", "removesuffix"})


@dataclass(frozen=True)
class Folded:
    text: str
    exact: bool  # False when a placeholder stands for something the guard could not evaluate


def placeholder(source: str, salt: str = "") -> str:
    """A name for what the guard cannot evaluate. Salted per check, so a patch cannot forge the
    placeholder of the original's output table with an expression of its own."""
    return f"__v{hashlib.sha256((salt + source).encode('utf-8')).hexdigest()[:24]}__"


class Folder:
    """Evaluates string expressions of one module (see the module docstring)."""

    def __init__(self, tree: ast.AST, salt: str = "") -> None:
        self.salt = salt
        assigned: Counter[str] = Counter()
        values: dict[str, ast.expr] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                assigned[node.id] += 1
            elif isinstance(node, ast.arg):
                assigned[node.arg] += 2  # a parameter: its value is the caller's
            for name in _other_binding_names(node):  # except-as, match captures, imports, mutations
                assigned[name] += 2
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                values[node.targets[0].id] = node.value
        self.constants = {name: value for name, value in values.items() if assigned[name] == 1}
        self.bindings = _bindings(tree)
        self.sources: dict[str, str] = {}  # placeholder -> the expression it stands for

    def _unknown(self, node: ast.AST) -> Folded:
        source = ast.unparse(node)
        # The same expression over names bound differently is another value: a patch that rebinds
        # `output_table` must not make the original's `INSERT INTO {output_table}` look unchanged.
        names = sorted({n.id for n in ast.walk(node) if isinstance(n, ast.Name)})
        name = placeholder(source + "|" + "|".join(f"{n}={self.bindings.get(n, [])}" for n in names), self.salt)
        self.sources[name] = source
        return Folded(name, False)

    def fold(self, node: ast.AST, depth: int = 0) -> Folded:
        """The string ``node`` evaluates to, placeholders for the parts that cannot be evaluated."""
        if depth > MAX_DEPTH:
            return self._unknown(node)
        result = self._fold(node, depth + 1)
        if result is None or len(result.text) > MAX_TEXT:
            return self._unknown(node)
        return result

    def _fold(self, node: ast.AST, depth: int) -> Folded | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str | int | float) \
                and not isinstance(node.value, bool):
            return Folded(str(node.value), True)
        if isinstance(node, ast.JoinedStr):
            # A format spec or conversion ({x:.0}, {x!r}) changes the text: that part is not evaluated.
            parts = [self._unknown(v) if isinstance(v, ast.FormattedValue) and (v.format_spec or v.conversion != -1)
                     else self.fold(v.value if isinstance(v, ast.FormattedValue) else v, depth) for v in node.values]
            return Folded("".join(p.text for p in parts), all(p.exact for p in parts))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.fold(node.left, depth), self.fold(node.right, depth)
            return Folded(left.text + right.text, left.exact and right.exact)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and _is_str(node.left):
            items = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
            args = [self.fold(item, depth) for item in items]
            try:
                text = self.fold(node.left, depth).text % tuple(a.text for a in args)
            except (TypeError, ValueError, KeyError):
                return None
            return Folded(text, all(a.exact for a in args) and self.fold(node.left, depth).exact)
        if isinstance(node, ast.Name) and node.id in self.constants:
            return self.fold(self.constants[node.id], depth)
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice | ast.Constant):
            base = self.fold(node.value, depth)
            try:
                index = (slice(*(_int(x) for x in (node.slice.lower, node.slice.upper, node.slice.step)))
                         if isinstance(node.slice, ast.Slice) else node.slice.value)
                return Folded(base.text[index], base.exact) if base.exact else None
            except (TypeError, ValueError, IndexError):
                return None
        if isinstance(node, ast.Call):
            return self._fold_call(node, depth)
        return None

    def _fold_call(self, node: ast.Call, depth: int) -> Folded | None:
        func = node.func
        if isinstance(func, ast.Name) and func.id == "str" and len(node.args) == 1:
            return self.fold(node.args[0], depth)
        if not isinstance(func, ast.Attribute) or node.keywords and func.attr != "format":
            return None
        base = self.fold(func.value, depth)
        if func.attr == "join" and len(node.args) == 1 and isinstance(node.args[0], ast.List | ast.Tuple):
            parts = [self.fold(e, depth) for e in node.args[0].elts]
            return Folded(base.text.join(p.text for p in parts), base.exact and all(p.exact for p in parts))
        if func.attr == "format":
            args = [self.fold(a, depth) for a in node.args]
            kwargs = {k.arg: self.fold(k.value, depth) for k in node.keywords if k.arg}
            try:
                text = base.text.format(*(a.text for a in args), **{k: v.text for k, v in kwargs.items()})
            except (IndexError, KeyError, ValueError, AttributeError):
                return None
            return Folded(text, base.exact and all(a.exact for a in [*args, *kwargs.values()]))
        if func.attr in _STR_METHODS and base.exact:
            args = [self.fold(a, depth) for a in node.args]
            if not all(a.exact for a in args):
                return None
            try:
                return Folded(getattr(base.text, func.attr)(*(a.text for a in args)), True)
            except (TypeError, ValueError):
                return None
        return None


def _bindings(tree: ast.AST) -> dict[str, list[str]]:
    """Every statement that binds each name, as source text (assignments, loops, parameters, imports...)."""
    found: dict[str, list[str]] = {}

    def bind(target: ast.AST, text: str) -> None:
        for node in ast.walk(target):
            if isinstance(node, ast.Name):
                found.setdefault(node.id, []).append(text)

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                bind(target, ast.unparse(node))
        elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
            bind(node.target, f"{ast.unparse(node.target)} in {ast.unparse(node.iter)}")
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            bind(node.optional_vars, ast.unparse(node.context_expr))
        elif isinstance(node, ast.NamedExpr):
            bind(node.target, ast.unparse(node))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs,
                        *(a for a in (node.args.vararg, node.args.kwarg) if a)]:
                found.setdefault(arg.arg, []).append(ast.unparse(node.args))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                found.setdefault(alias.asname or alias.name.split(".")[0], []).append(ast.unparse(node))
        else:
            for name in _other_binding_names(node):
                found.setdefault(name, []).append(ast.unparse(node) if not isinstance(node, ast.pattern)
                                                  else f"case {name}")
    return found


# Methods that change their object in place: a name whose value they change is bound anew.
MUTATORS = frozenset({"append", "extend", "insert", "update", "setdefault", "pop", "popitem", "clear", "remove",
                      "sort", "reverse", "add", "discard", "__setitem__", "__delitem__"})


def _other_binding_names(node: ast.AST) -> list[str]:
    """Names bound other than by a Name in store context: except-as, match captures, and objects
    changed in place by a mutating method call (``TABLES.update(out=...)``)."""
    if isinstance(node, ast.ExceptHandler) and node.name:
        return [node.name]
    if isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
        return [node.name]
    if isinstance(node, ast.MatchMapping) and node.rest:
        return [node.rest]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATORS:
        base = node.func.value
        while isinstance(base, ast.Attribute | ast.Subscript):
            base = base.value
        if isinstance(base, ast.Name):
            return [base.id]
    return []


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) or isinstance(node, ast.JoinedStr)


def _int(node: ast.AST | None) -> int | None:
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        return -node.operand.value
    raise ValueError("not a constant index")

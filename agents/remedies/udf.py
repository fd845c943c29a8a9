"""Python UDFs: a UDF that fails on a NULL input returns NULL for it instead.

Spark passes SQL NULL to a Python UDF as ``None``; a UDF written for values fails on it with a
``TypeError`` or ``AttributeError`` about ``'NoneType'`` (``'NoneType' object is not
subscriptable``, ``... has no attribute 'upper'``, ``unsupported operand type(s) for +: 'NoneType'
and 'int'``), which Spark reports as ``PYTHON_EXCEPTION`` with the worker's traceback.

The fix finds the UDF from the traceback's frames in the application file (the deepest frame whose
function is a UDF: decorated with ``udf``/``F.udf``/``functions.udf``, or wrapped by ``udf(f)``/
``spark.udf.register(name, f)``) and inserts ``if <param> is None: return None`` at the top of its
body, for the parameters the failing line uses the way the error says (``p[...]`` when not
subscriptable, ``p.attr`` for a missing attribute, any use otherwise), or every parameter when the
failing line is not in the UDF or names none of them. ``pandas_udf`` functions receive Series (a
None check means nothing there) and lambdas have no body to guard: diagnosed, not fixed.

Applicability ``changes-results``: rows with a NULL input now get NULL instead of failing the job,
a choice of meaning (NULL in, NULL out, as Spark's own functions do) that a reviewer should confirm.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import libcst as cst

from agents.record import Diagnosis, Evidence, Patch
from agents.remedies.registry import Rule, finding, lines_with, spark_file, texts

CONDITION = "PYTHON_EXCEPTION"
MARKER = "An exception was thrown from the Python worker"
_NONE_ERROR = re.compile(r"\b(TypeError|AttributeError): (.*NoneType.*)$")
_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')
_ATTRIBUTE = re.compile(r"has no attribute '(\w+)'")
UDF_DECORATORS = frozenset({"udf"})
VECTORISED = frozenset({"pandas_udf", "arrow_udf"})


def none_error(evidence: Evidence) -> tuple[str, str] | None:
    """(exception class, message) of a TypeError/AttributeError about None, from the evidence."""
    for text in reversed(texts(evidence)):
        match = _NONE_ERROR.search(text)
        if match:
            return match.group(1), match.group(2)
    return None


def user_frames(evidence: Evidence, app: str | None) -> list[tuple[int, str]]:
    """(line, function) of the traceback frames in the application file, outermost first."""
    frames: list[tuple[int, str]] = []
    for text in [*texts(evidence), evidence.user_frame or ""]:
        for match in _FRAME.finditer(text):
            file = match.group(1).rsplit("/", 1)[-1]
            if (app is None or file == app) and "/pyspark" not in match.group(1):
                frame = (int(match.group(2)), match.group(3))
                if frame not in frames:
                    frames.append(frame)
    return frames


@dataclass
class _Udf:
    function: ast.FunctionDef
    vectorised: bool


def _decorator_name(node: ast.expr) -> str | None:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Attribute):
        return target.attr
    return target.id if isinstance(target, ast.Name) else None


def _udfs(tree: ast.Module) -> dict[str, _Udf]:
    """The file's UDF functions by name: decorated ones and those wrapped by udf(...)/register(...)."""
    functions = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    found: dict[str, _Udf] = {}
    for function in functions.values():
        names = {_decorator_name(d) for d in function.decorator_list}
        if names & VECTORISED:
            found[function.name] = _Udf(function, True)
        elif names & UDF_DECORATORS:
            found[function.name] = _Udf(function, False)
    for call in ast.walk(tree):
        if not isinstance(call, ast.Call):
            continue
        name = _decorator_name(call)
        wrapped = call.args[:1] if name in UDF_DECORATORS | VECTORISED else call.args[1:2] if name == "register" else []
        for arg in wrapped:
            if isinstance(arg, ast.Name) and arg.id in functions and arg.id not in found:
                found[arg.id] = _Udf(functions[arg.id], name in VECTORISED)
    return found


def _parameters(function: ast.FunctionDef) -> list[str]:
    args = function.args
    return [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]]


def _failing_parameters(udf: ast.FunctionDef, line: int | None, error: tuple[str, str]) -> list[str]:
    """The parameters the failing line uses the way the error says; all of them when it cannot tell."""
    params = _parameters(udf)
    if line is None or not udf.lineno <= line <= (udf.end_lineno or udf.lineno):
        return params
    statement = None
    for node in ast.walk(udf):
        if isinstance(node, ast.stmt) and node is not udf and node.lineno <= line <= (node.end_lineno or node.lineno):
            if statement is None or node.lineno >= statement.lineno:
                statement = node  # the innermost statement holding the line
    if statement is None:
        return params
    kind, message = error
    attribute = _ATTRIBUTE.search(message)
    used: list[str] = []
    for node in ast.walk(statement):
        name = None
        if kind == "AttributeError" and isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if attribute is None or node.attr == attribute.group(1):
                name = node.value.id
        elif "subscriptable" in message and isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            name = node.value.id
        elif kind == "TypeError" and "subscriptable" not in message and isinstance(node, ast.Name):
            name = node.id
        if name in params and name not in used:
            used.append(name)
    return [p for p in params if p in used] or params


def _find(evidence: Evidence, code: str, job: Mapping[str, Any]) -> tuple[_Udf, list[str]] | None:
    error = none_error(evidence)
    if error is None:
        return None
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    udfs = _udfs(tree)
    frames = user_frames(evidence, spark_file(job))
    for line, function in reversed(frames):  # the deepest UDF frame
        udf = udfs.get(function)
        if udf is not None:
            failing_line = line if (line, function) == frames[-1] else None  # else a helper failed
            return udf, _failing_parameters(udf.function, failing_line, error)
    return None


def _diagnose(evidence: Evidence, code: str | None) -> Diagnosis | None:
    error = none_error(evidence)
    if error is None:
        return None
    found = _find(evidence, code, {}) if code else None
    lines = lines_with(evidence, [error[1], MARKER])
    if found is None:
        return finding("code", f"A Python function run by Spark fails on a NULL input ({error[0]}: {error[1]}).",
                       lines, 0.6)
    udf, params = found
    return finding(
        "code",
        f"The Python UDF `{udf.function.name}` fails on a NULL input ({error[0]}: {error[1]}): Spark passes NULL "
        f"as None and the function does not handle it (parameter{'s' if len(params) > 1 else ''} "
        f"{', '.join(params)}).",
        lines, 0.85 if not udf.vectorised else 0.7)


class _GuardNone(cst.CSTTransformer):
    def __init__(self, name: str, params: list[str]) -> None:
        self.name, self.params = name, params
        self.done = False

    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef) -> cst.FunctionDef:
        if self.done or original_node.name.value != self.name or not isinstance(updated_node.body, cst.IndentedBlock):
            return updated_node
        body = list(updated_node.body.body)
        docstring = 1 if body and _is_docstring(body[0]) else 0
        test = " or ".join(f"{p} is None" for p in self.params)
        check = cst.parse_statement(f"if {test}:\n    return None\n")
        self.done = True
        return updated_node.with_changes(
            body=updated_node.body.with_changes(body=[*body[:docstring], check, *body[docstring:]]))


def _is_docstring(statement: cst.BaseStatement) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1 and isinstance(
        statement.body[0], cst.Expr) and isinstance(statement.body[0].value, cst.SimpleString | cst.ConcatenatedString)


def _already_checked(function: ast.FunctionDef, params: list[str]) -> bool:
    """The function already starts by returning for these None parameters: the fix would change nothing."""
    body = function.body[1:] if function.body and isinstance(function.body[0], ast.Expr) and isinstance(
        getattr(function.body[0], "value", None), ast.Constant) else function.body
    first = body[0] if body else None
    return isinstance(first, ast.If) and all(f"{p} is None" in ast.unparse(first.test) for p in params)


def _fix(evidence: Evidence, code: str | None, job_spark: Mapping[str, Any], job: Mapping[str, Any]) -> Patch | None:
    if not code:
        return None
    found = _find(evidence, code, job)
    if found is None:
        return None
    udf, params = found
    if udf.vectorised or not params or _already_checked(udf.function, params):
        return None
    names = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.FunctionDef) and n.name == udf.function.name]
    if len(names) != 1:
        return None  # two functions of that name: which one runs is not ours to guess
    try:
        new_code = cst.parse_module(code).visit(_GuardNone(udf.function.name, params)).code
    except cst.ParserSyntaxError:
        return None
    return Patch(
        kind="code",
        explanation=f"The UDF `{udf.function.name}` now returns NULL when "
        f"{' or '.join(f'`{p}`' for p in params)} is NULL (None) instead of failing; rows with a NULL input get "
        "NULL.",
        code=new_code,
        source="rule",
    )


RULES = (
    Rule(
        code="P111", name="udf-null-input",
        summary="A Python UDF failing on a NULL input returns NULL for it",
        explanation=__doc__ or "",
        conditions=(CONDITION,), markers=(MARKER,), diagnose=_diagnose, fix=_fix, applicability="changes-results",
    ),
)

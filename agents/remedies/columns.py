"""Columns: an unresolved column replaced by the existing column Spark suggests."""

from __future__ import annotations

import ast
import difflib
import io
import re
import tokenize
from collections.abc import Mapping
from typing import Any

from agents.record import Diagnosis, Evidence, Patch
from agents.remedies.registry import Rule, finding, lines_with, spark_file, unquote

MIN_SUGGESTION_SCORE = 0.3  # below this, no suggestion is close enough to apply without a model
MIN_SUGGESTION_MARGIN = 0.1  # the best suggestion must be this far ahead of the next one


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


def _statement_span(tree: ast.Module, line: int) -> tuple[int, int] | None:
    """First and last line of the innermost statement that contains ``line``."""
    span = None
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and node.lineno <= line <= (node.end_lineno or node.lineno):
            if span is None or (node.end_lineno or node.lineno) - node.lineno <= span[1] - span[0]:
                span = (node.lineno, node.end_lineno or node.lineno)
    return span


def _fstring_expressions(literal: str) -> list[tuple[int, int]]:
    """Spans of the ``{...}`` expressions of an f-string literal (Python code, not text)."""
    quote = min((i for i in (literal.find("'"), literal.find('"')) if i >= 0), default=0)
    if "f" not in literal[:quote].lower():
        return []
    spans: list[tuple[int, int]] = []
    depth, start, i = 0, 0, quote
    while i < len(literal):
        ch = literal[i]
        if depth == 0 and literal.startswith(("{{", "}}"), i):
            i += 2
            continue
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append((start, i + 1))
        i += 1
    return spans


def _column_references(code: str, name: str) -> list[tuple[tokenize.TokenInfo, list[tuple[int, int]]]]:
    """Tokens that reference column ``name``: inside string literals as a whole word, or ``x.name``.

    Each entry is (token, [(start, end) offsets of the name inside the token string]).
    """
    word = re.compile(r"(?<![\w$])" + re.escape(name) + r"(?![\w$])")
    found: list[tuple[tokenize.TokenInfo, list[tuple[int, int]]]] = []
    previous: tokenize.TokenInfo | None = None
    tokens = tokenize.generate_tokens(io.StringIO(code).readline)
    for token in tokens:
        if token.type == tokenize.STRING or token.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
            inside = _fstring_expressions(token.string) if token.type == tokenize.STRING else []
            spans = [
                m.span() for m in word.finditer(token.string) if not any(a <= m.start() < b for a, b in inside)
            ]
            if spans:
                found.append((token, spans))
        elif token.type == tokenize.NAME and token.string == name and previous is not None:
            if previous.type == tokenize.OP and previous.string == ".":
                found.append((token, [(0, len(name))]))
        if token.type not in (tokenize.NL, tokenize.COMMENT):
            previous = token
    return found


def replace_column(code: str, old: str, new: str, *, near_line: int | None = None) -> tuple[str, int] | None:
    """``code`` with column references to ``old`` replaced by ``new``, and how many were replaced.

    Only references in the statement around ``near_line`` are replaced when that statement has
    any; otherwise every column reference in the file. Identifiers and comments are never touched.
    None when there is no reference or the result does not parse.
    """
    try:
        tree = ast.parse(code)
        references = _column_references(code, old)
    except (SyntaxError, tokenize.TokenError, ValueError):
        return None
    if near_line is not None:
        span = _statement_span(tree, near_line)
        if span is not None:
            local = [(t, s) for t, s in references if span[0] <= t.start[0] <= span[1]]
            references = local or references
    if not references:
        return None
    lines = code.split("\n")  # the same line breaks tokenize counts
    # Edit from the end so earlier offsets stay valid.
    edits: list[tuple[int, int, int]] = []  # (row, column, length)
    for token, spans in references:
        for start, end in spans:
            # offsets inside a token: map to (row, col) by walking its text
            before = token.string[:start]
            row = token.start[0] + before.count("\n")
            col = (token.start[1] + start) if "\n" not in before else len(before.rsplit("\n", 1)[1])
            edits.append((row, col, end - start))
    for row, col, length in sorted(edits, reverse=True):
        text = lines[row - 1]
        lines[row - 1] = text[:col] + new + text[col + length :]
    result = "\n".join(lines)
    try:
        ast.parse(result)
    except SyntaxError:
        return None
    return result, len(edits)


def _unresolved_column(evidence: Evidence, code: str | None) -> Diagnosis | None:
    cls = evidence.error_class or ""
    if not cls.startswith("UNRESOLVED_COLUMN"):
        return None
    name = unquote(str(evidence.message_parameters.get("objectName", ""))).rsplit(".", 1)[-1]
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


def _fix_unresolved_column(evidence: Evidence, code: str | None, job_spark: Mapping[str, Any],
                           job: Mapping[str, Any]) -> Patch | None:
    if not code:
        return None
    name = unquote(str(evidence.message_parameters.get("objectName", ""))).rsplit(".", 1)[-1]
    best = best_suggestion(name, evidence.suggestions) if name else None
    if best is None or not re.fullmatch(r"[A-Za-z_]\w*", best[0]):
        return None
    target = best[0]
    near = evidence.user_line
    frame_file = (evidence.user_frame or "").split('"')[1:2]
    app = spark_file(job)
    if frame_file and app and frame_file[0].rsplit("/", 1)[-1] != app:
        near = None  # the frame is in another file: its line number means nothing here
    replaced = replace_column(code, name, target, near_line=near)
    if replaced is None:
        return None
    new_code, count = replaced
    return Patch(
        kind="code",
        explanation=f"Replaced the unresolved column `{name}` with `{target}`, the existing column Spark "
        f"suggested ({count} reference{'s' if count != 1 else ''}).",
        code=new_code,
        source="rule",
    )


RULES = (
    Rule(
        code="C101", name="unresolved-column",
        summary="A column that does not exist, replaced by the existing column Spark suggests",
        explanation="UNRESOLVED_COLUMN with Spark's suggestions. The unresolved name is replaced by the "
        "closest suggestion where the code references it as a column (in string literals such as SQL text "
        "or `col(\"...\")`, or as `df.name`), never in other identifiers. No fix when no suggestion is "
        "clearly closest.",
        conditions=("UNRESOLVED_COLUMN",), diagnose=_unresolved_column, fix=_fix_unresolved_column,
        applicability="safe",
    ),
)

"""String literals of a Python file as text: what the remedies' SQL edits read and map back.

A (possibly concatenated or formatted) string literal becomes one text: f-string expressions become
placeholder identifiers, escapes become spaces of the same length, so an offset in the text maps
back to the source of its piece and an edit there touches nothing else of the literal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import libcst as cst

Piece = cst.SimpleString | cst.FormattedStringText


@dataclass
class LiteralText:
    """The text of a (possibly concatenated or formatted) string literal, with where each part came
    from: f-string expressions become placeholder identifiers, escapes become spaces of the same
    length, so offsets in ``text`` map back to the source of each piece."""

    text: str
    pieces: list[tuple[Piece, int, int, int]]  # (node, start in text, end in text, start in node.value)
    placeholders: dict[str, cst.BaseExpression] = field(default_factory=dict)


def _blank_escapes(raw: str, is_raw: bool, is_format: bool) -> str:
    out = raw if is_raw else re.sub(r"\\.", lambda m: " " * len(m.group(0)), raw, flags=re.S)
    return out.replace("{{", "  ").replace("}}", "  ") if is_format else out


def string_text(node: cst.BaseExpression) -> LiteralText | None:
    """The literal text of a string expression, or None when ``node`` is not a string literal."""
    parts: list[cst.BaseExpression] = []

    def flatten(n: cst.BaseExpression) -> bool:
        if isinstance(n, cst.ConcatenatedString):
            return flatten(n.left) and flatten(n.right)
        if isinstance(n, (cst.SimpleString, cst.FormattedString)):
            parts.append(n)
            return True
        return False

    if not flatten(node):
        return None
    text, pieces, holders = "", [], {}
    for part in parts:
        if isinstance(part, cst.SimpleString):
            prefix = part.prefix.lower()
            if "b" in prefix:
                return None
            offset = len(part.prefix) + len(part.quote)
            body = _blank_escapes(part.raw_value, "r" in prefix, False)
            pieces.append((part, len(text), len(text) + len(body), offset))
            text += body
            continue
        assert isinstance(part, cst.FormattedString)
        prefix = part.start.lower().rstrip("'\"")
        for sub in part.parts:
            if isinstance(sub, cst.FormattedStringText):
                body = _blank_escapes(sub.value, "r" in prefix, True)
                pieces.append((sub, len(text), len(text) + len(body), 0))
                text += body
            elif isinstance(sub, cst.FormattedStringExpression):
                holder = f"__healer_{len(holders)}__"
                holders[holder] = sub.expression
                text += holder
    return LiteralText(text, pieces, holders)

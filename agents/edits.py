"""The model's code patch as a list of edits, applied by our code.

The model copies only the lines it changes (Aider's search/replace blocks, SWE-agent's line-range
edits) instead of rewriting the whole file, so it cannot drop or garble the rest of it.

An edit names its lines by ``original`` (the exact lines, copied from the file), by
``start_line``/``end_line`` (1-based, inclusive, as the prompt numbers the file), or by both: then
the range picks which occurrence of the original is meant (the one covering the range, preferring
one that starts at ``start_line``), so a range off by a line or two still finds it.

``apply_edits`` is all-or-nothing: it collects every problem of every edit and raises them together
(``EditsDoNotApply``), so the model can fix them all in one retry. Edits are applied bottom-up, so
every line number is one of the original file.

Tolerated, because models do it: our line-number prefixes ("  12| ") on every line of an original
or a replacement (on an original they also pick the occurrence, like a range), trailing whitespace,
a missing or extra final newline, blank lines around an original (as many are then dropped around
the replacement), and an original indented uniformly more or less than the file (the replacement
is re-indented by the same amount, as Aider does). Anything else that differs is an error naming
the nearest lines, never a guess.

The file's line endings and its final newline (present or absent) are kept as they were.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from agents.errors import EditsDoNotApply, InvalidInput

MAX_EDITS = 20      # per answer: more is a rewrite, which the model should not do edit by edit
NEAR_MATCH = 0.6    # difflib ratio from which lines are named as the nearest to an original not found
_SHOWN = 60         # characters of a line quoted in a message
_NUMBER = re.compile(r"^[ \t]*(\d+)\| ?")  # the prefix agents.prompts.number_lines writes


class Edit(BaseModel):
    """One edit of the application file."""

    original: str = Field(
        default="", description="The exact lines to replace, copied from the file, without line numbers."
    )
    start_line: int | None = Field(
        default=None, description="First line to replace (1-based, as numbered in the file shown)."
    )
    end_line: int | None = Field(default=None, description="Last line to replace (inclusive); default start_line.")
    replacement: str = Field(
        description='The new lines ("" deletes). To insert, repeat a neighbouring line with the new ones.'
    )


@dataclass(frozen=True)
class _Hit:
    """Where an original was found: lines [start, end) (0-based) and the indentation to fix."""

    start: int
    end: int
    remove: str = ""  # indentation to take from each replacement line (the original had more)
    add: str = ""     # indentation to give each replacement line (the original had less)


@dataclass(frozen=True)
class _Change:
    number: int  # 1-based, as the messages name it
    start: int
    end: int
    lines: list[str]


def apply_edits(code: str, edits: Sequence[Edit]) -> str:
    """``code`` with every edit applied, or ``EditsDoNotApply`` listing every problem (none applied)."""
    if not edits:
        raise EditsDoNotApply(["no edits given; give at least one"])
    if len(edits) > MAX_EDITS:
        raise EditsDoNotApply([f"{len(edits)} edits; at most {MAX_EDITS}: merge neighbouring ones"])
    texts, ends = _file_lines(code)
    keys = [t.rstrip() for t in texts]
    problems: list[str] = []
    changes: list[_Change] = []
    for number, edit in enumerate(edits, start=1):
        change = _resolve(number, edit, texts, keys, problems)
        if change is not None:
            changes.append(change)
    changes.sort(key=lambda c: c.start)
    for i, first in enumerate(changes):
        for second in changes[i + 1:]:
            if second.start < first.end:
                a, b = sorted((first, second), key=lambda c: c.number)
                problems.append(f"edits {a.number} and {b.number} overlap ({_lines(a.start, a.end)} and "
                                f"{_lines(b.start, b.end)}); merge them into one edit")
    if problems:
        raise EditsDoNotApply(problems)

    eol = Counter(e for e in ends if e).most_common(1)[0][0] if any(ends) else "\n"
    for change in reversed(changes):  # bottom-up: the line numbers above stay the original's
        texts[change.start:change.end] = change.lines
        ends[change.start:change.end] = [eol] * len(change.lines)
    if ends and code and not code.endswith("\n"):
        ends[-1] = ""  # the file had no final newline: it still has none
    result = "".join(t + e for t, e in zip(texts, ends, strict=True))
    if result == code:
        raise EditsDoNotApply(["the edits change nothing; the replacement must differ from the original lines"])
    return result


def edits_from_files(original: str, fixed: str, context: int = 1) -> list[Edit]:
    """Search/replace edits that turn ``original`` into ``fixed`` under ``apply_edits``.

    One edit per difflib change, with ``context`` unchanged lines around it, widened further until
    its original lines occur once in the file; changes whose lines would overlap become one edit.
    Line endings and the final newline stay the original's (edits cannot change them).
    """
    if context < 0:
        raise InvalidInput(f"context must be 0 or more, not {context}")
    old, new = _file_lines(original)[0], _file_lines(fixed)[0]
    groups = [[i1, i2, j1, j2] for tag, i1, i2, j1, j2
              in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes() if tag != "equal"]
    if not groups:
        return []
    if not old:
        raise InvalidInput("an empty file cannot be edited: an edit replaces lines that exist")
    keys = [t.rstrip() for t in old]
    while True:
        spans = [_widen(keys, g[0], g[1], context) for g in groups]
        pair = next(((i, j) for i in range(len(spans)) for j in range(i + 1, len(spans))
                     if spans[j][0] < spans[i][1] and spans[i][0] < spans[j][1]), None)
        if pair is None:
            break
        i, j = pair  # groups are in file order: i..j become one change
        groups[i:j + 1] = [[groups[i][0], groups[j][1], groups[i][2], groups[j][3]]]
    return [Edit(original=_block(old[a:b]), replacement=_block(old[a:i1] + new[j1:j2] + old[i2:b]))
            for (i1, i2, j1, j2), (a, b) in zip(groups, spans, strict=True)]


# --- one edit -----------------------------------------------------------------------------------


def _resolve(number: int, edit: Edit, texts: list[str], keys: list[str], problems: list[str]) -> _Change | None:
    """The lines an edit replaces and its new lines; a problem is appended instead when it cannot apply."""
    n = len(texts)
    replacement, _ = _strip_numbers(_split(edit.replacement))
    given, hint = _strip_numbers(_split(edit.original))
    given = [line.rstrip() for line in given]

    span: tuple[int, int] | None = None
    if edit.start_line is None and edit.end_line is not None:
        problems.append(f"edit {number}: end_line without start_line; give start_line too")
        return None
    if edit.start_line is not None:
        start, end = edit.start_line, edit.end_line if edit.end_line is not None else edit.start_line
        if start > end:
            problems.append(f"edit {number}: start_line {start} is after end_line {end}; give start_line <= end_line")
            return None
        if start < 1 or end > n:
            where = _lines(start - 1, end)
            problems.append(f"edit {number}: {where} {'is' if start == end else 'are'} outside the file "
                            f"(lines 1-{n}); give 1 <= start_line <= end_line <= {n}")
            return None
        span = (start - 1, end)

    if not any(given):
        if span is None:
            problems.append(f"edit {number}: give its original lines (copied from the file) or start_line/end_line")
            return None
        return _Change(number, span[0], span[1], replacement)

    lead = next(i for i, line in enumerate(given) if line)
    trail = next(i for i, line in enumerate(reversed(given)) if line)
    trimmed = given[lead:len(given) - trail]
    attempts = [(given, False, 0, 0)] if trimmed != given else []
    attempts += [(trimmed, False, lead, trail), (trimmed, True, lead, trail)]
    found: list[_Hit] = []
    for block, reindent, cut_lead, cut_trail in attempts:
        hits = _find(keys, block, reindent)
        if not hits:
            continue
        found = found or hits
        if span is not None:
            chosen = _pick(hits, span)
            if not chosen:
                continue  # perhaps a more tolerant attempt finds it in the range
        else:
            chosen = (_pick(hits, hint) if hint and len(hits) > 1 else []) or hits
        if len(chosen) > 1:
            where = ", ".join(str(h.start + 1) for h in chosen)
            problems.append(f"edit {number}: its original lines occur {len(chosen)} times (at lines {where}); "
                            "give start_line/end_line or more lines around the change")
            return None
        return _change(number, chosen[0], replacement, cut_lead, cut_trail, problems)

    if span is not None:
        problems.append(f"edit {number}: its original lines are not at {_lines(*span)} "
                        f"({_first_difference(keys, span, trimmed)}"
                        + (f"; they are at line {', '.join(str(h.start + 1) for h in found)}" if found else "")
                        + "); fix start_line/end_line or the original")
    else:
        problems.append(f"edit {number}: its original lines are not in the file (first line: "
                        f"'{_show(trimmed[0])}'){_nearest(keys, trimmed)}; copy them exactly from the file")
    return None


def _change(number: int, hit: _Hit, replacement: list[str], cut_lead: int, cut_trail: int,
            problems: list[str]) -> _Change | None:
    lines = list(replacement)
    # blank lines dropped around the original are dropped around the replacement too
    while cut_lead and lines and not lines[0].strip():
        lines.pop(0)
        cut_lead -= 1
    while cut_trail and lines and not lines[-1].strip():
        lines.pop()
        cut_trail -= 1
    if hit.add or hit.remove:
        shifted = []
        for line in lines:
            if not line.strip():
                shifted.append(line)
            elif line.startswith(hit.remove):
                shifted.append(hit.add + line[len(hit.remove):])
            else:
                problems.append(f"edit {number}: its original lines are indented {len(hit.remove)} more than "
                                f"the file's but its replacement line '{_show(line)}' is not; indent as the file does")
                return None
        lines = shifted
    return _Change(number, hit.start, hit.end, lines)


def _find(keys: list[str], block: list[str], reindent: bool) -> list[_Hit]:
    """Every place ``block`` matches (lines compared without trailing whitespace)."""
    m = len(block)
    hits = []
    for i in range(len(keys) - m + 1):
        if not reindent:
            if keys[i] == block[0] and keys[i:i + m] == block:
                hits.append(_Hit(i, i + m))
        else:
            shift = _uniform_shift(keys[i:i + m], block)
            if shift is not None:
                hits.append(_Hit(i, i + m, *shift))
    return hits


def _uniform_shift(window: list[str], block: list[str]) -> tuple[str, str] | None:
    """(remove, add): the one indentation change that turns ``block`` into ``window``, if there is one."""
    shift: tuple[str, str] | None = None
    for have, want in zip(window, block, strict=True):
        if not want.strip() or not have.strip():
            if want.strip() or have.strip():
                return None
            continue
        have_indent, want_indent = _indent(have), _indent(want)
        if have[len(have_indent):] != want[len(want_indent):]:
            return None
        if have_indent.endswith(want_indent):
            this = ("", have_indent[:len(have_indent) - len(want_indent)])
        elif want_indent.endswith(have_indent):
            this = (want_indent[:len(want_indent) - len(have_indent)], "")
        else:
            return None
        if shift is None:
            shift = this
        elif this != shift:
            return None
    return shift


def _pick(hits: list[_Hit], span: tuple[int, int]) -> list[_Hit]:
    """The hits a range points at: the one spanning it exactly, else starting at it, else covering part of it."""
    start, end = span
    for keep in (lambda h: (h.start, h.end) == span, lambda h: h.start == start,
                 lambda h: h.start < end and start < h.end):
        chosen = [h for h in hits if keep(h)]
        if chosen:
            return chosen
    return []


# --- messages -----------------------------------------------------------------------------------


def _nearest(keys: list[str], block: list[str]) -> str:
    """Where the lines most like ``block`` are (difflib), as the end of a message; "" when none is near."""
    m = len(block)
    if m > len(keys):
        return ""
    wanted = "\n".join(line.strip() for line in block)
    matcher = difflib.SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(wanted)
    best, best_at = NEAR_MATCH, -1
    for i in range(len(keys) - m + 1):
        matcher.set_seq1("\n".join(line.strip() for line in keys[i:i + m]))
        if matcher.real_quick_ratio() >= best and matcher.quick_ratio() >= best:
            ratio = matcher.ratio()
            if ratio > best or (ratio == best and best_at < 0):
                best, best_at = ratio, i
    if best_at < 0:
        return ""
    if m == 1:
        return f"; the nearest is line {best_at + 1}: '{_show(keys[best_at])}'"
    for k in range(m):
        if keys[best_at + k].strip() != block[k].strip():
            return f"; the nearest are {_lines(best_at, best_at + m)}, where line {best_at + k + 1} " \
                   f"reads '{_show(keys[best_at + k])}'"
    return f"; {_lines(best_at, best_at + m)} differ from them only in indentation"


def _first_difference(keys: list[str], span: tuple[int, int], block: list[str]) -> str:
    start, end = span
    for k in range(end - start):
        if k >= len(block) or keys[start + k].strip() != block[k].strip():
            return f"line {start + k + 1} reads '{_show(keys[start + k])}'"
    return f"line {start + 1} reads '{_show(keys[start])}'"


def _lines(start: int, end: int) -> str:
    """0-based [start, end) as the 1-based words a message uses."""
    return f"line {start + 1}" if end - start == 1 else f"lines {start + 1}-{end}"


def _show(line: str) -> str:
    text = line.strip()
    return text if len(text) <= _SHOWN else text[:_SHOWN - 3] + "..."


# --- text ---------------------------------------------------------------------------------------


def _file_lines(code: str) -> tuple[list[str], list[str]]:
    """The file's lines and each one's ending ("\\n", "\\r\\n", or "" for a last line without one).

    Split on "\\n" only: ``str.splitlines`` would also split on form feeds and other characters
    that Python source may hold inside a line.
    """
    pieces = code.split("\n")
    last = pieces.pop()  # what follows the final "\n": "" when the file ends with one
    texts, ends = [], []
    for piece in pieces:
        crlf = piece.endswith("\r")
        texts.append(piece[:-1] if crlf else piece)
        ends.append("\r\n" if crlf else "\n")
    if last:
        texts.append(last)
        ends.append("")
    return texts, ends


def _split(text: str) -> list[str]:
    """A block's lines: "" is none, and a final newline ends the last line without adding one."""
    if not text:
        return []
    text = text.replace("\r\n", "\n")
    return (text[:-1] if text.endswith("\n") else text).split("\n")


def _strip_numbers(lines: list[str]) -> tuple[list[str], tuple[int, int] | None]:
    """Lines without our line-number prefixes when every non-blank line has one, and the range they name."""
    matches = [_NUMBER.match(line) for line in lines]
    numbered = [m for line, m in zip(lines, matches, strict=True) if line.strip()]
    if not numbered or not all(numbered):
        return lines, None
    stripped = [line[m.end():] if m else line for line, m in zip(lines, matches, strict=True)]
    first, last = int(numbered[0].group(1)), int(numbered[-1].group(1))  # type: ignore[union-attr]
    return stripped, ((first - 1, last) if 1 <= first <= last else None)


def _indent(line: str) -> str:
    return line[:len(line) - len(line.lstrip())]


def _block(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def _widen(keys: list[str], start: int, end: int, context: int) -> tuple[int, int]:
    """[start, end) with ``context`` lines around it, then the fewest more (balanced, below first)
    that make it hold a non-blank line and occur once in the file."""
    n = len(keys)
    start, end = max(0, start - context), min(n, end + context)
    for extra in range(n + 1):
        for above in sorted(range(extra + 1), key=lambda k: abs(2 * k - extra)):
            a, b = start - above, end + extra - above
            if a >= 0 and b <= n and any(keys[a:b]) and len(_find(keys, keys[a:b], False)) == 1:
                return a, b
    return 0, n

"""Filtering, ordering and pagination of list calls (cde-api.md §3.6).

`filter=<field>[<op>]<value>`, repeatable; all filters are ANDed, and one value may itself hold
several conditions joined by ` AND `. Fields are dotted paths into the listed objects
(`spark.spec.file`); each path segment matches a key exactly or, failing that, case-insensitively
(`ID` finds `id`). Operators:

    eq noteq lt lte gt gte   compare; numbers as numbers, booleans as true/false, text as text
    in notin                 comma-separated list of values compared with `eq`
    like                     SQL LIKE, case-sensitive: `%` any run of characters, `_` one character
    rlike                    RE2 regular expression (Python `re` syntax without backreferences or
                             lookaround: those are a 400), searched anywhere in the value

Timestamps (RFC 3339 text such as `2023-11-29T00:59:11Z`) compared with a prefix of one
(`started[gte]2023-11-29`, `started[lt]2023-11-29T03`) are cut to the prefix's length first, so
`eq` matches the whole day or hour and `lte` includes it. An object without the field matches only
`noteq` and `notin`.

[I] `meta.count` is the number of items on the returned page (`hasNext` tells whether more follow);
`limit` defaults to 20, `offset` to 0, `orderasc` to true; both must fit a 64-bit integer (Go's int).

Where: `apply` filters, orders and pages a list of items in Python; the store answers list calls in
SQL with the same semantics (queries.py; tests/cde_local/test_store_queries.py compares the two),
and falls back to `apply` where SQL cannot answer the same.

Robustness: `like` and `rlike` run on RE2, whose matching time is linear in the text, so a pattern
such as `^(a+)+$` cannot stall the server (Python's backtracking `re` takes exponential time on it,
holding the GIL). A call holds at most MAX_CONDITIONS conditions, a like/rlike pattern at most
MAX_PATTERN_CHARS characters and an in/notin list at most MAX_LIST_VALUES values (400 beyond).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import re2

from .errors import BadRequest

OPERATORS = ("eq", "noteq", "lt", "lte", "gt", "gte", "in", "notin", "like", "rlike")
DEFAULT_LIMIT = 20
MAX_CONDITIONS = 50  # each is tested against every listed item
MAX_PATTERN_CHARS = 1000  # like/rlike: RE2 is linear in the text, but its program grows with the pattern
MAX_LIST_VALUES = 1000  # in/notin
MAX_INT64 = 2**63 - 1  # limit/offset: CDE's Go server parses them as int


def _re2_options(dot_nl: bool) -> Any:
    options = re2.Options()
    options.log_errors = False  # a bad pattern is the caller's 400, not a line on our stderr
    options.dot_nl = dot_nl
    return options


_RLIKE_OPTIONS = _re2_options(dot_nl=False)  # `.` stops at a newline, as in Python's re
_DOTALL_OPTIONS = _re2_options(dot_nl=True)  # like and filter parsing: `.` matches newlines too
# RE2 here too: with Python's re these take quadratic time on long runs of spaces.
_FILTER = re2.compile(r"^\s*([A-Za-z0-9_.\-]+)\[([A-Za-z]+)\](.*?)\s*$", _DOTALL_OPTIONS)
_AND = re2.compile(r"\s+AND\s+", _DOTALL_OPTIONS)

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_TIME_PREFIX = re.compile(r"^\d{4}(-\d{2}(-\d{2}(T\d{2}(:\d{2}(:\d{2}Z?)?)?)?)?)?$")
_MISSING = object()


@dataclass(frozen=True)
class Filter:
    """One condition `field[op]value`."""

    field: str
    op: str
    value: str

    def matches(self, item: Mapping[str, Any]) -> bool:
        actual = lookup(item, self.field)
        if actual is _MISSING or actual is None:
            return self.op in ("noteq", "notin")
        if self.op == "in":
            return any(_compare(actual, v, "eq", self) for v in split_list(self.value))
        if self.op == "notin":
            return not any(_compare(actual, v, "eq", self) for v in split_list(self.value))
        if self.op == "like":
            return _like_regex(self.value, str(self)).fullmatch(as_text(actual)) is not None
        if self.op == "rlike":
            return _rlike_regex(self.value, str(self)).search(as_text(actual)) is not None
        return _compare(actual, self.value, self.op, self)

    def __str__(self) -> str:
        return f"{self.field}[{self.op}]{self.value}"


@dataclass(frozen=True)
class ListQuery:
    """The parsed list parameters of one call."""

    filters: tuple[Filter, ...] = ()
    orderby: str = ""
    orderasc: bool = True
    limit: int = DEFAULT_LIMIT
    offset: int = 0


def parse_filters(raw_values: Sequence[str]) -> tuple[Filter, ...]:
    """Parse repeated `filter` parameters (each may hold `A AND B`); BadRequest when malformed."""
    parsed: list[Filter] = []
    for raw in raw_values:
        if not raw.strip():
            continue
        for part in _AND.split(raw.strip()):
            match = _FILTER.match(part)
            if not match:
                raise BadRequest(f"invalid filter '{part}': expected <field>[<operator>]<value>")
            field, op, value = match.group(1), match.group(2).lower(), match.group(3)
            if op not in OPERATORS:
                raise BadRequest(
                    f"invalid filter '{part}': unknown operator '{op}'; known: {', '.join(OPERATORS)}"
                )
            if len(parsed) == MAX_CONDITIONS:
                raise BadRequest(f"too many filter conditions: at most {MAX_CONDITIONS} per call")
            parsed.append(_checked(Filter(field, op, value)))
    return tuple(parsed)


def _checked(condition: Filter) -> Filter:
    """Refuse oversized values and bad patterns at parse time, so they are a 400 even on an empty list."""
    if condition.op in ("like", "rlike"):
        if len(condition.value) > MAX_PATTERN_CHARS:
            raise BadRequest(
                f"invalid filter '{condition.field}[{condition.op}]...': the pattern has "
                f"{len(condition.value)} characters, at most {MAX_PATTERN_CHARS} are allowed"
            )
        compile_pattern = _like_regex if condition.op == "like" else _rlike_regex
        compile_pattern(condition.value, str(condition))
    if condition.op in ("in", "notin") and condition.value.count(",") >= MAX_LIST_VALUES:
        raise BadRequest(
            f"invalid filter '{condition.field}[{condition.op}]...': at most {MAX_LIST_VALUES} values"
        )
    return condition


def parse_list_query(params: Mapping[str, Any], filters: Sequence[str], default_orderby: str) -> ListQuery:
    """Build a ListQuery from query parameters (`params` maps names to single string values)."""
    return ListQuery(
        filters=parse_filters(filters),
        orderby=(params.get("orderby") or default_orderby).strip(),
        orderasc=_parse_bool("orderasc", params.get("orderasc"), default=True),
        limit=_parse_int("limit", params.get("limit"), default=DEFAULT_LIMIT, minimum=1),
        offset=_parse_int("offset", params.get("offset"), default=0, minimum=0),
    )


def apply(
    items: Sequence[Mapping[str, Any]], query: ListQuery, tiebreak: str
) -> tuple[list[Any], dict[str, Any]]:
    """Filter, order and page `items`; return the page and the `meta` envelope."""
    kept = [item for item in items if all(f.matches(item) for f in query.filters)]
    kept.sort(key=lambda item: _sort_key(lookup(item, tiebreak)))
    kept.sort(key=lambda item: _sort_key(lookup(item, query.orderby)), reverse=not query.orderasc)
    page = kept[query.offset : query.offset + query.limit]
    meta = {
        "hasNext": query.offset + len(page) < len(kept),
        "limit": query.limit,
        "offset": query.offset,
        "count": len(page),
    }
    return page, meta


def parse_bool_param(name: str, raw: str | None, default: bool) -> bool:
    return _parse_bool(name, raw, default)


def lookup(item: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted path, or _MISSING. Each segment: exact key, else case-insensitive."""
    current: Any = item
    for segment in dotted.split("."):
        if not isinstance(current, Mapping):
            return _MISSING
        if segment in current:
            current = current[segment]
            continue
        folded = [key for key in current if isinstance(key, str) and key.lower() == segment.lower()]
        if not folded:
            return _MISSING
        current = current[folded[0]]
    return current


def _compare(actual: Any, operand: str, op: str, source: Filter) -> bool:
    left: Any
    right: Any
    if isinstance(actual, bool):
        left, right = actual, operand.strip().lower() == "true"
        if operand.strip().lower() not in ("true", "false"):
            raise BadRequest(f"invalid filter '{source}': '{operand}' is not true or false")
    elif isinstance(actual, int | float):
        try:
            left, right = float(actual), float(operand)
        except ValueError:
            raise BadRequest(f"invalid filter '{source}': '{operand}' is not a number") from None
    elif isinstance(actual, str) and _TIMESTAMP.match(actual) and _TIME_PREFIX.match(operand):
        left, right = actual[: len(operand)], operand
    else:
        left, right = as_text(actual), operand
    if op == "eq":
        return bool(left == right)
    if op == "noteq":
        return bool(left != right)
    if isinstance(left, bool):
        left, right = int(left), int(right)
    if op == "lt":
        return bool(left < right)
    if op == "lte":
        return bool(left <= right)
    if op == "gt":
        return bool(left > right)
    if op == "gte":
        return bool(left >= right)
    raise BadRequest(f"invalid filter '{source}': unknown operator '{op}'")  # unreachable after parsing


def split_list(value: str) -> list[str]:
    """The values of an in/notin operand, as compared."""
    return [part.strip() for part in value.split(",")]


def is_timestamp(value: str) -> bool:
    """Whether a stored text compares as a timestamp (cut to the length of a date prefix)."""
    return _TIMESTAMP.match(value) is not None


def is_time_prefix(operand: str) -> bool:
    """Whether an operand is a date prefix, which cuts the timestamps it is compared with."""
    return _TIME_PREFIX.match(operand) is not None


def like_matches(pattern: str, value: Any) -> bool:
    """`value[like]pattern` for a present value: the same RE2 program as a filter (the store's SQL)."""
    return _like_regex(pattern, pattern).fullmatch(as_text(value)) is not None


def rlike_matches(pattern: str, value: Any) -> bool:
    """`value[rlike]pattern` for a present value (the store's SQL)."""
    return _rlike_regex(pattern, pattern).search(as_text(value)) is not None


def as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True)


@functools.lru_cache(maxsize=256)
def _like_regex(pattern: str, source: str) -> Any:
    """SQL LIKE as an RE2 program (linear time, unlike a backtracking `.*a.*a.*b`)."""
    parts = [".*" if char == "%" else "." if char == "_" else re2.escape(char) for char in pattern]
    return _re2_compile("".join(parts), _DOTALL_OPTIONS, source)


@functools.lru_cache(maxsize=256)
def _rlike_regex(pattern: str, source: str) -> Any:
    return _re2_compile(pattern, _RLIKE_OPTIONS, source)


def _re2_compile(pattern: str, options: Any, source: str) -> Any:
    """A compiled RE2 pattern; BadRequest for bad or unsupported syntax, or a too large program."""
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        raise BadRequest(
            f"invalid filter '{source}': bad regular expression: {reason} "
            "(RE2 syntax: no backreferences or lookaround)"
        ) from None


def _sort_key(value: Any) -> tuple[int, Any]:
    """Missing values first, then numbers, then text; mixed types never compare across ranks."""
    if value is _MISSING or value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (1, value)
    return (2, as_text(value))


def _parse_bool(name: str, raw: str | None, default: bool) -> bool:
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise BadRequest(f"invalid query parameter {name}={raw!r}: expected true or false")


def _parse_int(name: str, raw: str | None, default: int, minimum: int) -> int:
    if raw is None or raw == "":
        return default
    text = raw.strip()
    digits = text[1:] if text[:1] in ("+", "-") else text
    # ASCII digits only (int() also takes '1_0' and '١'), and what Go's int holds, as CDE parses it.
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 19) or int(text) > MAX_INT64:
        raise BadRequest(f"invalid query parameter {name}={raw[:40]!r}: expected a 64-bit integer")
    value = int(text)
    if value < minimum:
        raise BadRequest(f"invalid query parameter {name}={raw!r}: must be >= {minimum}")
    return value

"""Filtering, ordering and pagination of list calls (cde-api.md §3.6).

`filter=<field>[<op>]<value>`, repeatable; all filters are ANDed, and one value may itself hold
several conditions joined by ` AND `. Fields are dotted paths into the listed objects
(`spark.spec.file`); each path segment matches a key exactly or, failing that, case-insensitively
(`ID` finds `id`). Operators:

    eq noteq lt lte gt gte   compare; numbers as numbers, booleans as true/false, text as text
    in notin                 comma-separated list of values compared with `eq`
    like                     SQL LIKE, case-sensitive: `%` any run of characters, `_` one character
    rlike                    Python regular expression, searched anywhere in the value

Timestamps (RFC 3339 text such as `2023-11-29T00:59:11Z`) compared with a prefix of one
(`started[gte]2023-11-29`, `started[lt]2023-11-29T03`) are cut to the prefix's length first, so
`eq` matches the whole day or hour and `lte` includes it. An object without the field matches only
`noteq` and `notin`.

[I] `meta.count` is the number of items on the returned page (`hasNext` tells whether more follow);
`limit` defaults to 20, `offset` to 0, `orderasc` to true.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import BadRequest

OPERATORS = ("eq", "noteq", "lt", "lte", "gt", "gte", "in", "notin", "like", "rlike")
DEFAULT_LIMIT = 20

_FILTER = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\[([A-Za-z]+)\](.*?)\s*$", re.DOTALL)
_AND = re.compile(r"\s+AND\s+")
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
            return any(_compare(actual, v, "eq", self) for v in _split_list(self.value))
        if self.op == "notin":
            return not any(_compare(actual, v, "eq", self) for v in _split_list(self.value))
        if self.op == "like":
            return _like_regex(self.value).fullmatch(_as_text(actual)) is not None
        if self.op == "rlike":
            try:
                return re.search(self.value, _as_text(actual)) is not None
            except re.error as exc:
                raise BadRequest(f"invalid filter '{self}': bad regular expression: {exc}") from None
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
            parsed.append(Filter(field, op, value))
    return tuple(parsed)


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
        left, right = _as_text(actual), operand
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


def _split_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",")]


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True)


def _like_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    for char in pattern:
        if char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def _sort_key(value: Any) -> tuple[int, Any]:
    """Missing values first, then numbers, then text; mixed types never compare across ranks."""
    if value is _MISSING or value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (1, value)
    return (2, _as_text(value))


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
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"invalid query parameter {name}={raw!r}: expected an integer") from None
    if value < minimum:
        raise BadRequest(f"invalid query parameter {name}={raw!r}: must be >= {minimum}")
    return value

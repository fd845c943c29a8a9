"""List calls in SQL: the columns stored beside each JSON document, and filters.py's conditions
translated into parameterised WHERE clauses that select exactly the rows filters.py keeps.

Columns. Each listed table keeps, next to `doc`, one column per commonly filtered or ordered field
(`COLUMNS` below), written by the store on every insert and update with the value
`filters.lookup(doc, path)` gives: the same key matching (exact, else case-insensitive) and the same
JSON types as the Python filters see. (SQLite's `json_extract` in a generated column would match keys
case-sensitively and turn JSON true/false into 1/0.) A column holds NULL (missing or null), or values
of one kind: `int` columns integers, `text` columns strings.

`python_only` marks a row whose document SQL cannot answer for the way filters.py does: two keys
along a column's path that differ only in case, a value of another kind (a boolean, a float, an
object, an integer beyond 2**53), a text with NUL or a lone surrogate, or one Python's `\\d` takes for
a timestamp and the ASCII GLOB does not (`٢٠٢٣-...`, a trailing newline). Documents the backend
writes have none of these (its request shapes fix these fields' types); when a table holds such a
row, the store lists that table the old way (every document decoded, filters.py), so answers stay
exact. Its default is 1, so a row written by code that knows nothing of the columns is one too.

Conditions on a column translate exactly:
- `eq noteq lt lte gt gte`: int columns compare with the operand as a float (SQLite compares
  integers with reals exactly, and integers up to 2**53 are what Python's float() makes of them);
  text columns compare by code point (BINARY on UTF-8). A date-prefix operand (`started[gte]2023-11`)
  compares with the first len(operand) characters of the timestamps (GLOB-checked) and with the
  whole of other texts, with an index range around it.
- `in notin`: `IN (SELECT value FROM json_each(?))`, one parameter whatever the list's length.
- `like rlike`: SQL functions running filters.py's RE2 programs on the column (linear time; SQLite's
  own GLOB backtracks on `%a%a%a...`), plus an index range for a literal prefix of a like pattern.
- A missing value matches only noteq and notin; in SQL: `col IS NULL OR ...`.

Errors. filters.py raises BadRequest (`'abc' is not a number`) at the first row, in the table's key
order, whose check of a condition meets a number and a non-numeric operand, and only if the row met
every condition before it. `raising()` selects the rows that would raise; the store checks them in
key order with filters.py, which raises the same error.

Conditions on other fields (`spark.spec.file`) stay in Python, on the rows the column conditions
leave. like/rlike there cannot raise, so pages are still read in SQL order until full; a compare
there may raise on any row, so the store then decodes every row that reaches it (`reach`) and lets
filters.py do all. An order on a field without a column is done in Python over the rows the
conditions leave.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from . import filters
from .filters import Filter, ListQuery

Kind = Literal["int", "text"]

MAX_EXACT_INT = 2**53  # beyond it Python's float(int) rounds, SQLite's int/real comparison does not
TIMESTAMP_LEN = len("2023-11-29T00:59:11Z")
TIMESTAMP_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z"
_ASCII_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_SURROGATE = re.compile("[\ud800-\udfff]")
ABOVE_ASCII = "\x80"  # timestamps are ASCII: every one starting with `p` sorts before p + "\x80"
SQL_LIKE = "cde_like"  # SQL functions the store registers: (pattern, value) -> 0/1
SQL_RLIKE = "cde_rlike"
_OPERATORS = {"eq": "=", "noteq": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
RAISING_OPS = ("eq", "noteq", "lt", "lte", "gt", "gte", "in", "notin")  # those that can meet a bad number


@dataclass(frozen=True)
class Column:
    name: str  # SQL column
    path: str  # the API field: a dotted path into the document
    kind: Kind
    written: Literal["value", "raw", "key"] = "value"  # raw: doc[path] as before (NOT NULL); key: the key

    @property
    def sql(self) -> str:
        return f'"{self.name}"'


@dataclass(frozen=True)
class Table:
    name: str
    key: str  # primary key column and path (`id`, `name`): the tiebreak of every order
    columns: tuple[Column, ...]
    indexed: tuple[str, ...]  # columns with an index (with the key after them)

    def column_for(self, field: str) -> Column | None:
        """The column filters.lookup reads for `field`: same segments, each equal ignoring case."""
        segments = field.split(".")
        for column in self.columns:
            path = column.path.split(".")
            if len(path) == len(segments) and all(
                a.lower() == b.lower() for a, b in zip(path, segments, strict=True)
            ):
                return column
        return None

    @property
    def written(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.written != "key")


RUNS = Table(
    "runs",
    "id",
    (
        Column("id", "id", "int", "key"),
        Column("job", "job", "text", "raw"),
        Column("status", "status", "text", "raw"),
        Column("type", "type", "text"),
        Column("user", "user", "text"),
        Column("started", "started", "text"),
        Column("ended", "ended", "text"),
    ),
    indexed=("job", "status", "type", "user", "started", "ended"),
)
JOBS = Table(
    "jobs",
    "name",
    (
        Column("name", "name", "text", "key"),
        Column("type", "type", "text"),
        Column("created", "created", "text"),
        Column("modified", "modified", "text"),
        Column("last_used", "lastUsed", "text"),
        Column("spark_file", "spark.file", "text"),
        Column("spark_executor_cores", "spark.executorCores", "int"),
    ),
    indexed=("type", "created", "modified", "last_used", "spark_file", "spark_executor_cores"),
)
RESOURCES = Table(
    "resources",
    "name",
    (
        Column("name", "name", "text", "key"),
        Column("type", "type", "text"),
        Column("status", "status", "text"),
        Column("created", "created", "text"),
        Column("modified", "modified", "text"),
    ),
    indexed=("type", "status", "created", "modified"),
)
TABLES = {table.name: table for table in (RUNS, JOBS, RESOURCES)}


# -- column values -------------------------------------------------------------------------------
def column_values(table: Table, doc: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The written columns' values for `doc`, and whether the row is python_only."""
    values: dict[str, Any] = {}
    python_only = False
    for column in table.columns:
        value, exact = _column_value(doc, column)
        python_only = python_only or not exact
        if column.written == "raw":
            values[column.name] = value if exact else doc.get(column.path)
        elif column.written == "value":
            values[column.name] = value if exact else None
    return values, python_only


def _column_value(doc: Mapping[str, Any], column: Column) -> tuple[Any, bool]:
    """(value, True) when SQL on `value` answers as filters.py on the document; (None, False) if not."""
    current: Any = doc
    for segment in column.path.split("."):
        if not isinstance(current, Mapping):
            return None, True
        keys = [k for k in current if isinstance(k, str) and k.lower() == segment.lower()]
        if len(keys) > 1:
            return None, False  # `Status` and `status`: which one a filter reads depends on its spelling
        if not keys:
            return None, True
        current = current[keys[0]]
    if current is None:
        return None, True
    if column.kind == "int":
        exact = type(current) is int and -MAX_EXACT_INT <= current <= MAX_EXACT_INT
    else:
        exact = (
            type(current) is str
            and "\x00" not in current
            and (current.isascii() or not _SURROGATE.search(current))
            and filters.is_timestamp(current) == (_ASCII_TIMESTAMP.fullmatch(current) is not None)
        )
    return (current, True) if exact else (None, False)


# -- conditions ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sql:
    text: str
    params: tuple[Any, ...] = ()


TRUE = Sql("1")
FALSE = Sql("0")


def all_of(parts: list[Sql]) -> Sql:
    if FALSE in parts:
        return FALSE
    parts = [p for p in parts if p != TRUE]
    if not parts:
        return TRUE
    if len(parts) == 1:
        return parts[0]
    return Sql("(" + " AND ".join(p.text for p in parts) + ")", tuple(x for p in parts for x in p.params))


def any_of(parts: list[Sql]) -> Sql:
    if TRUE in parts:
        return TRUE
    parts = [p for p in parts if p != FALSE]
    if not parts:
        return FALSE
    if len(parts) == 1:
        return parts[0]
    return Sql("(" + " OR ".join(p.text for p in parts) + ")", tuple(x for p in parts for x in p.params))


@dataclass(frozen=True)
class Plan:
    """One list call in SQL: per filter its condition (None: checked in Python) and the rows at which
    filters.py would raise checking it; the ORDER BY (None: ordered in Python)."""

    table: Table
    filters: tuple[Filter, ...]
    conditions: tuple[Sql | None, ...]
    raises: tuple[Sql | None, ...]
    ordered: Column | None  # None: the order's field has no column
    ascending: bool

    @property
    def order(self) -> str | None:
        """ORDER BY: the column, then the key ascending (filters.apply's stable sorts keep ties so)."""
        if self.ordered is None:
            return None
        direction = "ASC" if self.ascending else "DESC"
        if self.ordered.name == self.table.key:
            return f"{self.ordered.sql} {direction}"
        return f'{self.ordered.sql} {direction}, "{self.table.key}" ASC'

    def after(self, value: Any, key: Any) -> Sql:
        """Rows that come after the row (`value` of the ordered column, `key`) in this order
        (NULL sorts first ascending, last descending): the next page without an OFFSET."""
        col, key_col = (self.ordered or self.table.columns[0]).sql, f'"{self.table.key}"'
        if self.ordered is None or self.ordered.name == self.table.key:
            return Sql(f"{key_col} {'>' if self.ascending else '<'} ?", (key,))
        if self.ascending:
            if value is None:
                return Sql(f"({col} IS NOT NULL OR {key_col} > ?)", (key,))
            return Sql(f"({col} >= ? AND ({col} > ? OR {key_col} > ?))", (value, value, key))
        if value is None:
            return Sql(f"({col} IS NULL AND {key_col} > ?)", (key,))
        return Sql(f"(({col} <= ? AND ({col} < ? OR {key_col} > ?)) OR {col} IS NULL)", (value, value, key))

    @property
    def residual(self) -> tuple[Filter, ...]:
        return tuple(f for f, c in zip(self.filters, self.conditions, strict=True) if c is None)

    def where(self) -> Sql:
        return all_of([c for c in self.conditions if c is not None])

    def first_raising_residual(self) -> int | None:
        """The first condition on a field without a column that may raise on some row."""
        for index, (condition, cond) in enumerate(zip(self.filters, self.conditions, strict=True)):
            if cond is None and condition.op in RAISING_OPS:
                return index
        return None

    def raising(self, upto: int | None = None) -> Sql:
        """Rows at which checking the column conditions before `upto` raises (a superset when a
        Python-checked condition comes first: the store checks each row with filters.py)."""
        end = len(self.filters) if upto is None else upto
        terms = []
        for k in range(end):
            raises = self.raises[k]
            if raises is not None:
                terms.append(all_of([c for c in self.conditions[:k] if c is not None] + [raises]))
        return any_of(terms)

    def reach(self, upto: int) -> Sql:
        """Rows that meet every column condition before `upto`, or raise checking one of them."""
        met = all_of([c for c in self.conditions[:upto] if c is not None])
        return any_of([met, self.raising(upto)])


def plan(table: Table, query: ListQuery) -> Plan | None:
    """The SQL of `query`, or None when an operand cannot go to SQLite as it is (NUL, lone surrogate)."""
    conditions: list[Sql | None] = []
    raises: list[Sql | None] = []
    for condition in query.filters:
        column = table.column_for(condition.field)
        if column is None:
            conditions.append(None)
            raises.append(None)
            continue
        if "\x00" in condition.value or _SURROGATE.search(condition.value):
            return None
        if column.kind == "int":
            conditions.append(_int_condition(column.sql, condition))
            raises.append(_int_raises(column.sql, condition))
        else:
            conditions.append(_text_condition(column.sql, condition))
            raises.append(None)  # texts never raise: only numbers and booleans do
    ordered = table.column_for(query.orderby)
    return Plan(table, query.filters, tuple(conditions), tuple(raises), ordered, query.orderasc)


def _text_condition(col: str, condition: Filter) -> Sql:
    op, value = condition.op, condition.value
    if op == "like":
        return all_of([_literal_prefix_range(col, value), Sql(f"{SQL_LIKE}(?, {col})", (value,))])
    if op == "rlike":
        return Sql(f"{SQL_RLIKE}(?, {col})", (value,))
    if op in ("in", "notin"):
        values = filters.split_list(value)
        whole = [v for v in values if not _cuts_timestamps(v)]
        terms = [_text_equal(col, v) for v in values if _cuts_timestamps(v)]
        if whole:
            terms.insert(0, Sql(f"{col} IN (SELECT value FROM json_each(?))", (json.dumps(whole),)))
        found = any_of(terms)
        return found if op == "in" else Sql(f"({col} IS NULL OR NOT {found.text})", found.params)
    if not _cuts_timestamps(value):
        if op == "noteq":
            return Sql(f"({col} IS NULL OR {col} <> ?)", (value,))
        return Sql(f"{col} {_OPERATORS[op]} ?", (value,))
    # A date prefix: timestamps compare by their first len(value) characters, other texts whole.
    # Cut or not, `>=` and `<` give the same answer; the rest need the cut, within an index range.
    starts = _starts_timestamp(col, value)
    if op == "gte":
        return Sql(f"{col} >= ?", (value,))
    if op == "lt":
        return Sql(f"{col} < ?", (value,))
    if op == "gt":
        return Sql(f"({col} > ? AND NOT {starts.text})", (value, *starts.params))
    if op == "lte":
        return Sql(
            f"({col} < ? AND ({col} <= ? OR {starts.text}))", (value + ABOVE_ASCII, value, *starts.params)
        )
    equal = _text_equal(col, value)
    if op == "eq":
        return equal
    return Sql(f"({col} IS NULL OR NOT {equal.text})", equal.params)  # noteq


def _cuts_timestamps(operand: str) -> bool:
    return filters.is_time_prefix(operand) and len(operand) < TIMESTAMP_LEN


def _starts_timestamp(col: str, prefix: str) -> Sql:
    return Sql(f"({col} GLOB ? AND substr({col}, 1, ?) = ?)", (TIMESTAMP_GLOB, len(prefix), prefix))


def _text_equal(col: str, value: str) -> Sql:
    """`eq` on a text column (value a date prefix or not)."""
    if not _cuts_timestamps(value):
        return Sql(f"{col} = ?", (value,))
    starts = _starts_timestamp(col, value)
    return Sql(
        f"({col} >= ? AND {col} < ? AND ({col} = ? OR {starts.text}))",
        (value, value + ABOVE_ASCII, value, *starts.params),
    )


def _literal_prefix_range(col: str, pattern: str) -> Sql:
    """`col >= p AND col < p'` for the literal start `p` of a like pattern (TRUE when it has none):
    every text starting with p sorts in there, so an index can narrow the rows the RE2 check sees."""
    prefix = re.split("[%_]", pattern, maxsplit=1)[0]
    if not prefix:
        return TRUE
    last = ord(prefix[-1]) + 1
    if last == 0xD800:
        last = 0xE000  # after the surrogates, which no stored text holds
    if last > 0x10FFFF:
        return TRUE
    return Sql(f"({col} >= ? AND {col} < ?)", (prefix, prefix[:-1] + chr(last)))


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _int_condition(col: str, condition: Filter) -> Sql:
    op, value = condition.op, condition.value
    if op == "like":
        return Sql(f"{SQL_LIKE}(?, {col})", (value,))
    if op == "rlike":
        return Sql(f"{SQL_RLIKE}(?, {col})", (value,))
    if op in ("in", "notin"):
        found = _int_in(col, _good_numbers(value)[0])
        return found if op == "in" else Sql(f"({col} IS NULL OR NOT {found.text})", found.params)
    number = _number(value)
    if number is None:  # every number raises (see _int_raises); only missing values get here
        return Sql(f"{col} IS NULL") if op == "noteq" else FALSE
    if math.isnan(number):
        return TRUE if op == "noteq" else FALSE
    if op == "noteq":
        return Sql(f"({col} IS NULL OR {col} <> ?)", (number,))
    return Sql(f"{col} {_OPERATORS[op]} ?", (number,))


def _int_raises(col: str, condition: Filter) -> Sql | None:
    """Rows (of an int column) at which filters.py raises checking `condition`: a number met with
    an operand that is not one; for in/notin, a number none of the values before the bad one equals."""
    if condition.op in ("like", "rlike"):
        return None
    if condition.op in ("in", "notin"):
        numbers, bad = _good_numbers(condition.value)
        if not bad:
            return None
        found = _int_in(col, numbers)
        return Sql(f"({col} IS NOT NULL AND NOT {found.text})", found.params)
    return Sql(f"{col} IS NOT NULL") if _number(condition.value) is None else None


def _good_numbers(value: str) -> tuple[list[float], bool]:
    """The list's values as numbers up to the first that is none, and whether there is one."""
    numbers = []
    for part in filters.split_list(value):
        number = _number(part)
        if number is None:
            return numbers, True
        numbers.append(number)
    return numbers, False


def _int_in(col: str, numbers: list[float]) -> Sql:
    finite = [n for n in numbers if math.isfinite(n)]  # NaN equals nothing, infinities no integer
    if not finite:
        return FALSE
    return Sql(f"{col} IN (SELECT value FROM json_each(?))", (json.dumps(finite),))

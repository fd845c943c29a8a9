"""The data comparison: is what a fix wrote like what the job's last good run wrote?

Pure logic over the sandbox launcher's report (`agents/sandbox/report.py`): each output the
pre-flight wrote, measured in the sandbox, against the production output of the same name as it
stands (the last good run's), plus invariants that need no baseline. Every check gives a
`ComparisonRow` (output, metric, last good, observed, verdict); a failed row's note says what was
found in words the next prompt and an escalation reuse ("writes 3 rows where the last good run
wrote 120"). The thresholds are settings (`HEAL_COMPARE_*`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from agents.config import Settings
from agents.record import ComparisonRow, Diagnosis
from agents.sandbox.report import SandboxOutput, SandboxReport, TableStats

KEY_LIKE_SHARE = 0.9  # a column with at least this many distinct values per row is treated as a key
MIN_ROWS_FOR_KEYS = 10  # too few rows to call any column key-like
# NULLs that vanish entirely were replaced by values (a fix that makes a failing expression "null-safe"
# by returning text or 0): judged when the last good output had at least this share of them, and the
# output measured is large enough to expect at least this many
VANISHED_NULL_SHARE, VANISHED_NULL_COUNT = 0.01, 5
# Spark's conditions about the OUTPUT's own schema: a fix for them may change its columns or types
# (a fix for an input's schema, e.g. an unresolved column, must still write the same output schema)
OUTPUT_SCHEMA_CONDITIONS = ("INSERT_COLUMN_ARITY_MISMATCH", "INCOMPATIBLE_DATA_FOR_TABLE",
                            "INCOMPATIBLE_DATA_TO_TABLE", "_LEGACY_ERROR_TEMP_1038")


@dataclass(frozen=True)
class Thresholds:
    row_tolerance: float = 0.3  # |rows - last good| / last good
    null_jump: float = 0.2  # |NULL share - last good NULL share|
    distinct_drop: float = 0.5  # a key-like column keeps this share of its distinct values per row

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(settings.compare_row_tolerance, settings.compare_null_jump, settings.compare_distinct_drop)


def schema_may_change(diagnosis: Diagnosis | None) -> bool:
    """Whether the diagnosis is about the output's schema, so a fix may change it."""
    condition = (diagnosis.condition or "") if diagnosis else ""
    return condition.upper().startswith(OUTPUT_SCHEMA_CONDITIONS)


def compare_report(report: SandboxReport, thresholds: Thresholds, *, schema_may_change: bool = False,
                   expected: Iterable[str] = ()) -> list[ComparisonRow]:
    """Every comparison row of a pre-flight (or of a production run's measurement, whose report's
    `stats` are compared with the `baseline` the caller put in)."""
    rows: list[ComparisonRow] = []
    written = {o.name for o in report.outputs}
    for name in sorted(set(expected) - written):
        rows.append(ComparisonRow(output=name, metric="written", last_good="written", observed="not written",
                                  ok=False, note=f"the fix no longer writes {name}, which an earlier run wrote"))
    if not report.outputs:
        rows.append(ComparisonRow(output="(none)", metric="written", observed="no output", ok=False,
                                  note="the fix wrote no output at all"))
    fraction = report.sample.value if report.sample.kind == "fraction" else None
    limited = report.sample.kind == "rows"
    for output in report.outputs:
        rows += compare_output(output, thresholds, schema_may_change=schema_may_change,
                               fraction=fraction, limited=limited)
    return rows


APPENDING = ("mode=append", "sql INSERT", "writeTo append", "IF NOT EXISTS")  # operations that keep the rows there


def appended_only(output: SandboxOutput) -> bool:
    """Every write of the output added to what production had (a log, a history table): its rows are
    the last good ones plus the run's, so a row count far above the last good one is expected."""
    ops = [op for op in output.operations if " FAILED (" not in op]
    return bool(ops) and all(op.endswith(APPENDING) and "INSERT OVERWRITE" not in op for op in ops)


def dropped_by_the_job(output: SandboxOutput) -> bool:
    """A working table: the job's last operation on it dropped it (e.g. a staging table)."""
    return bool(output.operations) and output.operations[-1].upper().startswith("SQL DROP")


def compare_output(output: SandboxOutput, t: Thresholds, *, schema_may_change: bool = False,
                   fraction: float | None = None, limited: bool = False) -> list[ComparisonRow]:
    name = output.name
    if output.stats is None and dropped_by_the_job(output):
        return [ComparisonRow(output=name, metric="written", observed=", ".join(output.operations), ok=True,
                              note="a working table the job drops itself: not an output to compare")]
    last = output.operations[-1] if output.operations else ""
    if " FAILED (" in last:  # the job went on after its last write of this output raised: it swallowed the error
        return [ComparisonRow(output=name, metric="written", observed="write failed", ok=False,
                              note=f"the write of {name} failed ({last.split(' FAILED (', 1)[1].rstrip(')')}) "
                                   "and the job still ended successfully: the error was swallowed")]
    if output.stats is None:
        return [ComparisonRow(output=name, metric="written", observed="unreadable", ok=False,
                              note=f"{name} could not be measured: {output.error or 'no statistics'}")]
    new, old = output.stats, output.baseline
    rows = [ComparisonRow(output=name, metric="written", observed=", ".join(output.operations) or "written",
                          last_good="exists" if old is not None else "absent", ok=True)]
    if old is None:
        return rows + _without_baseline(name, new)
    rows.append(_appended(name, old, new) if appended_only(output) else _row_count(name, old, new, t, fraction, limited))
    rows += _schema(name, old, new, schema_may_change)
    rows += _columns(name, old, new, t)
    return rows


def _without_baseline(name: str, new: TableStats) -> list[ComparisonRow]:
    """No last good output to compare with: only what no correct output does."""
    rows = [ComparisonRow(output=name, metric="rows", observed=str(new.rows), ok=new.rows > 0,
                          note="" if new.rows > 0 else f"{name} is empty, and there is no last good output "
                          "to show that an empty output is right")]
    empty = [c.name for c in new.columns if new.rows > 0 and c.nulls == new.rows]
    rows.append(ComparisonRow(output=name, metric="nulls", column=", ".join(empty), observed=(
        f"{len(empty)} column(s) all NULL" if empty else "no column all NULL"), ok=not empty,
        note=f"{name}: column(s) {', '.join(empty)} are NULL in every row" if empty else ""))
    return rows


def _row_count(name: str, old: TableStats, new: TableStats, t: Thresholds, fraction: float | None,
               limited: bool) -> ComparisonRow:
    expected = old.rows * fraction if fraction else old.rows
    shown = f"{old.rows}" + (f" (×{fraction:g} sampled = {expected:.0f})" if fraction else "")
    if new.rows == 0 and old.rows > 0:
        return ComparisonRow(output=name, metric="rows", last_good=shown, observed="0", ok=False,
                             note=f"the fix writes 0 rows to {name} where the last good run wrote {old.rows}")
    if limited or old.rows == 0:  # inputs cut to N rows: only emptiness can be judged
        return ComparisonRow(output=name, metric="rows", last_good=shown, observed=str(new.rows), ok=True,
                             note="inputs limited to a number of rows: only emptiness is compared" if limited else "")
    change = abs(new.rows - expected) / expected
    ok = change <= t.row_tolerance
    return ComparisonRow(output=name, metric="rows", last_good=shown, observed=str(new.rows), ok=ok, note="" if ok
                         else f"the fix writes {new.rows} rows to {name} where the last good run wrote {shown} "
                         f"({change:.0%} off; at most {t.row_tolerance:.0%} allowed)")


def _appended(name: str, old: TableStats, new: TableStats) -> ComparisonRow:
    ok = new.rows >= old.rows
    return ComparisonRow(output=name, metric="rows", last_good=str(old.rows), observed=str(new.rows), ok=ok,
                         note=f"appended {new.rows - old.rows} rows to {name}" if ok else
                         f"{name}, which the job only appends to, has {new.rows} rows where the last good run left "
                         f"{old.rows}: rows were lost")


def _schema(name: str, old: TableStats, new: TableStats, may_change: bool) -> list[ComparisonRow]:
    before = {c.name.lower(): c.type for c in old.columns}
    after = {c.name.lower(): c.type for c in new.columns}
    missing = [c for c in before if c not in after]
    added = [c for c in after if c not in before]
    retyped = [f"{c} {before[c]}→{after[c]}" for c in before if c in after and before[c] != after[c]]
    problems = ([f"drops column(s) {', '.join(missing)}"] if missing else []) + \
               ([f"adds column(s) {', '.join(added)}"] if added else []) + \
               ([f"changes type(s) {', '.join(retyped)}"] if retyped else [])
    ok = not problems or may_change
    note = "" if not problems else f"the fix's {name} " + "; ".join(problems) + (
        " (allowed: the failure was about the output's schema)" if may_change else "")
    return [ComparisonRow(output=name, metric="schema", last_good=f"{len(before)} columns",
                          observed=f"{len(after)} columns" + (f": {'; '.join(problems)}" if problems else ", same types"),
                          ok=ok, note=note)]


def _columns(name: str, old: TableStats, new: TableStats, t: Thresholds) -> list[ComparisonRow]:
    """NULL shares that jump, columns that turn constant, key-like columns whose distinct values collapse."""
    before = {c.name.lower(): c for c in old.columns}
    rows: list[ComparisonRow] = []
    checked = 0
    for col in new.columns:
        was = before.get(col.name.lower())
        if was is None or old.rows == 0 or new.rows == 0:
            continue
        checked += 1
        share_before, share_now = was.nulls / old.rows, col.nulls / new.rows
        # as many NULLs expected in this output as to judge (a sample may rightly have none)
        vanished = (col.nulls == 0 and share_before >= VANISHED_NULL_SHARE
                    and share_before * new.rows >= VANISHED_NULL_COUNT)
        if vanished:
            rows.append(ComparisonRow(
                output=name, metric="nulls", column=col.name, last_good=f"{share_before:.0%}", observed="0%", ok=False,
                note=f"{name}.{col.name} has no NULL left where the last good run had {share_before:.0%} "
                     f"({was.nulls} rows): the fix replaced missing values with made-up ones"))
        elif abs(share_now - share_before) > t.null_jump:
            rows.append(ComparisonRow(
                output=name, metric="nulls", column=col.name, last_good=f"{share_before:.0%}",
                observed=f"{share_now:.0%}", ok=False,
                note=f"{name}.{col.name} is NULL in {share_now:.0%} of rows where the last good run had "
                     f"{share_before:.0%}"))
        if was.distinct > 1 and col.distinct <= 1 and new.rows > 1:
            rows.append(ComparisonRow(
                output=name, metric="constant", column=col.name, last_good=f"{was.distinct} distinct",
                observed=f"{col.distinct} distinct", ok=False,
                note=f"{name}.{col.name} has the same value in every row where the last good run had "
                     f"{was.distinct} distinct values"))
        key_share = was.distinct / old.rows
        if old.rows >= MIN_ROWS_FOR_KEYS and key_share >= KEY_LIKE_SHARE:
            share = col.distinct / new.rows
            if share < t.distinct_drop * key_share:
                rows.append(ComparisonRow(
                    output=name, metric="distinct", column=col.name, last_good=f"{was.distinct} in {old.rows} rows",
                    observed=f"{col.distinct} in {new.rows} rows", ok=False,
                    note=f"{name}.{col.name}, a key-like column, has {col.distinct} distinct values in {new.rows} "
                         f"rows where the last good run had {was.distinct} in {old.rows}"))
    if not rows:
        rows.append(ComparisonRow(output=name, metric="columns", last_good=f"{len(old.columns)} columns",
                                  observed=f"{checked} compared", ok=True,
                                  note="NULL shares, constant columns and key-like distinct counts as before"))
    return rows


def unproven(report: SandboxReport) -> str:
    """Why a passing comparison proves nothing, or "": none of the outputs the fix kept had a last good
    output (a first run, or a fix that writes somewhere new, e.g. a new table name in its arguments)."""
    kept = [o for o in report.outputs if not dropped_by_the_job(o)]
    if not kept or any(o.baseline is not None for o in kept):
        return ""
    return (f"none of the fix's outputs ({', '.join(o.name for o in kept)}) has a last good output to be compared "
            "with, so the data cannot show the fix is right: a person must approve it")


def failures(rows: Iterable[ComparisonRow]) -> list[str]:
    return [r.note or f"{r.output} {r.metric}: {r.observed}" for r in rows if not r.ok]

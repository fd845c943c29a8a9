"""The data comparison (agents/comparison.py) on launcher reports: each plausible wrong output a fix
can write is caught with a note that says what was found; a right output passes."""

from __future__ import annotations

from typing import Any

import pytest

from agents.comparison import Thresholds, compare_report, failures, schema_may_change, unproven
from agents.record import Diagnosis
from agents.sandbox.report import SandboxReport

T = Thresholds(row_tolerance=0.3, null_jump=0.2, distinct_drop=0.5)


def column(name: str, rows: int, *, nulls: int = 0, distinct: int | None = None, type: str = "string") -> dict:
    return {"name": name, "type": type, "nulls": nulls, "distinct": rows if distinct is None else distinct,
            "min": None, "max": None, "mean": None}


def table(rows: int, *columns: dict) -> dict:
    return {"rows": rows, "columns": list(columns) or [column("id", rows, type="bigint"),
                                                       column("region", rows, distinct=min(rows, 4)),
                                                       column("amount", rows, nulls=rows // 10, type="double")]}


def report(*outputs: dict, sample: dict | None = None) -> SandboxReport:
    return SandboxReport.model_validate({
        "healer_sandbox": 1, "mode": "preflight", "database": "healer_sandbox_7_1",
        "sample": sample or {"kind": "none", "value": None}, "app_exit": 0, "app_error": None,
        "outputs": list(outputs), "reads": [], "seconds": {"app": 1.0, "stats": 1.0}})


def output(stats: dict | None, baseline: dict | None = None, name: str = "mart.sales", error: Any = None) -> dict:
    return {"kind": "table", "name": name, "sandbox": f"healer_sandbox_7_1.{name.replace('.', '__')}",
            "operations": ["saveAsTable mode=overwrite"], "format": None, "stats": stats, "baseline": baseline,
            "error": error}


def failed(rows) -> list[str]:
    return failures(rows)


def test_an_output_like_the_last_good_one_passes_every_row():
    rows = compare_report(report(output(table(118), table(120))), T)
    assert all(r.ok for r in rows), failed(rows)
    assert [r.metric for r in rows] == ["written", "rows", "schema", "columns"]
    assert (rows[1].last_good, rows[1].observed) == ("120", "118")


@pytest.mark.parametrize(("rows_now", "caught"), [
    (3, "the fix writes 3 rows to mart.sales where the last good run wrote 120"),
    (0, "the fix writes 0 rows to mart.sales where the last good run wrote 120"),
    (400, "the fix writes 400 rows to mart.sales where the last good run wrote 120"),
])
def test_row_counts_far_from_the_last_good_output_are_caught(rows_now, caught):
    [found] = failed(compare_report(report(output(table(rows_now), table(120))), T))
    assert found.startswith(caught), found


def test_row_counts_are_scaled_by_a_sampled_fraction_and_only_emptiness_counts_under_a_row_limit():
    sampled = {"kind": "fraction", "value": 0.1}
    assert not failed(compare_report(report(output(table(13), table(120)), sample=sampled), T))
    assert failed(compare_report(report(output(table(60), table(120)), sample=sampled), T))
    limited = {"kind": "rows", "value": 50}
    assert not failed(compare_report(report(output(table(7), table(120)), sample=limited), T))
    assert failed(compare_report(report(output(table(0), table(120)), sample=limited), T))


def test_a_dropped_added_or_retyped_column_is_caught_unless_the_failure_was_the_outputs_schema():
    old = table(120)
    dropped = {"rows": 120, "columns": old["columns"][:2]}
    retyped = {"rows": 120, "columns": old["columns"][:2] + [column("amount", 120, nulls=12, type="string")]}
    [found] = failed(compare_report(report(output(dropped, old)), T))
    assert "drops column(s) amount" in found
    [found] = failed(compare_report(report(output(retyped, old)), T))
    assert "changes type(s) amount double→string" in found
    assert not failed(compare_report(report(output(dropped, old)), T, schema_may_change=True))
    about_output = Diagnosis(category="code", root_cause="", confidence=0.9, condition="INSERT_COLUMN_ARITY_MISMATCH.TOO_MANY_DATA_COLUMNS")
    about_input = Diagnosis(category="code", root_cause="", confidence=0.9, condition="UNRESOLVED_COLUMN.WITH_SUGGESTION")
    assert schema_may_change(about_output) and not schema_may_change(about_input) and not schema_may_change(None)


def test_null_shares_that_jump_either_way_are_caught():
    base = table(100, column("id", 100), column("email", 100, nulls=30, distinct=70))
    nulled = table(100, column("id", 100), column("email", 100, nulls=75, distinct=25))
    as_text = table(100, column("id", 100), column("email", 100, nulls=0, distinct=71))  # NULL became "None"
    [found] = failed(compare_report(report(output(nulled, base)), T))
    assert found == "mart.sales.email is NULL in 75% of rows where the last good run had 30%"
    [found] = failed(compare_report(report(output(as_text, base)), T))
    assert "has no NULL left where the last good run had 30%" in found


def test_nulls_that_vanish_entirely_were_replaced_by_made_up_values():
    base = table(2000, column("id", 2000), column("phone", 2000, nulls=189, distinct=1700))
    filled = table(2000, column("id", 2000), column("phone", 2000, nulls=0, distinct=1701))
    [found] = failed(compare_report(report(output(filled, base)), T))
    assert found == ("mart.sales.phone has no NULL left where the last good run had 9% (189 rows): the fix "
                     "replaced missing values with made-up ones")
    few = table(2000, column("id", 2000), column("phone", 2000, nulls=3, distinct=1700))  # 3 NULLs: too few to judge
    assert not failed(compare_report(report(output(filled, few)), T))
    appeared = table(2000, column("id", 2000), column("phone", 2000, nulls=40, distinct=1700))  # try_cast's NULLs
    assert not failed(compare_report(report(output(appeared, table(2000, column("id", 2000),
                                                                    column("phone", 2000, distinct=1700)))), T))


def test_a_column_turned_constant_and_a_collapsed_key_are_caught():
    base = table(100, column("order_id", 100), column("channel", 100, distinct=3))
    constant = table(100, column("order_id", 100), column("channel", 100, distinct=1))
    collapsed = table(100, column("order_id", 100, distinct=20), column("channel", 100, distinct=3))
    [found] = failed(compare_report(report(output(constant, base)), T))
    assert "mart.sales.channel has the same value in every row" in found
    [found] = failed(compare_report(report(output(collapsed, base)), T))
    assert "a key-like column, has 20 distinct values in 100 rows where the last good run had 100 in 100" in found


def test_without_a_last_good_output_only_empty_outputs_and_all_null_columns_fail():
    assert not failed(compare_report(report(output(table(5))), T))
    [found] = failed(compare_report(report(output(table(0))), T))
    assert "is empty, and there is no last good output" in found
    all_null = table(5, column("id", 5), column("amount", 5, nulls=5, distinct=0))
    [found] = failed(compare_report(report(output(all_null)), T))
    assert "column(s) amount are NULL in every row" in found


def test_a_write_that_failed_while_the_job_succeeded_is_a_swallowed_error():
    swallowed = output(None, table(120), error="absent from the sandbox")
    swallowed["operations"] = ["saveAsTable mode=overwrite FAILED (AnalysisException: [CAST_INVALID_INPUT] ...)"]
    [found] = failed(compare_report(report(swallowed), T))
    assert found == ("the write of mart.sales failed (AnalysisException: [CAST_INVALID_INPUT] ...) and the job "
                     "still ended successfully: the error was swallowed")


def test_a_table_the_job_only_appends_to_may_grow_but_not_shrink():
    log = output(table(2), table(1), name="ops.calls")
    log["operations"] = ["sql CREATE TABLE IF NOT EXISTS", "insertInto mode=append"]
    rows = compare_report(report(log), T)
    assert not failed(rows) and "appended 1 rows to ops.calls" in [r.note for r in rows if r.metric == "rows"]
    log["stats"] = table(0)
    assert failed(compare_report(report(log), T)) == [
        "ops.calls, which the job only appends to, has 0 rows where the last good run left 1: rows were lost"]
    rewritten = output(table(2), table(1), name="ops.calls")
    rewritten["operations"] = ["insertInto mode=append", "sql INSERT OVERWRITE"]
    assert failed(compare_report(report(rewritten), T))  # an overwrite: the usual tolerance


def test_a_working_table_the_job_drops_itself_is_not_an_output():
    staging = output(None, name="mart.sales_staging", error="absent from the sandbox")
    staging["operations"] = ["saveAsTable mode=overwrite", "sql DROP TABLE"]
    rows = compare_report(report(staging, output(table(120), table(120))), T)
    assert not failed(rows)
    assert rows[0].note == "a working table the job drops itself: not an output to compare"


def test_a_fix_none_of_whose_outputs_had_a_last_good_one_is_unproven():
    new_only = report(output(table(120), name="mart.sales_v2"))
    assert not failed(compare_report(new_only, T))  # nothing wrong to see...
    assert unproven(new_only).startswith("none of the fix's outputs (mart.sales_v2) has a last good output")
    assert unproven(report(output(table(120), table(120)), output(table(5), name="mart.extra"))) == ""


def test_an_output_not_written_or_not_measurable_fails():
    rows = compare_report(report(output(table(120), table(120))), T, expected={"mart.sales", "mart.sales_by_day"})
    assert failed(rows) == ["the fix no longer writes mart.sales_by_day, which an earlier run wrote"]
    assert failed(compare_report(report(), T)) == ["the fix wrote no output at all"]
    [found] = failed(compare_report(report(output(None, table(120), error="AnalysisException: gone")), T))
    assert found == "mart.sales could not be measured: AnalysisException: gone"

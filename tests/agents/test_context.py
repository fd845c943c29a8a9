"""The code the model sees: a focused excerpt within the token budget, whatever the file's size."""

from __future__ import annotations

import ast
import json
import re
import time
from pathlib import Path
from textwrap import dedent, indent

import pytest

from agents.context import CodeContext, code_context
from agents.prompts import number_lines
from agents.tokens import estimate_tokens

SAMPLE_JOBS = Path(__file__).resolve().parents[2] / "sample_jobs"
_MARKER = re.compile(r"^ *\.\.\.  \((?:line (\d+)|lines (\d+)–(\d+)) not shown\)$")
_NUMBERED = re.compile(r"^ *(\d+)\| (.*)$", re.S)


def checked(code: str, focus: list[int], budget: int, requested: tuple = ()) -> CodeContext:
    """code_context, with what holds for every answer checked: the text shows the file's own lines
    with their numbers, one marker per gap, `shown` and `tokens` describe the text, and the answer
    is the same on a second call."""
    ctx = code_context(code, focus, budget, requested)
    lines = code.splitlines()
    width = len(str(len(lines)))
    ranges: list[list[int]] = []
    expected_next = 1
    for text in ctx.text.splitlines() if ctx.text else []:
        marker = _MARKER.match(text)
        if marker:
            start = int(marker.group(1) or marker.group(2))
            end = int(marker.group(1) or marker.group(3))
            assert start == expected_next and end >= start, text
            expected_next = end + 1
            continue
        numbered = _NUMBERED.match(text)
        assert numbered, text
        line = int(numbered.group(1))
        assert line == expected_next and text.startswith(f"{line:>{width}}| "), text
        original = lines[line - 1]
        shown = numbered.group(2)
        assert shown == original or (len(original) > 300 and shown.endswith("…") and original.startswith(shown[:-1]))
        if ranges and ranges[-1][1] == line - 1:
            ranges[-1][1] = line
        else:
            ranges.append([line, line])
        expected_next = line + 1
    assert expected_next == len(lines) + 1, "the text covers the whole file, shown or marked"
    assert ctx.shown == tuple((start, end) for start, end in ranges)
    assert ctx.total_lines == len(lines)
    assert ctx.complete == (ctx.shown == ((1, len(lines)),) or not lines)
    assert ctx.tokens == estimate_tokens(ctx.text)
    assert code_context(code, focus, budget, requested) == ctx
    return ctx


def is_shown(ctx: CodeContext, first: int, last: int | None = None) -> bool:
    last = first if last is None else last
    return all(any(start <= line <= end for start, end in ctx.shown) for line in range(first, last + 1))


def line_of(code: str, fragment: str, after: int = 0) -> int:
    """The number of the first line containing `fragment` (after line `after`)."""
    found = [i for i, text in enumerate(code.splitlines(), start=1) if i > after and fragment in text]
    assert found, f"no line has {fragment!r}"
    return found[0]


def statement_of(code: str, line: int) -> tuple[int, int]:
    """The innermost simple statement around `line` (a compound statement: its first line)."""
    best = (line, line)
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.stmt) and node.lineno <= line <= node.end_lineno:
            compound = any(isinstance(getattr(node, f, None), list) for f in ("body", "handlers", "cases"))
            span = (node.lineno, node.lineno) if compound else (node.lineno, node.end_lineno)
            if span[0] <= line <= span[1] and (best == (line, line) or span[1] - span[0] < best[1] - best[0]):
                best = span
    return best


def filler(count: int, prefix: str = "helper") -> str:
    """Functions that have nothing to do with the failure."""
    return "\n".join(
        f"def {prefix}_{i}(values):\n    total = 0\n    for value in values:\n"
        f"        total += value * {i}\n    return total\n\n"
        for i in range(count)
    )


# --- a big module -------------------------------------------------------------------------------------

SHOPS = 250


def big_module() -> str:
    """About 6,500 lines: constants, 250 DataFrame loaders, 250 reports using them, a main block."""
    out = ['"""Generated retail pipeline."""', "", "import sys", "",
           "from pyspark.sql import SparkSession", "from pyspark.sql import functions as F", ""]
    for i in range(SHOPS):
        out += [f"THRESHOLD_{i} = {i * 10}", f'ORDERS_TABLE_{i} = "retail.orders_{i}"']
    for i in range(SHOPS):
        out += ["", "", f"def load_orders_{i}(spark):", f'    """Orders of shop {i}."""', "    return (",
                f"        spark.table(ORDERS_TABLE_{i})", '        .where(F.col("status") == "done")',
                '        .select("order_id", "region", "amount")', "    )"]
    for i in range(SHOPS):
        out += ["", "", f"def report_{i}(spark, day):", f'    """Report {i} for one day."""',
                f"    orders = load_orders_{(i * 7) % SHOPS}(spark)",
                '    daily = orders.where(F.col("day") == day)',
                f'    scored = daily.withColumn("score", F.col("amount") * {i + 1})',
                "    summary = (", '        scored.groupBy("region")', '        .agg(F.sum("score").alias("total"))',
                f'        .where(F.col("total") > THRESHOLD_{i})', "    )",
                f'    summary.write.mode("overwrite").saveAsTable("mart.report_{i}")', "    return summary.count()"]
    out += ["", "", 'if __name__ == "__main__":', "    spark = SparkSession.builder.getOrCreate()"]
    out += [f"    report_{i}(spark, sys.argv[1])" for i in range(SHOPS)]
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("budget", [300, 600, 1200])
def test_a_failure_deep_in_a_big_module_shows_what_it_uses(budget: int) -> None:
    code = big_module()
    report = line_of(code, "def report_173(")
    failing = line_of(code, '.agg(F.sum("score")', after=report)  # the traceback's frame
    caller = line_of(code, "    report_173(spark, sys.argv[1])")  # the outer frame, in the main block
    frames = [failing, caller] if budget >= 600 else [failing]  # the caller's lines cost what the loader needs
    started = time.perf_counter()
    ctx = checked(code, frames, budget)
    print(f"\n{ctx.total_lines} lines, budget {budget}: {time.perf_counter() - started:.3f} s")

    assert ctx.total_lines > 5000 and ctx.tokens <= budget and not ctx.complete
    assert is_shown(ctx, *statement_of(code, failing))  # the failing chain, whole
    assert is_shown(ctx, report)  # its function's header
    assert is_shown(ctx, caller) == (caller in frames)
    # the DataFrame's construction, followed back into the function that builds it
    for fragment in ("    scored = daily", "    daily = orders", "    orders = load_orders_211(spark)"):
        assert is_shown(ctx, line_of(code, fragment, after=report)), fragment
    loader = line_of(code, "def load_orders_211(")
    assert is_shown(ctx, loader, loader + 6)  # small: shown whole
    assert is_shown(ctx, line_of(code, "THRESHOLD_173 = "))  # the module constants used
    assert is_shown(ctx, line_of(code, "ORDERS_TABLE_211 = "))
    assert is_shown(ctx, line_of(code, "from pyspark.sql import functions as F"))
    # nothing of the look-alikes that are not used
    assert not is_shown(ctx, line_of(code, "def load_orders_210("))
    assert not is_shown(ctx, line_of(code, "THRESHOLD_174 = "))
    assert not is_shown(ctx, line_of(code, "def report_100("))


def test_the_same_module_without_traceback_starts_from_the_entry_point() -> None:
    code = big_module()
    ctx = checked(code, [], 600)
    assert ctx.tokens <= 600 and not ctx.complete
    assert is_shown(ctx, line_of(code, "    report_249(spark, sys.argv[1])"))  # the main block's last statements
    assert is_shown(ctx, line_of(code, 'if __name__ == "__main__":'))
    assert is_shown(ctx, line_of(code, "def report_249("))  # the function it calls (small: whole)


# --- files that fit -----------------------------------------------------------------------------------


def test_a_small_file_is_shown_complete_as_number_lines_renders_it() -> None:
    code = (SAMPLE_JOBS / "tutorial" / "sparkApp.py").read_text()
    ctx = checked(code, [line_of(code, "selection = spark.sql(")], 5000)
    assert ctx.complete and ctx.text == number_lines(code) and ctx.shown == ((1, ctx.total_lines),)
    assert checked("", [3], 100) == CodeContext("", (), 0, True, 0)


# --- statements, ranges, shapes -----------------------------------------------------------------------

CHAIN = dedent(
    """\
    import sys

    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = SparkSession.builder.getOrCreate()
    orders = spark.table(sys.argv[1])
    """
) + filler(40) + dedent(
    """\
    result = (
        orders.where(F.col("status") == "complete")
        .groupBy("customer_region", "customer_segment")
        .agg(F.sum("amount_in_customer_currency").alias("total_amount"))
        .withColumn("average_ticket", F.col("total_amount") / F.col("order_count"))
        .orderBy(F.col("total_amount").desc())
    )
    """
) + filler(40, "other") + 'result.write.mode("overwrite").saveAsTable(sys.argv[2])\n'


def test_a_multi_line_statement_is_shown_whole() -> None:
    failing = line_of(CHAIN, "average_ticket")
    statement = statement_of(CHAIN, failing)
    assert statement[1] - statement[0] == 6
    ctx = checked(CHAIN, [failing], 150)
    assert ctx.tokens <= 150 and is_shown(ctx, *statement)
    assert is_shown(ctx, line_of(CHAIN, "orders = spark.table"))  # the DataFrame it starts from


def test_a_budget_too_small_for_the_statement_still_shows_the_failing_line() -> None:
    failing = line_of(CHAIN, "average_ticket")
    for budget in (0, 20, 60):
        ctx = checked(CHAIN, [failing], budget)
        assert is_shown(ctx, failing)
        assert ctx.tokens <= budget or ctx.shown == ((failing, failing),)
        assert not is_shown(ctx, *statement_of(CHAIN, failing))


def test_requested_ranges_are_shown_clipped_to_the_file() -> None:
    failing = line_of(CHAIN, "average_ticket")
    total = len(CHAIN.splitlines())
    ctx = checked(CHAIN, [failing], 400, requested=[(30, 34), (total - 2, total + 50), (900, 1000)])
    assert ctx.tokens <= 400 and is_shown(ctx, 30, 34) and is_shown(ctx, total - 2, total)
    # a range larger than the budget is shown from its start, as far as it fits
    ctx = checked(CHAIN, [failing], 300, requested=[(12, total)])
    assert ctx.tokens <= 300 and is_shown(ctx, 12, 20) and not is_shown(ctx, 12, total)
    assert is_shown(ctx, failing)  # the failing line comes first


def test_code_that_does_not_parse_gets_line_windows() -> None:
    broken = CHAIN.replace('.alias("total_amount"))', '.alias("total_amount")', 1)  # an unclosed paren
    with pytest.raises(SyntaxError):
        ast.parse(broken)
    failing = line_of(broken, "average_ticket")
    ctx = checked(broken, [failing], 120)
    assert ctx.tokens <= 120 and not ctx.complete and is_shown(ctx, failing - 3, failing + 3)
    # without a traceback: where the parser stopped
    error_line = _syntax_error_line(broken)
    ctx = checked(broken, [], 120)
    assert is_shown(ctx, error_line)
    assert checked(broken, [failing], 100_000).complete


def _syntax_error_line(code: str) -> int:
    try:
        ast.parse(code)
    except SyntaxError as error:
        return error.lineno
    raise AssertionError("the code parses")


def test_focus_lines_outside_the_file_count_as_no_focus() -> None:
    total = len(CHAIN.splitlines())
    ctx = checked(CHAIN, [0, -3, total + 1, 10_000], 200)
    assert ctx == code_context(CHAIN, [], 200)
    assert is_shown(ctx, total)  # the entry point: the job's write


def test_without_focus_a_module_level_script_starts_at_its_last_write() -> None:
    code = (SAMPLE_JOBS / "result_size" / "loyalty_points.py").read_text()
    ctx = checked(code, [], 60)
    assert is_shown(ctx, line_of(code, "result.write.mode"))


def test_a_class_method_shows_its_class_and_the_attributes_it_uses() -> None:
    methods = indent(dedent(
        """\
        def threshold(self):
            return self.MINIMUM * 2

        def __init__(self, spark, table):
            self.spark = spark
            self.orders = spark.table(table).where(F.col("status") == "done")
        """
    ), "    ")
    unused = "\n".join(f"    def unused_{i}(self):\n        return {i}\n" for i in range(60))
    run = indent(dedent(
        """\
        def run(self, output):
            totals = self.orders.groupBy("region").agg(F.sum("amount").alias("revenue"))
            kept = totals.where(F.col("revenue") > self.threshold()).where(F.col("region") != region)
            kept.write.saveAsTable(output)
        """
    ), "    ")
    code = (
        'from pyspark.sql import functions as F\n\nregion = "north"\n\n\n'
        + filler(20)
        + 'class RegionReport:\n    """Revenue by region."""\n\n'
        + "    region = 'a class attribute: not what `region` in a method means'\n\n"
        + unused + "\n" + "    MINIMUM = 100\n\n" + methods + "\n" + unused.replace("unused", "more") + "\n" + run
    )
    assert [type(node).__name__ for node in ast.parse(code).body] == ["ImportFrom", "Assign", *["FunctionDef"] * 20,
                                                                       "ClassDef"]
    failing = line_of(code, "kept = totals.where")
    ctx = checked(code, [failing], 220)
    assert ctx.tokens <= 220 and not ctx.complete
    assert is_shown(ctx, line_of(code, "class RegionReport:"))
    assert is_shown(ctx, line_of(code, "def run(self, output):"))
    assert is_shown(ctx, line_of(code, "totals = self.orders"))
    assert is_shown(ctx, line_of(code, "self.orders = spark.table"))  # set in __init__
    assert is_shown(ctx, line_of(code, "def __init__("))  # ... whose header says where it comes from
    assert is_shown(ctx, line_of(code, "def threshold(self):"), line_of(code, "return self.MINIMUM * 2"))
    assert is_shown(ctx, line_of(code, "MINIMUM = 100"))
    assert is_shown(ctx, line_of(code, 'region = "north"'))  # a method sees the module's name ...
    assert not is_shown(ctx, line_of(code, "region = 'a class attribute"))  # ... not the class body's
    assert not is_shown(ctx, line_of(code, "def unused_30("))


def test_nested_functions_resolve_names_in_their_own_scopes() -> None:
    code = dedent(
        """\
        def decoy():
            base = "never shown"
            return base

        """
    ) + filler(50) + dedent(
        """\
        def build(spark, table):
            base = spark.table(table).select("order_id", "amount")
            ignored = 1

            def scaled(factor):
                return base.withColumn("scaled", base.amount * factor)

            return scaled(2)
        """
    ) + filler(50, "after") + "base = 'module level, defined after'\n"
    failing = line_of(code, 'return base.withColumn("scaled"')
    ctx = checked(code, [failing, line_of(code, "return scaled(2)")], 150)
    assert ctx.tokens <= 150
    assert is_shown(ctx, line_of(code, "def scaled(factor):"))
    assert is_shown(ctx, line_of(code, "def build(spark, table):"))
    assert is_shown(ctx, line_of(code, 'base = spark.table(table)'))
    assert not is_shown(ctx, line_of(code, 'base = "never shown"'))
    assert not is_shown(ctx, line_of(code, "base = 'module level"))


def test_global_and_augmented_assignments() -> None:
    code = (
        "def compute_base():\n    return 42\n\n\ntotal = compute_base()\n\n\n" + filler(40)
        + "def outer():\n    total = \"outer's own\"\n\n" + indent(filler(30, "inside"), "    ") + dedent(
            """\
                def inner(fees):
                    global total
                    total += fees

                return inner, total
            """
        ) + filler(40, "after")
    )
    ast.parse(code)
    ctx = checked(code, [line_of(code, "total += fees")], 120)
    assert ctx.tokens <= 120
    assert is_shown(ctx, line_of(code, "total = compute_base()"))  # `+=` reads it: the global one
    assert is_shown(ctx, 1, 2)  # and where that comes from
    assert not is_shown(ctx, line_of(code, "total = \"outer's own\""))


def test_the_last_assignment_before_the_use_and_the_chain_behind_it() -> None:
    code = dedent(
        """\
        import sys

        from pyspark.sql import SparkSession

        spark = SparkSession.builder.getOrCreate()
        df = spark.table(sys.argv[1])
        """
    ) + filler(40) + 'df = df.where("amount > 0")\n' + filler(40, "more") + dedent(
        """\
        df.write.saveAsTable(sys.argv[2])
        df = spark.table("never.used")
        """
    ) + filler(40, "late")
    failing = line_of(code, "df.write.saveAsTable")
    ctx = checked(code, [failing], 160)
    assert ctx.tokens <= 160
    assert is_shown(ctx, line_of(code, 'df = df.where("amount > 0")'))
    assert is_shown(ctx, line_of(code, "df = spark.table(sys.argv[1])"))  # what that one starts from
    assert is_shown(ctx, line_of(code, "spark = SparkSession"))
    assert not is_shown(ctx, line_of(code, "def more_20("))


def test_long_lines_are_cut() -> None:
    code = "import sys\n" + filler(30) + f"QUERY = '{'x' * 2000}'\nprint(QUERY, sys.argv)\n"
    ctx = checked(code, [line_of(code, "print(QUERY")], 300)
    assert is_shown(ctx, line_of(code, "QUERY = ")) and "x" * 250 in ctx.text and "x" * 400 not in ctx.text
    assert max(len(text) for text in ctx.text.splitlines()) < 320


# --- the sample jobs ----------------------------------------------------------------------------------

# Scenarios' application files and the frame(s) their failure's traceback shows there, last first.
FAILING = {
    "ambiguous_join": ["enriched = orders.join("],
    "ansi_cast": ["typed.write.mode"],
    "divide_by_zero": ["kpis.write.mode"],
    "large_etl": ['parts[3].cast("long")', 'product_id_from_page(F.col("page"))'],
    "missing_aggregation": ["revenue = spark.sql("],
    "missing_input": ["spark.table(invoices_table)"],
    "python_keyerror": ['t["revenue"]'],
    "python_name": ['.agg(F.count("*")'],
    "result_size": ["for row in enriched.collect():"],
    "schema_drift": [".agg("],
    "table_exists": ["daily.write.format"],
    "timestamp_pattern": ["transactions.write.mode"],
    "transient_rerun": ["rates = fetch_rates(spark, batch_id)"],
    "tutorial": ["selection = spark.sql("],
    "udf_null": ['return "***-***-" + phone[-4:]', "contacts.write.mode"],
    "union_mismatch": ["all_sales = web.union(store)"],
    "wrong_args": ["output_table = sys.argv[2]"],
}
SCENARIOS = sorted(p.parent.name for p in SAMPLE_JOBS.glob("*/scenario.json"))


def app_file(scenario: str) -> str:
    spec = json.loads((SAMPLE_JOBS / scenario / "scenario.json").read_text())
    job = next(job for job in spec["jobs"] if job["name"] == spec["app_job"])
    return (SAMPLE_JOBS / scenario / job["spark"]["file"]).read_text()


def test_the_failures_listed_are_scenarios() -> None:
    assert set(FAILING) <= set(SCENARIOS) and len(SCENARIOS) >= 16


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_sample_jobs_show_the_failing_statement_within_budget(scenario: str) -> None:
    code = app_file(scenario)
    focus = [line_of(code, fragment) for fragment in FAILING.get(scenario, [])]  # a new scenario: no traceback
    for budget in (40, 80, 150, 250, 600):
        ctx = checked(code, focus, budget)
        assert ctx.tokens <= budget or (focus and ctx.shown == ((focus[0], focus[0]),))
        assert all(is_shown(ctx, line) for line in focus[:1])
    if focus:
        ctx = checked(code, focus, 600)
        assert is_shown(ctx, *statement_of(code, focus[0])) and all(is_shown(ctx, line) for line in focus)
    assert checked(code, focus, 100_000).complete
    assert checked(code, [], 120).tokens <= 120


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_sample_jobs_any_line_can_be_the_focus(scenario: str) -> None:
    code = app_file(scenario)
    total = len(code.splitlines())
    step = 1 if total <= 120 else total // 20  # every line of a small file, 20 of a big one
    for line in range(1, total + 1, step):
        ctx = checked(code, [line], 100)
        assert is_shown(ctx, line)
        assert ctx.tokens <= 100 or ctx.shown == ((line, line),)

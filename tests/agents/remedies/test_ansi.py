"""ANSI remedies: the try_ form Spark names (A101) and the timestamp pattern (A102), on real Spark logs
(tests/data/logs) and on code shapes other than the scenarios' with evidence made of real log lines."""

from __future__ import annotations

import ast
import glob
import json
import re
import textwrap
import zipfile
from pathlib import Path

import pytest

from agents.distill import distill
from agents.guard import accepted, check_patch
from agents.record import Evidence, Patch
from agents.remedies import diagnose_by_rules, fix_by_rules
from agents.remedies.ansi import _TRY_NAME, infer_pattern, parses, replacement_for
from tests.fixtures.agents import changed_lines, load_spark_log

# Message lines as Spark 4.3 prints them (from the captured logs in tests/data/logs).
DIVIDE = ("pyspark.errors.exceptions.captured.ArithmeticException: [DIVIDE_BY_ZERO] Division by zero. Use "
          "`try_divide` to tolerate divisor being 0 and return NULL instead. If necessary set "
          "\"spark.sql.ansi.enabled\" to \"false\" to bypass this error. SQLSTATE: 22012")
CAST = ("pyspark.errors.exceptions.captured.NumberFormatException: [CAST_INVALID_INPUT] The value 'seven' of the "
        "type \"STRING\" cannot be cast to \"INT\" because it is malformed. Correct the value as per the syntax, or "
        "change its target type. Use `try_cast` to tolerate malformed input and return NULL instead. SQLSTATE: 22018")
TIMESTAMP = ("pyspark.errors.exceptions.captured.DateTimeException: [CANNOT_PARSE_TIMESTAMP] Text '{value}' could "
             "not be parsed: Invalid value for MonthOfYear (valid values 1 - 12): 25. Use `try_to_timestamp` to "
             "tolerate invalid input string and return NULL instead. SQLSTATE: 22007")


def _evidence_sql(exception: str, line: int, position: int) -> Evidence:
    error_class = re.search(r"\[([A-Z_]+)\]", exception).group(1)  # type: ignore[union-attr]
    context = f"== SQL (line {line}, position {position}) =="
    return Evidence(error_class=error_class, exception=exception, key_lines=[exception, context],
                    distilled=f"error class: {error_class}\n    41| {exception}\n    42| {context}\n")


def _evidence_df(exception: str, function: str, line: int, file: str = "job.py") -> Evidence:
    error_class = re.search(r"\[([A-Z_]+)\]", exception).group(1)  # type: ignore[union-attr]
    distilled = (f"error class: {error_class}\n    41| {exception}\n    42| == DataFrame ==\n"
                 f"    43| \"{function}\" was called from\n    44| /app/mount/{file}:{line}\n")
    return Evidence(error_class=error_class, exception=exception, key_lines=[exception], distilled=distilled)



def _heal(evidence: Evidence, code: str, rule: str = "try-function") -> Patch | None:
    diagnosis = diagnose_by_rules(evidence, code)
    assert diagnosis is not None and diagnosis.rule == rule and diagnosis.category == "code"
    patch = fix_by_rules(diagnosis, evidence, code, {"file": "job.py"})
    if patch is not None:
        assert patch.kind == "code" and patch.source == "rule" and patch.applicability == "changes-results"
        assert patch.code is not None
        ast.parse(patch.code)
        verdicts = check_patch(code, patch, job_spark={})
        assert accepted(verdicts), ([v for v in verdicts if not v.ok], patch.code)
    return patch


# --- real logs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "changed"), [
    ("cast_invalid_input", [
        '-typed = spark.sql("SELECT id, CAST(price AS DECIMAL(10,2)) AS price FROM raw_prices")',
        '+typed = spark.sql("SELECT id, TRY_CAST(price AS DECIMAL(10,2)) AS price FROM raw_prices")']),
    ("divide_by_zero", [  # integral division stays integral: a zero divisor gives NULL
        '-prices = spark.sql("SELECT sale_id, amount DIV quantity AS unit_price FROM sales")',
        '+prices = spark.sql("SELECT sale_id, amount DIV NULLIF(quantity, 0) AS unit_price FROM sales")']),
    ("ansi_divide_df", [  # only the division Spark names, not the multiplication beside it
        '-    (F.col("clicks") / F.col("views")).alias("click_rate"),  # views can be 0',
        '+    F.try_divide(F.col("clicks"), F.col("views")).alias("click_rate"),  # views can be 0']),
    ("ansi_cast_df", [
        '-typed = raw.withColumn("qty", F.col("qty").cast("int"))',
        '+typed = raw.withColumn("qty", F.col("qty").try_cast("int"))']),
    ("ansi_timestamp", [  # the value '25/02/2024 08:00' reads as day/month/year
        '-parsed = events.select("id", F.to_timestamp("seen", "MM/dd/yyyy HH:mm").alias("seen_at"))',
        '+parsed = events.select("id", F.to_timestamp("seen", "dd/MM/yyyy HH:mm").alias("seen_at"))']),
])
def test_real_logs_are_healed_where_spark_points(name: str, changed: list[str]) -> None:
    log = load_spark_log(name)
    evidence = distill(log.stdout, log.stderr, app_file_name=f"{name}.py")
    diagnosis = diagnose_by_rules(evidence, log.code)
    assert diagnosis is not None and diagnosis.source == "rule" and diagnosis.confidence >= 0.75
    assert diagnosis.rule == ("timestamp-pattern" if name == "ansi_timestamp" else "try-function")
    assert evidence.error_class and evidence.error_class in diagnosis.root_cause
    patch = fix_by_rules(diagnosis, evidence, log.code, {"file": f"{name}.py"})
    assert patch is not None and patch.code is not None and patch.applicability == "changes-results"
    assert changed_lines(log.code, patch.code) == changed
    assert accepted(check_patch(log.code, patch, job_spark={}))


# --- the family: every condition of Spark 4.3 whose message names a try_ function -------------------


def _spark_conditions() -> dict[str, dict]:
    import pyspark

    jars = glob.glob(str(Path(pyspark.__file__).parent / "jars" / "spark-common-utils_*.jar"))
    assert jars, "pyspark's jars hold Spark's error conditions"
    with zipfile.ZipFile(jars[0]) as jar:
        return json.loads(jar.read("error/error-conditions.json"))


def test_every_try_function_spark_names_has_an_edit() -> None:
    named: dict[str, str] = {}

    def walk(name: str, condition: dict) -> None:
        match = _TRY_NAME.search(" ".join(condition.get("message", [])))
        if match:
            named[name] = match.group(1)
        for sub, child in condition.get("subClass", {}).items():
            walk(f"{name}.{sub}", child)

    for name, condition in _spark_conditions().items():
        walk(name, condition)
    assert {"CAST_INVALID_INPUT", "CAST_OVERFLOW", "DIVIDE_BY_ZERO", "REMAINDER_BY_ZERO", "INVALID_URL",
            "INVALID_ARRAY_INDEX_IN_ELEMENT_AT"} <= set(named)
    for condition, try_name in named.items():
        replacement = replacement_for(try_name)
        assert replacement.cast or replacement.operator or replacement.functions, condition
        # What the edit writes is the function Spark named.
        assert try_name in {replacement.try_name, *(new for _, new in replacement.functions)}, condition


# --- SQL code shapes -------------------------------------------------------------------------------


def test_sql_multiline_fstring_changes_only_the_division_spark_points_at() -> None:
    code = textwrap.dedent('''\
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.getOrCreate()
        table = "web.visits"
        rates = spark.sql(
            f"""
            SELECT page,
                   clicks / views AS click_rate,   -- views can be 0
                   spend / clicks AS cost_per_click
            FROM {table}
            """
        )
        rates.show()
        ''')
    # Spark's position is in the SQL it ran: line 4 of the literal's text, column 12 ("spend").
    patch = _heal(_evidence_sql(DIVIDE, 4, 12), code)
    assert patch is not None and patch.code is not None
    assert changed_lines(code, patch.code) == [
        "-           spend / clicks AS cost_per_click",
        "+           try_divide(spend, clicks) AS cost_per_click",
    ]


def test_sql_position_not_in_the_literal_changes_every_instance_of_the_one_statement() -> None:
    code = textwrap.dedent('''\
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.getOrCreate()
        names = spark.sql("SELECT id, name FROM customers")
        typed = spark.sql("SELECT CAST(qty AS INT) AS qty, "
                          "cast(price as decimal(10,2)) AS price FROM raw")
        typed.write.saveAsTable("typed")
        ''')
    patch = _heal(_evidence_sql(CAST, 3, 99), code)
    assert patch is not None and patch.code is not None
    assert changed_lines(code, patch.code) == [
        '-typed = spark.sql("SELECT CAST(qty AS INT) AS qty, "',
        '-                  "cast(price as decimal(10,2)) AS price FROM raw")',
        '+typed = spark.sql("SELECT TRY_CAST(qty AS INT) AS qty, "',
        '+                  "try_cast(price as decimal(10,2)) AS price FROM raw")',
    ]


def test_sql_ambiguous_statement_is_diagnosed_without_a_fix() -> None:
    code = textwrap.dedent('''\
        a = spark.sql("SELECT x / y AS r FROM t1")
        b = spark.sql("SELECT id, p / q AS r FROM t2")
        ''')
    assert _heal(_evidence_sql(DIVIDE, 7, 1), code) is None  # the position matches neither statement
    patch = _heal(_evidence_sql(DIVIDE, 1, 8), code)  # it matches the first: x / y
    assert patch is not None and patch.code is not None
    assert changed_lines(code, patch.code) == ['-a = spark.sql("SELECT x / y AS r FROM t1")',
                                          '+a = spark.sql("SELECT try_divide(x, y) AS r FROM t1")']


def test_sql_overflow_gets_the_try_function_the_message_names() -> None:
    exception = ("org.apache.spark.SparkArithmeticException: [ARITHMETIC_OVERFLOW] long overflow. Use 'try_multiply' "
                 "to tolerate overflow and return NULL instead. If necessary set \"spark.sql.ansi.enabled\" to "
                 "\"false\" to bypass this error. SQLSTATE: 22003")
    code = textwrap.dedent('''\
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.appName("order-totals").getOrCreate()
        totals = spark.sql("SELECT id, qty * unit_price + fee AS total, qty + 1 FROM orders")
        totals.write.mode("overwrite").saveAsTable("order_totals")
        spark.stop()
        ''')
    patch = _heal(_evidence_sql(exception, 1, 12), code)
    assert patch is not None and patch.code is not None
    assert 'SELECT id, try_multiply(qty, unit_price) + fee AS total, qty + 1 FROM orders' in patch.code


# --- DataFrame code shapes -------------------------------------------------------------------------


def test_dataframe_division_without_functions_module_imports_it() -> None:
    code = textwrap.dedent('''\
        """KPIs."""
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.getOrCreate()
        df = spark.table("kpis")
        out = df.withColumn("rate", df["conversions"] / df["sessions"])  # may be 0 sessions
        out.write.saveAsTable("rates")
        ''')
    patch = _heal(_evidence_df(DIVIDE, "__truediv__", 6), code)
    assert patch is not None and patch.code is not None
    assert changed_lines(code, patch.code) == [
        "+from pyspark.sql import functions as F",
        '-out = df.withColumn("rate", df["conversions"] / df["sessions"])  # may be 0 sessions',
        '+out = df.withColumn("rate", F.try_divide(df["conversions"], df["sessions"]))  # may be 0 sessions',
    ]


def test_dataframe_with_imported_functions_adds_the_try_function_to_that_import() -> None:
    code = textwrap.dedent('''\
        from pyspark.sql import SparkSession
        from pyspark.sql.functions import col, lit


        def rates(df):
            return df.select(
                (col("a") / col("b")).alias("r1"),
                (col("a") / lit(2)).alias("half"),
            )


        spark = SparkSession.builder.getOrCreate()
        rates(spark.table("pairs")).write.saveAsTable("rates")
        ''')
    patch = _heal(_evidence_df(DIVIDE, "__truediv__", 7), code)
    assert patch is not None and patch.code is not None
    assert changed_lines(code, patch.code) == [
        "-from pyspark.sql.functions import col, lit",
        "+from pyspark.sql.functions import col, lit, try_divide",
        '-        (col("a") / col("b")).alias("r1"),',
        '+        try_divide(col("a"), col("b")).alias("r1"),',
    ]


def test_dataframe_function_becomes_its_try_form() -> None:
    exception = ("pyspark.errors.exceptions.captured.ArrayIndexOutOfBoundsException: [INVALID_ARRAY_INDEX_IN_ELEMENT_AT] "
                 "The index 5 is out of bounds. The array has 3 elements. Use `try_element_at` to tolerate accessing "
                 "element at invalid index and return NULL instead. SQLSTATE: 22003")
    code = textwrap.dedent('''\
        import pyspark.sql.functions as sf

        third = orders.select(sf.element_at("items", 3).alias("third"), sf.element_at("items", 1).alias("first"))
        fifth = orders.select(sf.element_at("items", 5).alias("fifth"))
        ''')
    patch = _heal(_evidence_df(exception, "element_at", 4), code)
    assert patch is not None and patch.code is not None
    assert changed_lines(code, patch.code) == [
        '-fifth = orders.select(sf.element_at("items", 5).alias("fifth"))',
        '+fifth = orders.select(sf.try_element_at("items", 5).alias("fifth"))',
    ]


def test_without_a_query_context_there_is_a_diagnosis_but_no_fix() -> None:
    code = 'from pyspark.sql import functions as F\ndf.select(F.col("a").cast("int"), F.col("b").cast("int"))\n'
    evidence = Evidence(error_class="CAST_INVALID_INPUT", exception=CAST, key_lines=[CAST])
    assert _heal(evidence, code) is None
    diagnosis = diagnose_by_rules(evidence, code)
    assert diagnosis is not None and diagnosis.confidence < 0.75
    # A context in another file than the application's: not ours to edit.
    assert fix_by_rules(diagnosis, _evidence_df(CAST, "cast", 2, file="lib.py"), code, {"file": "job.py"}) is None


# --- timestamp patterns ----------------------------------------------------------------------------


@pytest.mark.parametrize(("old", "value", "new"), [
    ("MM/dd/yyyy HH:mm:ss", "25/03/2024 10:00:00", "dd/MM/yyyy HH:mm:ss"),
    ("yyyy-MM-dd HH:mm", "2024/03/05 10:00", "yyyy/MM/dd HH:mm"),  # separators only: fields keep their meaning
    ("yyyy-MM-dd'T'HH:mm", "2024-13-05T10:00", "yyyy-dd-MM'T'HH:mm"),
    ("MM/dd/yyyy", "2024-12-31", None),  # nothing close reads it
    ("dd/MM/yyyy", "05/03/2024", None),  # the old pattern reads it: not the problem
])
def test_infer_pattern(old: str, value: str, new: str | None) -> None:
    assert infer_pattern(old, value) == new
    if new:
        assert parses(new, value) and not parses(old, value)


def test_timestamp_pattern_in_a_module_constant_and_in_sql() -> None:
    code = textwrap.dedent('''\
        from pyspark.sql import functions as F

        EVENT_FORMAT = "MM/dd/yyyy HH:mm"  # the devices' format
        events = spark.table("raw").select(F.to_timestamp("ts", EVENT_FORMAT).alias("ts"))
        ''')
    evidence = Evidence(error_class="CANNOT_PARSE_TIMESTAMP", exception=TIMESTAMP.format(value="25/12/2024 10:00"))
    patch = _heal(evidence, code, "timestamp-pattern")
    assert patch is not None and patch.code is not None
    assert changed_lines(code, patch.code) == ['-EVENT_FORMAT = "MM/dd/yyyy HH:mm"  # the devices\' format',
                                          '+EVENT_FORMAT = "dd/MM/yyyy HH:mm"  # the devices\' format']

    sql = textwrap.dedent('''\
        days = spark.sql("""
            SELECT id, to_date(day, 'yyyy-MM-dd') AS day,
                   to_timestamp(seen, 'yyyy-MM-dd HH:mm') AS seen
            FROM raw""")
        ''')
    evidence = _evidence_sql(TIMESTAMP.format(value="2024/03/05 10:00"), 3, 12)
    patch = _heal(evidence, sql, "timestamp-pattern")
    assert patch is not None and patch.code is not None
    assert changed_lines(sql, patch.code) == ["-           to_timestamp(seen, 'yyyy-MM-dd HH:mm') AS seen",
                                         "+           to_timestamp(seen, 'yyyy/MM/dd HH:mm') AS seen"]


def test_timestamp_without_a_close_pattern_falls_back_to_the_try_form() -> None:
    code = textwrap.dedent('''\
        from pyspark.sql import SparkSession
        from pyspark.sql.functions import to_timestamp

        spark = SparkSession.builder.getOrCreate()
        raw = spark.table("raw_events")
        events = raw.select(to_timestamp("ts", "MM/dd/yyyy").alias("ts"))
        events.write.saveAsTable("events")
        ''')
    evidence = _evidence_df(TIMESTAMP.format(value="yesterday"), "to_timestamp", 6)
    patch = _heal(evidence, code, "timestamp-pattern")
    assert patch is not None and patch.code is not None
    assert changed_lines(code, patch.code) == [
        "-from pyspark.sql.functions import to_timestamp",
        "+from pyspark.sql.functions import to_timestamp, try_to_timestamp",
        '-events = raw.select(to_timestamp("ts", "MM/dd/yyyy").alias("ts"))',
        '+events = raw.select(try_to_timestamp("ts", "MM/dd/yyyy").alias("ts"))',
    ]


def test_the_same_divisor_in_the_failing_statement_is_changed_with_it() -> None:
    code = textwrap.dedent('''\
        from pyspark.sql import SparkSession
        from pyspark.sql import functions as F

        spark = SparkSession.builder.getOrCreate()
        kpis = spark.table("stats").select(
            "campaign_id",
            (F.col("conversions") / F.col("sessions")).alias("conversion_rate"),
            (F.col("spend") / F.col("sessions")).alias("cost_per_session"),
            (F.col("spend") / F.col("conversions")).alias("cost_per_conversion"),
        )
        per_day = spark.table("daily").select((F.col("spend") / F.col("sessions")).alias("x"))
        kpis.write.saveAsTable("kpis")
        ''')
    patch = _heal(_evidence_df(DIVIDE, "__truediv__", 7), code)
    assert patch is not None and patch.code is not None
    assert changed_lines(code, patch.code) == [
        '-    (F.col("conversions") / F.col("sessions")).alias("conversion_rate"),',
        '-    (F.col("spend") / F.col("sessions")).alias("cost_per_session"),',
        '+    F.try_divide(F.col("conversions"), F.col("sessions")).alias("conversion_rate"),',
        '+    F.try_divide(F.col("spend"), F.col("sessions")).alias("cost_per_session"),',
    ]
    sql = textwrap.dedent('''\
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.getOrCreate()
        kpis = spark.sql("""
            SELECT campaign_id,
                   conversions / sessions AS conversion_rate,
                   spend / sessions AS cost_per_session,
                   spend / conversions AS cost_per_conversion
            FROM stats""")
        kpis.write.saveAsTable("kpis")
        ''')
    patch = _heal(_evidence_sql(DIVIDE, 3, 12), sql)
    assert patch is not None and patch.code is not None
    assert changed_lines(sql, patch.code) == [
        "-           conversions / sessions AS conversion_rate,",
        "-           spend / sessions AS cost_per_session,",
        "+           try_divide(conversions, sessions) AS conversion_rate,",
        "+           try_divide(spend, sessions) AS cost_per_session,",
    ]

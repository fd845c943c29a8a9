"""C121 table-exists-overwrite: the job's own output table exists on a re-run → overwrite it.

Real log: tables_exists_df (saveAsTable in the default mode on a table an earlier write left). The
SQL shapes use the same log with the statement's frame and table name changed: Spark prints the
same condition and message for a CTAS (checked on Spark 4.3 with the Hive/Derby metastore).
"""

from __future__ import annotations

import ast
import textwrap

from agents.distill import distill
from agents.guard import accepted, check_patch
from agents.record import Evidence
from agents.remedies import diagnose_by_rules, fix_by_rules
from tests.fixtures.agents import changed_lines, load_spark_log


def _evidence(app: str, line: int, source: str, table: str) -> Evidence:
    """The real tables_exists_df log, as if another app failed at ``line`` on ``table``."""
    log = load_spark_log("tables_exists_df")
    stdout = log.stdout.replace('/app/mount/tables_exists_df.py", line 12',
                                f'/app/mount/{app}", line {line}')
    stdout = stdout.replace('totals.write.format("parquet").saveAsTable("region_totals")', source)
    stdout = stdout.replace("`region_totals`", table)
    assert f'{app}", line {line}' in stdout and table in stdout
    return distill(stdout, log.stderr.replace("`region_totals`", table), app_file_name=app)


def _heal(evidence: Evidence, code: str, app: str) -> str:
    diagnosis = diagnose_by_rules(evidence, code)
    assert diagnosis is not None and (diagnosis.rule, diagnosis.category) == ("table-exists-overwrite", "code")
    assert diagnosis.confidence >= 0.9
    patch = fix_by_rules(diagnosis, evidence, code, {"file": app})
    assert patch is not None and patch.kind == "code" and patch.code and patch.applicability == "changes-results"
    ast.parse(patch.code)
    verdicts = check_patch(code, patch, job_spark={})
    assert accepted(verdicts), verdicts
    return patch.code


def _not_fixed(evidence: Evidence, code: str, app: str) -> None:
    diagnosis = diagnose_by_rules(evidence, code)
    assert diagnosis is not None and diagnosis.rule == "table-exists-overwrite"
    assert fix_by_rules(diagnosis, evidence, code, {"file": app}) is None


def test_real_log_overwrites_only_the_failing_writer() -> None:
    log = load_spark_log("tables_exists_df")
    evidence = distill(log.stdout, log.stderr, app_file_name=log.app_file_name)
    new = _heal(evidence, log.code, log.app_file_name)
    assert changed_lines(log.code, new) == [
        '-totals.write.format("parquet").saveAsTable("region_totals")',
        '+totals.write.format("parquet").mode("overwrite").saveAsTable("region_totals")',
    ]


def test_error_mode_becomes_overwrite_and_the_table_is_a_variable() -> None:
    code = textwrap.dedent('''\
        import sys

        from pyspark.sql import SparkSession

        out = sys.argv[1]
        spark = SparkSession.builder.getOrCreate()
        report = spark.table("raw.events").groupBy("kind").count()
        (report.write
            .mode("errorifexists")  # fail loudly
            .partitionBy("kind")
            .saveAsTable(out))
        ''')
    evidence = _evidence("events.py", 11, ".saveAsTable(out))", "`spark_catalog`.`mart`.`kinds`")
    assert changed_lines(code, _heal(evidence, code, "events.py")) == [
        '-    .mode("errorifexists")  # fail loudly',
        '+    .mode("overwrite")  # fail loudly',
    ]
    keyword = code.replace('.mode("errorifexists")  # fail loudly\n', "").replace(
        ".saveAsTable(out)", '.saveAsTable(out, mode="error")')
    evidence = _evidence("events.py", 10, '.saveAsTable(out, mode="error"))', "`spark_catalog`.`mart`.`kinds`")
    assert '.saveAsTable(out, mode="overwrite")' in _heal(evidence, keyword, "events.py")


def test_sql_ctas_in_a_multiline_f_string_becomes_an_overwriting_write() -> None:
    code = textwrap.dedent('''\
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.getOrCreate()
        target = "mart.daily_totals"
        spark.sql("SELECT * FROM mart.daily_totals").show()  # yesterday's, for the log
        spark.sql(f"""
            CREATE TABLE {target} USING parquet PARTITIONED BY (day)
            AS SELECT amount, day FROM raw.sales WHERE amount > 0
        """)
        ''')
    evidence = _evidence("totals.py", 6, 'spark.sql(f"""', "`spark_catalog`.`mart`.`daily_totals`")
    new = _heal(evidence, code, "totals.py")  # the f-string's only value was the table: a plain string is left
    assert changed_lines(code, new)[-1] == (
        '+spark.sql("SELECT amount, day FROM raw.sales WHERE amount > 0").write.format("parquet")'
        '.partitionBy("day").mode("overwrite").saveAsTable(target)')
    assert 'spark.sql("SELECT * FROM mart.daily_totals").show()' in new
    with_value = code.replace("WHERE amount > 0", "WHERE amount > {minimum}").replace(
        'target = "mart.daily_totals"', 'target, minimum = "mart.daily_totals", 0')
    assert changed_lines(with_value, _heal(evidence, with_value, "totals.py"))[-1] == (
        '+spark.sql(f"SELECT amount, day FROM raw.sales WHERE amount > {minimum}").write.format("parquet")'
        '.partitionBy("day").mode("overwrite").saveAsTable(target)')


def test_sql_ctas_found_by_the_table_name_and_views_replaced() -> None:
    code = textwrap.dedent('''\
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.getOrCreate()


        def build(session):
            session.sql("CREATE TABLE top_customers AS "
                        "SELECT customer_id, SUM(amount) AS total FROM sales GROUP BY customer_id")
            session.sql("CREATE VIEW recent_sales AS SELECT * FROM sales WHERE day > '2024-01-01'")


        build(spark)
        ''')
    # The frame names the call of build(), not the statement: the table name finds it.
    evidence = _evidence("build.py", 12, "build(spark)", "`spark_catalog`.`default`.`top_customers`")
    assert changed_lines(code, _heal(evidence, code, "build.py"))[-1] == (
        '+    session.sql("SELECT customer_id, SUM(amount) AS total FROM sales GROUP BY customer_id")'
        '.write.mode("overwrite").saveAsTable("top_customers")')
    evidence = _evidence("build.py", 9, "session.sql(...)", "`spark_catalog`.`default`.`recent_sales`")
    assert changed_lines(code, _heal(evidence, code, "build.py")) == [
        '-    session.sql("CREATE VIEW recent_sales AS SELECT * FROM sales WHERE day > \'2024-01-01\'")',
        '+    session.sql("CREATE OR REPLACE VIEW recent_sales AS SELECT * FROM sales WHERE day > \'2024-01-01\'")',
    ]


def test_tables_the_job_does_not_write_or_cannot_replace_are_not_fixed() -> None:
    reads_only = textwrap.dedent('''\
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.getOrCreate()
        spark.table("shared.customers").write.saveAsTable("mart.customers_copy")
        ''')
    # Spark names a table the job only reads, and the failing line is not one of its writes.
    evidence = _evidence("copy.py", 3, "spark = ...", "`spark_catalog`.`shared`.`customers`")
    diagnosis = diagnose_by_rules(evidence, reads_only)
    assert diagnosis is not None and diagnosis.rule == "table-exists-overwrite" and diagnosis.confidence < 0.9
    assert fix_by_rules(diagnosis, evidence, reads_only, {"file": "copy.py"}) is None
    # The failing line writes another table than the one Spark names: no fix.
    evidence = _evidence("copy.py", 4, "...", "`spark_catalog`.`shared`.`customers`")
    _not_fixed(evidence, reads_only, "copy.py")
    # A CTAS with a LOCATION has no writer equivalent we trust; a mode we cannot read is left alone.
    located = 'spark.sql("CREATE TABLE t USING parquet LOCATION \'/data/t\' AS SELECT 1 AS x")\n'
    _not_fixed(_evidence("l.py", 1, located, "`spark_catalog`.`default`.`t`"), located, "l.py")
    chosen = 'df.write.mode(mode).saveAsTable("t")\n'
    _not_fixed(_evidence("m.py", 1, chosen, "`spark_catalog`.`default`.`t`"), chosen, "m.py")

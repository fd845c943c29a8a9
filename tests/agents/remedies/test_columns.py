"""Column rules (agents/remedies/columns.py): C101 unresolved-column and C102 ambiguous-column.

Evidence comes from real Spark logs (tests/data/logs); code shapes other than the captured apps
reuse a real log's evidence with the failing line of the shape under test.
"""

from __future__ import annotations

import ast
import textwrap

import pytest

from agents.guard import accepted, check_patch
from agents.record import Evidence
from agents.remedies import diagnose_by_rules, fix_by_rules
from agents.remedies.columns import best_suggestion, qualify_ambiguous, replace_column, suggestion_score
from tests.fixtures.agents import changed_lines, evidence_of, load_spark_log


def _line_of(code: str, text: str) -> int:
    return next(n for n, line in enumerate(code.splitlines(), start=1) if text in line)


def _heal(log_name: str, code: str, failing: str) -> tuple[str, str]:
    """The rule's patched code (and its explanation) for ``code`` failing on the line containing
    ``failing``, with the evidence of the real log ``log_name``; the guard must accept it."""
    evidence = evidence_of(load_spark_log(log_name)).model_copy(
        update={"user_line": _line_of(code, failing), "user_frame": None})
    diagnosis = diagnose_by_rules(evidence, code)
    assert diagnosis is not None and diagnosis.source == "rule"
    patch = fix_by_rules(diagnosis, evidence, code)
    assert patch is not None and patch.code is not None and patch.applicability == "safe"
    ast.parse(patch.code)
    assert accepted(check_patch(code, patch))
    return patch.code, patch.explanation


# --- C101 unresolved column: the captured apps --------------------------------------------------


def test_unresolved_column_fix_replaces_customer_id_with_account_id() -> None:
    log = load_spark_log("unresolved_column")
    evidence = evidence_of(log)
    spark = {"file": "unresolved_column.py", "driverMemory": "1g"}
    diagnosis = diagnose_by_rules(evidence, log.code, spark)
    assert diagnosis is not None
    assert (diagnosis.rule, diagnosis.category, diagnosis.source) == ("unresolved-column", "code", "rule")
    assert diagnosis.confidence >= 0.75
    assert "account_id" in diagnosis.root_cause
    assert diagnosis.evidence and all(line in evidence.key_lines + [evidence.exception] for line in diagnosis.evidence)

    patch = fix_by_rules(diagnosis, evidence, log.code, spark)
    assert patch is not None and patch.kind == "code" and patch.source == "rule" and patch.code
    ast.parse(patch.code)
    assert changed_lines(log.code, patch.code) == [
        '-report = spark.sql("SELECT customer_id, balance FROM accounts WHERE balance > 50")',
        '+report = spark.sql("SELECT account_id, balance FROM accounts WHERE balance > 50")',
    ]
    assert accepted(check_patch(log.code, patch))


def test_unresolved_column_in_dataframe_code_keeps_other_names() -> None:
    log = load_spark_log("unresolved_column_df")
    evidence = evidence_of(log)
    diagnosis = diagnose_by_rules(evidence, log.code)
    assert diagnosis is not None and diagnosis.rule == "unresolved-column"
    patch = fix_by_rules(diagnosis, evidence, log.code)
    assert patch is not None and patch.code is not None
    changed = changed_lines(log.code, patch.code)
    assert changed == [
        '-    return df.groupBy("order_date").agg(F.sum(F.col("qty")).alias("total_qty"))',
        '+    return df.groupBy("order_date").agg(F.sum(F.col("quantity")).alias("total_qty"))',
    ]
    assert accepted(check_patch(log.code, patch))


def test_unresolved_column_without_close_suggestion_is_diagnosed_but_not_fixed() -> None:
    evidence = Evidence(
        error_class="UNRESOLVED_COLUMN.WITH_SUGGESTION",
        message_parameters={"objectName": "`zebra`"},
        suggestions=["account_id", "balance"],
        exception="AnalysisException: [UNRESOLVED_COLUMN.WITH_SUGGESTION] ... `zebra` ...",
    )
    code = 'spark.sql("SELECT zebra FROM accounts")\n'
    diagnosis = diagnose_by_rules(evidence, code)
    assert diagnosis is not None and diagnosis.rule == "unresolved-column" and diagnosis.confidence < 0.75
    assert fix_by_rules(diagnosis, evidence, code) is None


def test_suggestion_scores_pick_the_renamed_column() -> None:
    assert suggestion_score("customer_id", "account_id") > suggestion_score("customer_id", "account_name")
    assert best_suggestion("customer_id", ["account_id", "balance", "account_name"]) == ("account_id", pytest.approx(0.44, abs=0.01))
    assert best_suggestion("qty", ["quantity", "order_id"])[0] == "quantity"  # type: ignore[index]
    assert best_suggestion("amt", ["a.amount"])[0] == "amount"  # type: ignore[index]
    # Nothing close, or two equally close: leave it to the model.
    assert best_suggestion("zebra", ["account_id", "balance"]) is None
    assert best_suggestion("amount", ["amount_usd", "amount_eur"]) is None


# --- C101: what a reference is, and the dataflow -------------------------------------------------


def test_replace_column_touches_column_references_only() -> None:
    code = textwrap.dedent(
        '''\
        from pyspark.sql import functions as F

        customer_id = 3  # customer_id is a Python variable here
        df = spark.table("accounts")
        out = df.select(F.col("customer_id"), df.customer_id, "customer_id_hash", df["customer_id"])
        out = out.filter(f"customer_id > {customer_id}")
        '''
    )
    result = replace_column(code, "customer_id", "account_id")
    assert result is not None
    new, count = result
    assert count == 4
    assert 'customer_id = 3  # customer_id is a Python variable here' in new
    assert 'F.col("account_id"), df.account_id, "customer_id_hash", df["account_id"]' in new
    assert 'f"account_id > {customer_id}"' in new


def test_replace_column_stays_in_the_dataflow_of_the_failing_statement() -> None:
    code = textwrap.dedent(
        '''\
        customers = spark.sql("SELECT customer_id, name FROM customers")
        report = spark.sql(
            "SELECT customer_id, balance "
            "FROM accounts"
        )
        '''
    )
    new, count = replace_column(code, "customer_id", "account_id", near_line=2) or ("", 0)
    assert count == 1
    assert 'SELECT customer_id, name FROM customers' in new  # another table: its own customer_id
    assert '"SELECT account_id, balance "' in new
    # Without a line every reference is replaced.
    assert replace_column(code, "customer_id", "account_id")[1] == 2  # type: ignore[index]
    assert replace_column(code, "nothing_like_it", "x") is None


DATAFRAME_JOB = textwrap.dedent(
    '''\
    from pyspark.sql import SparkSession, Window
    from pyspark.sql import functions as F

    spark = SparkSession.builder.appName("orders").getOrCreate()

    orders = spark.table("sales.orders")
    targets = spark.table("sales.targets")
    by_day = orders.groupBy("order_date", "qty").agg(F.sum("amount").alias("total"))
    joined = by_day.join(targets, on=["order_date", "qty"], how="left")
    ranked = joined.withColumn("rank", F.rank().over(Window.partitionBy("qty").orderBy("total")))
    report = joined.select("order_date", F.col("qty"), joined.qty, joined["qty"]).where("qty > 0")
    report.orderBy(F.desc("qty")).write.saveAsTable("sales.report")  # qty: units sold

    stock = spark.table("inventory.stock").select("sku", "qty")  # another source, with its own qty
    stock.write.saveAsTable("inventory.snapshot")
    '''
)


def test_every_reference_along_a_dataframe_dataflow_changes() -> None:
    # The real log's failure (qty renamed to quantity upstream), here failing on the groupBy line.
    new, explanation = _heal("unresolved_column_df", DATAFRAME_JOB, 'by_day = orders.groupBy("order_date", "qty")')
    assert changed_lines(DATAFRAME_JOB, new) == [
        '-by_day = orders.groupBy("order_date", "qty").agg(F.sum("amount").alias("total"))',
        '-joined = by_day.join(targets, on=["order_date", "qty"], how="left")',
        '-ranked = joined.withColumn("rank", F.rank().over(Window.partitionBy("qty").orderBy("total")))',
        '-report = joined.select("order_date", F.col("qty"), joined.qty, joined["qty"]).where("qty > 0")',
        '-report.orderBy(F.desc("qty")).write.saveAsTable("sales.report")  # qty: units sold',
        '+by_day = orders.groupBy("order_date", "quantity").agg(F.sum("amount").alias("total"))',
        '+joined = by_day.join(targets, on=["order_date", "quantity"], how="left")',
        '+ranked = joined.withColumn("rank", F.rank().over(Window.partitionBy("quantity").orderBy("total")))',
        # df.qty becomes df["quantity"]: the guard admits no attribute the original does not use
        '+report = joined.select("order_date", F.col("quantity"), joined["quantity"], joined["quantity"])'
        '.where("quantity > 0")',
        '+report.orderBy(F.desc("quantity")).write.saveAsTable("sales.report")  # qty: units sold',
    ]
    assert replace_column(DATAFRAME_JOB, "qty", "quantity", near_line=8)[0].count("joined.quantity") == 1  # type: ignore[index]
    assert "8 references" in explanation


SQL_JOB = textwrap.dedent(
    '''\
    import sys

    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    start = sys.argv[1]
    spark = SparkSession.builder.getOrCreate()
    spark.table("shop.orders").createOrReplaceTempView("orders_v")

    summary = spark.sql(f"""
        SELECT customer_id,  -- customer_id: the buyer
               SUM(amount) AS total
        FROM orders_v o
        WHERE o.customer_id IS NOT NULL AND order_date >= '{start}'
        GROUP BY customer_id
    """)
    top = summary.orderBy(F.desc("total")).selectExpr("customer_id AS buyer", "total")
    legacy = spark.sql("SELECT customer_id FROM crm.customers")  # another table
    '''
)


def test_every_reference_in_multiline_fstring_sql_and_downstream_changes() -> None:
    new, explanation = _heal("unresolved_column", SQL_JOB, 'summary = spark.sql(f"""')
    assert changed_lines(SQL_JOB, new) == [
        '-    SELECT customer_id,  -- customer_id: the buyer',
        '+    SELECT account_id,  -- customer_id: the buyer',
        "-    WHERE o.customer_id IS NOT NULL AND order_date >= '{start}'",
        '-    GROUP BY customer_id',
        "+    WHERE o.account_id IS NOT NULL AND order_date >= '{start}'",
        '+    GROUP BY account_id',
        '-top = summary.orderBy(F.desc("total")).selectExpr("customer_id AS buyer", "total")',
        '+top = summary.orderBy(F.desc("total")).selectExpr("account_id AS buyer", "total")',
    ]
    assert "4 references" in explanation


def test_sql_table_names_aliases_and_concatenated_strings() -> None:
    code = textwrap.dedent(
        '''\
        report = spark.sql(
            "SELECT s.regn, COUNT(*) AS n "
            "FROM sales s JOIN regn ON s.id = regn.id "
            "GROUP BY s.regn"
        )
        '''
    )
    new, count = replace_column(code, "regn", "region", near_line=1) or ("", 0)
    assert count == 2
    assert '"SELECT s.region, COUNT(*) AS n "' in new
    assert '"FROM sales s JOIN regn ON s.id = regn.id "' in new  # a table called regn stays
    assert '"GROUP BY s.region"' in new


@pytest.mark.parametrize(
    "creation",
    [
        'report = report.withColumn("customer_id", F.col("balance"))',
        'report = report.select(F.col("balance").alias("customer_id"))',
        'report = spark.sql("SELECT balance AS customer_id FROM accounts")',
        'report = report.withColumnRenamed("balance", "customer_id")',
    ],
)
def test_no_fix_when_the_job_itself_makes_a_column_of_that_name(creation: str) -> None:
    code = textwrap.dedent(
        '''\
        from pyspark.sql import functions as F

        report = spark.sql("SELECT customer_id, balance FROM accounts WHERE balance > 50")
        {creation}
        report.select("customer_id").show()
        '''
    ).format(creation=creation)
    assert replace_column(code, "customer_id", "account_id", near_line=3) is None
    evidence = evidence_of(load_spark_log("unresolved_column")).model_copy(update={"user_line": 3, "user_frame": None})
    diagnosis = diagnose_by_rules(evidence, code)
    assert diagnosis is not None and diagnosis.rule == "unresolved-column"
    assert fix_by_rules(diagnosis, evidence, code) is None  # a diagnosis for the model, no guess


def test_expression_strings_are_parsed_as_sql() -> None:
    code = textwrap.dedent(
        '''\
        from pyspark.sql.functions import col, expr

        df = spark.read.parquet("/data/events")
        out = (df.where("user_id IS NOT NULL")
               .withColumn("uid", expr("lower(user_id)"))
               .filter(col("user_id") != "")
               .select("uid", "user_id_v2"))
        '''
    )
    new, count = replace_column(code, "user_id", "visitor_id", near_line=4) or ("", 0)
    assert count == 3
    assert '.where("visitor_id IS NOT NULL")' in new and 'expr("lower(visitor_id)")' in new
    assert 'col("visitor_id") != ""' in new and '"user_id_v2"' in new


# --- C102 ambiguous column -----------------------------------------------------------------------


def test_ambiguous_join_key_in_sql_is_qualified_by_the_left_side() -> None:
    log = load_spark_log("ambiguous_reference")
    evidence = evidence_of(log)
    diagnosis = diagnose_by_rules(evidence, log.code)
    assert diagnosis is not None
    assert (diagnosis.rule, diagnosis.category, diagnosis.source) == ("ambiguous-column", "code", "rule")
    assert "a.account_id, o.account_id" in diagnosis.root_cause and diagnosis.evidence
    patch = fix_by_rules(diagnosis, evidence, log.code, {"file": "ambiguous_reference.py"})
    assert patch is not None and patch.code is not None and patch.applicability == "safe"
    assert changed_lines(log.code, patch.code) == [
        '-    "SELECT account_id, account_name, amount FROM accounts a JOIN orders o ON a.account_id = o.account_id"',
        '+    "SELECT a.account_id, account_name, amount FROM accounts a JOIN orders o ON a.account_id = o.account_id"',
    ]
    assert accepted(check_patch(log.code, patch))


def test_ambiguous_join_key_in_dataframe_join_is_qualified_by_the_kept_side() -> None:
    log = load_spark_log("columns_ambiguous_df")  # payments LEFT JOIN accounts, then groupBy("account_id")
    evidence = evidence_of(log)
    diagnosis = diagnose_by_rules(evidence, log.code)
    assert diagnosis is not None and diagnosis.rule == "ambiguous-column"
    patch = fix_by_rules(diagnosis, evidence, log.code)
    assert patch is not None and patch.code is not None
    assert changed_lines(log.code, patch.code) == [
        '-    .groupBy("account_id", "account_name")',
        '+    .groupBy(payments.account_id, "account_name")',
    ]
    assert accepted(check_patch(log.code, patch))


SQL_RIGHT_JOIN = textwrap.dedent(
    '''\
    rows = spark.sql("""
        SELECT sku, -- the product
               s.qty, p.price
        FROM stock AS s
        RIGHT JOIN prices p ON p.sku = s.sku AND p.day = s.day
        WHERE sku IS NOT NULL
        ORDER BY sku
    """)
    '''
)


def test_ambiguous_key_of_a_right_join_in_multiline_sql() -> None:
    evidence = evidence_of(load_spark_log("ambiguous_reference")).model_copy(update={
        "message_parameters": {"name": "`sku`", "referenceNames": "`s`.`sku`, `p`.`sku`"},
        "user_line": 1, "user_frame": None})
    new, _ = _heal_with(evidence, SQL_RIGHT_JOIN)
    assert changed_lines(SQL_RIGHT_JOIN, new) == [
        '-    SELECT sku, -- the product',
        '+    SELECT p.sku, -- the product',
        '-    WHERE sku IS NOT NULL',
        '-    ORDER BY sku',
        '+    WHERE p.sku IS NOT NULL',
        '+    ORDER BY p.sku',
    ]


def _heal_with(evidence: Evidence, code: str) -> tuple[str, str]:
    diagnosis = diagnose_by_rules(evidence, code)
    assert diagnosis is not None and diagnosis.rule == "ambiguous-column"
    patch = fix_by_rules(diagnosis, evidence, code)
    assert patch is not None and patch.code is not None
    assert accepted(check_patch(code, patch))
    return patch.code, patch.explanation


def test_ambiguous_key_selected_after_a_separate_dataframe_join() -> None:
    code = textwrap.dedent(
        '''\
        from pyspark.sql import functions as F

        joined = orders.join(customers, orders["cust"] == customers["cust"])
        out = joined.groupBy("cust").agg(F.countDistinct(F.col("cust")).alias("n"), F.sum("amount"))
        '''
    )
    evidence = evidence_of(load_spark_log("columns_ambiguous_df")).model_copy(update={
        "message_parameters": {"name": "`cust`", "referenceNames": "`cust`, `cust`"}, "user_line": 4})
    new, explanation = _heal_with(evidence, code)
    assert changed_lines(code, new) == [
        '-out = joined.groupBy("cust").agg(F.countDistinct(F.col("cust")).alias("n"), F.sum("amount"))',
        '+out = joined.groupBy(orders["cust"]).agg(F.countDistinct(orders["cust"]).alias("n"), F.sum("amount"))',
    ]
    assert "2 references" in explanation


@pytest.mark.parametrize(
    ("code", "parameters"),
    [
        # full outer join: either side may be NULL
        ('rows = spark.sql("SELECT k FROM a FULL OUTER JOIN b ON a.k = b.k")\n', ("k", "`a`.`k`, `b`.`k`")),
        # not the join key: the two sides hold different data
        ('rows = spark.sql("SELECT name FROM a JOIN b ON a.id = b.id")\n', ("name", "`a`.`name`, `b`.`name`")),
        ('rows = a.join(b, a.id == b.id).select("name")\n', ("name", "`name`, `name`")),
        ('rows = a.join(b, a.k == b.k, "full").select("k")\n', ("k", "`k`, `k`")),
        # three candidates
        ('rows = spark.sql("SELECT k FROM a JOIN b ON a.k = b.k JOIN c ON c.k = a.k")\n',
         ("k", "`a`.`k`, `b`.`k`, `c`.`k`")),
    ],
)
def test_ambiguous_column_without_one_safe_side_is_diagnosed_but_not_fixed(
        code: str, parameters: tuple[str, str]) -> None:
    name, references = parameters
    evidence = evidence_of(load_spark_log("ambiguous_reference")).model_copy(update={
        "message_parameters": {"name": f"`{name}`", "referenceNames": references}, "user_line": 1})
    diagnosis = diagnose_by_rules(evidence, code)
    assert diagnosis is not None and diagnosis.rule == "ambiguous-column"
    assert fix_by_rules(diagnosis, evidence, code) is None
    qualifiers = [q.rpartition(".")[0].strip("`") for q in references.split(", ")]
    assert qualify_ambiguous(code, name, qualifiers, near_line=1) is None


def test_dataflow_through_a_function_and_its_caller() -> None:
    code = textwrap.dedent(
        '''\
        from pyspark.sql import functions as F


        def totals(df):
            """Per customer."""
            return df.groupBy("cust").agg(F.sum("amt").alias("total"))


        result = totals(spark.table("sales")).orderBy("cust", F.col("total").desc())
        result.where(F.col("cust").isNotNull()).count()
        refunds = spark.table("refunds").select("cust", "amt")  # not fed to totals: its own cust
        '''
    )
    new, count = replace_column(code, "cust", "customer", near_line=6) or ("", 0)
    assert count == 3
    assert changed_lines(code, new) == [
        '-    return df.groupBy("cust").agg(F.sum("amt").alias("total"))',
        '+    return df.groupBy("customer").agg(F.sum("amt").alias("total"))',
        '-result = totals(spark.table("sales")).orderBy("cust", F.col("total").desc())',
        '-result.where(F.col("cust").isNotNull()).count()',
        '+result = totals(spark.table("sales")).orderBy("customer", F.col("total").desc())',
        '+result.where(F.col("customer").isNotNull()).count()',
    ]


def test_a_method_of_the_same_name_is_not_a_column() -> None:
    code = 'df = spark.table("t")\nn = df.select("count", df.count).where(df.count > df.count()).count()\n'
    new, count = replace_column(code, "count", "cnt", near_line=2) or ("", 0)
    assert count == 3
    assert new.splitlines()[1] == 'n = df.select("cnt", df.cnt).where(df.cnt > df.count()).count()'


def test_two_close_suggestions_are_diagnosed_but_not_guessed() -> None:
    # Real log: user_id renamed to visitor_id; Spark also suggests event_id, scored nearly as close.
    log = load_spark_log("columns_unresolved_agg")
    evidence = evidence_of(log)
    assert evidence.suggestions[:2] == ["event_id", "visitor_id"]
    diagnosis = diagnose_by_rules(evidence, log.code)
    assert diagnosis is not None and diagnosis.rule == "unresolved-column" and diagnosis.confidence < 0.75
    assert fix_by_rules(diagnosis, evidence, log.code) is None
    # Given the column, the fixer finds the reference inside the aggregation.
    new, count = replace_column(log.code, "user_id", "visitor_id", near_line=evidence.user_line) or ("", 0)
    assert count == 1
    assert changed_lines(log.code, new) == [
        '-        F.countDistinct("user_id").alias("active_users"),',
        '+        F.countDistinct("visitor_id").alias("active_users"),',
    ]

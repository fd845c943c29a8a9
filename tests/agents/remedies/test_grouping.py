"""The grouping family (C111 missing-aggregation, C112 union-by-name) on real Spark logs and other code shapes."""

from __future__ import annotations

import ast
import textwrap

import pytest

from agents.guard import accepted, check_patch
from agents.record import Diagnosis, Evidence, Patch
from agents.remedies import diagnose_by_rules, fix_by_rules, rule_by_code
from tests.fixtures.agents import changed_lines, evidence_of, load_spark_log


def _healed(code: str, evidence: Evidence, rule: str, file: str = "app.py") -> tuple[Diagnosis, Patch]:
    diagnosis = diagnose_by_rules(evidence, code)
    assert diagnosis is not None and (diagnosis.rule, diagnosis.category, diagnosis.source) == (rule, "code", "rule")
    patch = fix_by_rules(diagnosis, evidence, code, {"file": file})
    assert patch is not None and patch.kind == "code" and patch.source == "rule" and patch.code
    assert patch.applicability == "changes-results"
    ast.parse(patch.code)
    assert accepted(check_patch(code, patch, job_spark={}))
    return diagnosis, patch


def _not_fixed(code: str, evidence: Evidence, rule: str) -> Diagnosis:
    diagnosis = diagnose_by_rules(evidence, code)
    assert diagnosis is not None and diagnosis.rule == rule
    assert fix_by_rules(diagnosis, evidence, code, {}) is None
    return diagnosis


def _missing_aggregation(column: str, grouping: list[str] | None, outputs: list[str] | None = None,
                         line: int | None = None) -> Evidence:
    """Evidence as distill makes it from Spark 4.3's MISSING_AGGREGATION (lines as the real log prints them)."""
    exception = (f'pyspark.errors.exceptions.captured.AnalysisException: [MISSING_AGGREGATION] The non-aggregating '
                 f'expression "{column}" is based on columns which are not participating in the GROUP BY clause.')
    plan = ""
    if grouping is not None:
        ids = [f"{g}#{i}" for i, g in enumerate(grouping)]
        out = [f"{o}#{i + 10}" for i, o in enumerate(outputs or [*grouping, column])]
        plan = f"Aggregate [{', '.join(ids)}], [{', '.join(out)}, sum(amount#3) AS total#20]"
    frame = f'File "/app/mount/app.py", line {line}, in <module>' if line else None
    return Evidence(error_class="MISSING_AGGREGATION", exception=exception, key_lines=[exception],
                    distilled=f"{exception}\nAdd the columns or the expression to the GROUP BY ...\n{plan}\n",
                    user_frame=frame, user_line=line)


# --- C111 missing-aggregation: real logs ---------------------------------------------------------


def test_missing_aggregation_in_an_fstring_sql_adds_the_column_to_that_group_by() -> None:
    log = load_spark_log("grouping_missing_agg_sql")
    evidence = evidence_of(log)
    diagnosis, patch = _healed(log.code, evidence, "missing-aggregation", log.app_file_name)
    assert diagnosis.confidence >= 0.9 and "`browser`" in diagnosis.root_cause
    assert changed_lines(log.code, patch.code or "") == [
        "-    GROUP BY s.site_name",
        "+    GROUP BY s.site_name, v.browser",
    ]


def test_missing_aggregation_in_the_dataframe_api_moves_the_column_into_group_by() -> None:
    log = load_spark_log("grouping_missing_agg_df")
    evidence = evidence_of(log)
    _, patch = _healed(log.code, evidence, "missing-aggregation", log.app_file_name)
    assert changed_lines(log.code, patch.code or "") == [
        '-    sales.groupBy("region")',
        '+    sales.groupBy("region", F.col("product_line"))',
        '-        F.col("product_line"),  # wanted per line as well',
    ]


# --- C111: other code shapes (evidence from the real log's lines) --------------------------------


def test_plain_sql_in_a_file_with_several_aggregations_picks_the_grouping_spark_names() -> None:
    code = textwrap.dedent(
        '''\
        by_day = spark.sql("SELECT day, store, SUM(amount) AS total FROM sales GROUP BY day, store")
        by_store = spark.sql("SELECT store, region, SUM(amount) AS total FROM sales GROUP BY store")
        by_day.join(by_store, "store").write.saveAsTable("mart.totals")
        '''
    )
    # No traceback line: Spark's plan (Aggregate [store]) picks the second query.
    evidence = _missing_aggregation("region", ["store"])
    _, patch = _healed(code, evidence, "missing-aggregation")
    assert changed_lines(code, patch.code or "") == [
        '-by_store = spark.sql("SELECT store, region, SUM(amount) AS total FROM sales GROUP BY store")',
        '+by_store = spark.sql("SELECT store, region, SUM(amount) AS total FROM sales GROUP BY store, region")',
    ]


def test_sql_in_concatenated_strings_with_an_expression_over_the_column() -> None:
    code = textwrap.dedent(
        '''\
        query = (
            "SELECT store, UPPER(region) AS region_name, SUM(amount) AS total "
            "FROM sales "  # the raw export
            "GROUP BY store "
            "ORDER BY total DESC"
        )
        spark.sql(query).show()
        '''
    )
    evidence = _missing_aggregation("region", ["store"], line=7)
    _, patch = _healed(code, evidence, "missing-aggregation")
    assert changed_lines(code, patch.code or "") == [
        '-    "GROUP BY store "',
        '+    "GROUP BY store, region "',
    ]


def test_dataframe_with_an_aliased_attribute_reference_and_trailing_commas() -> None:
    code = textwrap.dedent(
        '''\
        out = df.groupby(
            df.store,
        ).agg(df.region.alias("r"), F.max("amount"))
        '''
    )
    evidence = _missing_aggregation("region", ["store"], line=1)
    _, patch = _healed(code, evidence, "missing-aggregation")
    assert patch.code == textwrap.dedent(
        '''\
        out = df.groupby(
            df.store,
            df.region.alias("r"),
        ).agg(F.max("amount"))
        '''
    )


def test_two_groupings_that_fit_are_diagnosed_not_fixed() -> None:
    code = textwrap.dedent(
        '''\
        a = spark.sql("SELECT store, region, SUM(amount) FROM sales GROUP BY store")
        b = spark.sql("SELECT store, region, MAX(amount) FROM returns GROUP BY store")
        '''
    )
    diagnosis = _not_fixed(code, _missing_aggregation("region", ["store"]), "missing-aggregation")
    assert diagnosis.confidence < 0.9


def test_a_column_only_inside_a_dataframe_expression_is_left_to_the_model() -> None:
    # Grouping by the column would add an output column; aggregating it may be what was meant.
    code = 'out = df.groupBy("store").agg(F.upper("region").alias("r"), F.sum("amount"))\n'
    _not_fixed(code, _missing_aggregation("region", ["store"], line=1), "missing-aggregation")


def test_a_grouping_other_than_the_plans_is_not_changed() -> None:
    code = 'spark.sql("SELECT day, region, SUM(amount) FROM sales GROUP BY day").show()\n'
    _not_fixed(code, _missing_aggregation("region", ["store"], line=1), "missing-aggregation")


# --- C112 union-by-name: real logs ---------------------------------------------------------------


def test_union_all_of_inputs_with_different_columns_becomes_union_by_name() -> None:
    log = load_spark_log("grouping_union")
    evidence = evidence_of(log)
    assert evidence.error_class == "NUM_COLUMNS_MISMATCH"
    diagnosis, patch = _healed(log.code, evidence, "union-by-name", log.app_file_name)
    assert diagnosis.confidence >= 0.9
    assert changed_lines(log.code, patch.code or "") == [
        "-events = archive.unionAll(new)",
        "+events = archive.unionByName(new, allowMissingColumns=True)",
    ]


def test_union_by_name_missing_a_column_gets_allow_missing_columns() -> None:
    log = load_spark_log("grouping_union_by_name")
    evidence = evidence_of(log)
    assert evidence.error_class == "UNRESOLVED_COLUMN_AMONG_FIELD_NAMES"
    rule = rule_by_code("C112")
    assert rule is not None and rule.matches(evidence) and rule.fix is not None
    diagnosis = rule.diagnose(evidence, log.code)
    assert diagnosis is not None and diagnosis.confidence >= 0.9
    patch = rule.fix(evidence, log.code, {}, {"spark": {"file": log.app_file_name}})
    assert patch is not None and patch.code is not None
    assert changed_lines(log.code, patch.code) == [
        "-events = new.unionByName(old)",
        "+events = new.unionByName(old, allowMissingColumns=True)",
    ]
    assert accepted(check_patch(log.code, patch, job_spark={}))
    # The same condition raised by a call that is not a union is not this rule's.
    code = log.code.replace("new.unionByName(old)", 'new.dropDuplicates(["device"])')
    assert rule.diagnose(evidence, code) is None


# --- C112: other code shapes ---------------------------------------------------------------------

_NUM_COLUMNS = ("pyspark.errors.exceptions.captured.AnalysisException: [NUM_COLUMNS_MISMATCH] {op} can only be "
                "performed on inputs with the same number of columns, but the first input has 3 columns and the "
                "second input has 4 columns. SQLSTATE: 42826;")


def _num_columns(line: int | None, op: str = "UNION") -> Evidence:
    text = _NUM_COLUMNS.format(op=op)
    frame = f'File "/app/mount/app.py", line {line}, in <module>' if line else None
    return Evidence(error_class="NUM_COLUMNS_MISMATCH", exception=text, key_lines=[text], distilled=text,
                    user_frame=frame, user_line=line)


def test_a_multi_line_chain_changes_only_the_union_of_the_failing_statement() -> None:
    code = textwrap.dedent(
        '''\
        history = jan.union(feb)  # same columns
        everything = (
            history
            .union(mar)  # mar gained a column
            .where("amount > 0")
        )
        '''
    )
    _, patch = _healed(code, _num_columns(2), "union-by-name")
    assert changed_lines(code, patch.code or "") == [
        "-    .union(mar)  # mar gained a column",
        "+    .unionByName(mar, allowMissingColumns=True)  # mar gained a column",
    ]


def test_several_unions_in_the_failing_statement_are_not_guessed() -> None:
    code = "everything = jan.union(feb).union(mar)\n"
    _not_fixed(code, _num_columns(1), "union-by-name")


def test_sql_union_is_diagnosed_only() -> None:
    # Spark 4.3 SQL has no UNION ALL BY NAME (a parse error), so there is no by-name form to write.
    code = 'spark.sql("SELECT * FROM jan UNION ALL SELECT * FROM mar").write.saveAsTable("mart.all")\n'
    diagnosis = _not_fixed(code, _num_columns(1), "union-by-name")
    assert diagnosis.confidence < 0.9


@pytest.mark.parametrize("op", ["EXCEPT", "INTERSECT"])
def test_other_set_operators_are_diagnosed_only(op: str) -> None:
    code = f"left = jan.{op.lower()}All(mar)\n"
    diagnosis = _not_fixed(code, _num_columns(1, op), "union-by-name")
    assert op in diagnosis.root_cause


def test_quoted_names_and_fstring_placeholders_map_back_to_the_literal() -> None:
    code = textwrap.dedent(
        '''\
        table = "sales"
        out = spark.sql(f"SELECT `store`, region, SUM(amount) FROM {table} GROUP BY `store` ORDER BY 1")
        '''
    )
    _, patch = _healed(code, _missing_aggregation("region", ["store"], line=2), "missing-aggregation")
    assert changed_lines(code, patch.code or "")[1] == (
        '+out = spark.sql(f"SELECT `store`, region, SUM(amount) FROM {table} GROUP BY `store`, region ORDER BY 1")')


def test_a_group_by_ending_in_an_expression_gets_the_column_before_its_first_column() -> None:
    code = textwrap.dedent(
        '''\
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.getOrCreate()
        spark.sql("SELECT day, region, SUM(amount) FROM sales GROUP BY day, UPPER(store)").show()
        '''
    )
    # The plan's grouping has expressions (commas inside calls): the one SELECT that fits decides.
    evidence = _missing_aggregation("region", None, line=4)
    _, patch = _healed(code, evidence, "missing-aggregation")
    assert "GROUP BY region, day, UPPER(store)" in (patch.code or "")

"""The semantic guard: fixes that would make a failing job look healthy while its outputs go wrong
are rejected; the known-good fixes of every scenario and the catalog's own fixes still pass."""

from __future__ import annotations

import textwrap

import pytest

from agents.guard import SEMANTIC_RULES, accepted, check_patch, rejection_reasons
from agents.prompts import PatchAnswer
from agents.record import Diagnosis, Patch
from agents.remedies import diagnose_by_rules, fix_by_rules
from bench.guard_probe import ORDINARY_EDITS, with_lines
from bench.guard_probe import ORIGINAL as PROBE_JOB
from bench.scripted import diagnosis_answer, patch_answer
from sample_jobs import list_scenarios
from tests.fixtures.agents import evidence_of, load_spark_log
from tests.paths import LOGS_DIR

JOB = textwrap.dedent(
    """\
    import sys

    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    source_table, output_table = sys.argv[1], sys.argv[2]
    spark = SparkSession.builder.appName("orders").getOrCreate()

    orders = spark.read.option("header", "true").csv("/app/mount/orders.csv")
    orders = orders.withColumn("amount", F.col("amount").cast("decimal(12,2)"))
    daily = orders.groupBy("order_date").agg(F.sum("amount").alias("revenue"))
    daily.write.mode("overwrite").saveAsTable(output_table)
    daily.createOrReplaceTempView("daily")
    spark.sql("INSERT OVERWRITE TABLE mart.daily_copy SELECT order_date, revenue FROM daily WHERE revenue > 0")
    spark.stop()
    """
)
WRITE = 'daily.write.mode("overwrite").saveAsTable(output_table)'
CAST = 'orders = orders.withColumn("amount", F.col("amount").cast("decimal(12,2)"))'
STOP = "spark.stop()"


def code(original: str = JOB, **replacements: str) -> str:
    """The job with lines replaced: ``code(WRITE=...)`` names the line by its constant."""
    lines = {"WRITE": WRITE, "CAST": CAST, "STOP": STOP}
    new = original
    for name, text in replacements.items():
        assert lines[name] in new, name
        new = new.replace(lines[name], textwrap.dedent(text).strip("\n"))
    return new


def diagnosis(category: str = "code") -> Diagnosis:
    return Diagnosis(category=category, root_cause="the job failed", confidence=0.9)  # type: ignore[arg-type]


def verdict_of(rule: str, new: str, original: str = JOB, *, category: str | None = "code", source: str = "model"):
    verdicts = check_patch(original, Patch(kind="code", code=new, source=source),  # type: ignore[arg-type]
                           diagnosis=diagnosis(category) if category else None)
    return next(v for v in verdicts if v.rule == rule)


def rejects(rule: str, new: str, *words: str, **kwargs) -> str:
    result = verdict_of(rule, new, **kwargs)
    assert not result.ok, f"{rule} accepted:\n{new}"
    for word in words:
        assert word in result.reason, (word, result.reason)
    return result.reason


def accepts(rule: str, new: str, **kwargs) -> None:
    result = verdict_of(rule, new, **kwargs)
    assert result.ok, result.reason


def test_every_semantic_rule_has_a_verdict_after_the_safety_rules() -> None:
    verdicts = check_patch(JOB, Patch(kind="code", code=code(CAST=CAST.replace(".cast(", ".try_cast("))))
    assert [v.rule for v in verdicts][-len(SEMANTIC_RULES):] == list(SEMANTIC_RULES)
    assert SEMANTIC_RULES == ("no-swallowed-errors", "keeps-outputs", "keeps-write-modes", "keeps-error-checks",
                              "no-new-row-filters")
    assert accepted(verdicts), rejection_reasons(verdicts)


# --- no-swallowed-errors -------------------------------------------------------------------------------

SWALLOWING = {
    "except-exception-pass": (f"try:\n    {WRITE}\nexcept Exception:\n    pass", "except Exception: pass"),
    "bare-except-print": (f"try:\n    {WRITE}\nexcept:\n    print('write failed')", "except:"),
    "tuple-with-exception": (f"try:\n    {WRITE}\nexcept (ValueError, Exception) as e:\n    print(e)",
                             "except (ValueError, Exception)"),
    "base-exception": (f"try:\n    {WRITE}\nexcept BaseException:\n    spark.stop()", "except BaseException"),
    "py4j": (f"from py4j.protocol import Py4JJavaError\ntry:\n    {WRITE}\nexcept Py4JJavaError:\n    daily.show()",
             "Py4JJavaError"),
    "analysis-exception": ("from pyspark.errors import AnalysisException\n"
                           f"try:\n    {WRITE}\nexcept AnalysisException as exc:\n    print(exc)", "AnalysisException"),
    "pyspark-error-by-module": ("import pyspark.errors\n"
                                f"try:\n    {WRITE}\nexcept pyspark.errors.ArithmeticException:\n    pass",
                                "ArithmeticException"),
    "contextlib-suppress": (f"import contextlib\nwith contextlib.suppress(Exception):\n    {WRITE}",
                            "contextlib.suppress(Exception)"),
    "suppress-imported": (f"from contextlib import suppress\nwith suppress(Exception):\n    {WRITE}",
                          "suppress(Exception)"),
    "exit-zero-in-handler": (f"try:\n    {WRITE}\nexcept ValueError:\n    sys.exit(0)", "sys.exit(0)"),
    "exit-bare-in-handler": (f"try:\n    {WRITE}\nexcept ValueError:\n    sys.exit()", "sys.exit()"),
    "return-none-in-udf": ("def parse(text):\n    try:\n        return float(text)\n    except Exception:\n"
                           "        return None\n" + WRITE, "except Exception: return None"),
    "nested-in-function": ("def save(df):\n    try:\n        df.write.mode('overwrite').saveAsTable(output_table)\n"
                           "    except Exception as err:\n        print('skipped', err)\nsave(daily)",
                           "except Exception as err"),
}


@pytest.mark.parametrize("name", sorted(SWALLOWING))
def test_handlers_that_swallow_errors_are_rejected(name: str) -> None:
    new, words = SWALLOWING[name]
    reason = rejects("no-swallowed-errors", code(WRITE=new), words)
    assert "line " in reason


def test_the_reason_names_the_handler_what_it_surrounds_and_where() -> None:
    new = code(WRITE=f"try:\n    {WRITE}\nexcept Exception:\n    pass")
    reason = rejects("no-swallowed-errors", new)
    line = new.splitlines().index("except Exception:") + 1
    assert f"`except Exception: pass` around `{WRITE.replace(chr(34), chr(39))}` at line {line}" in reason, reason
    for hint in ("instead", "try ", "use "):
        assert hint not in reason


KEEPING = {
    "log-and-reraise": f"try:\n    {WRITE}\nexcept Exception as exc:\n    print('write failed', exc)\n    raise",
    "wrap-and-raise": f"try:\n    {WRITE}\nexcept Exception as exc:\n    raise RuntimeError('write failed') from exc",
    "narrow-class": f"try:\n    n = int(sys.argv[3])\nexcept (IndexError, ValueError):\n    n = 0\n{WRITE}",
    "exit-nonzero": f"try:\n    {WRITE}\nexcept Exception as exc:\n    print(exc)\n    sys.exit(1)",
    "conditional-reraise": f"try:\n    {WRITE}\nexcept Exception as exc:\n    if 'x' in str(exc):\n        print(exc)\n"
                           "    raise",
    "finally-only": f"try:\n    {WRITE}\nfinally:\n    print('done')",
    "suppress-narrow": f"import contextlib\nwith contextlib.suppress(KeyError):\n    d = {{}}['k']\n{WRITE}",
}


@pytest.mark.parametrize("name", sorted(KEEPING))
def test_handlers_that_keep_the_failure_are_accepted(name: str) -> None:
    accepts("no-swallowed-errors", code(WRITE=KEEPING[name]))


def test_a_handler_of_the_original_is_not_new_but_another_copy_of_it_is() -> None:
    swallow = "try:\n    spark.sql('REFRESH TABLE mart.daily_copy')\nexcept Exception:\n    pass\n"
    original = code(STOP=swallow + STOP)
    accepts("no-swallowed-errors", code(original, CAST=CAST.replace(".cast(", ".try_cast(")), original=original)
    twice = code(original, WRITE=f"try:\n    {WRITE}\nexcept Exception:\n    pass")
    rejects("no-swallowed-errors", twice, "except Exception: pass", original=original)


# --- keeps-outputs ---------------------------------------------------------------------------------------

DROPPED_OUTPUTS = {
    "write-removed": ("daily.show()", "no longer writes {output_table}"),
    "renamed-output": ('daily.write.mode("overwrite").saveAsTable(output_table + "_fixed")',
                       "no longer writes {output_table}"),
    "other-argument": ('daily.write.mode("overwrite").saveAsTable(sys.argv[3])', "no longer writes {output_table}"),
    "rebound-variable": ('output_table = output_table + "_v2"\n' + WRITE, "no longer writes {output_table}"),
    "literal-instead": ('daily.write.mode("overwrite").saveAsTable("mart.daily_tmp")',
                        "no longer writes {output_table}"),
}


@pytest.mark.parametrize("name", sorted(DROPPED_OUTPUTS))
def test_a_fix_that_drops_or_redirects_an_output_is_rejected(name: str) -> None:
    new, words = DROPPED_OUTPUTS[name]
    rejects("keeps-outputs", code(WRITE=new), words)


def test_a_sql_output_removed_or_turned_into_a_read_is_rejected() -> None:
    insert = 'spark.sql("INSERT OVERWRITE TABLE mart.daily_copy SELECT order_date, revenue FROM daily WHERE revenue > 0")'
    assert insert in JOB
    read = JOB.replace(insert, 'spark.sql("SELECT order_date, revenue FROM daily WHERE revenue > 0").show()')
    rejects("keeps-outputs", read, "no longer writes mart.daily_copy", "line 14 of the original")
    rejects("keeps-outputs", JOB.replace(insert + "\n", ""), "mart.daily_copy")


def test_a_write_call_removed_from_two_is_rejected() -> None:
    original = code(WRITE=f"if daily.isEmpty():\n    {WRITE}\nelse:\n    {WRITE}")
    one = code(WRITE=WRITE)
    rejects("keeps-outputs", one, "2 write calls in the original, 1 now", original=original)


KEPT_OUTPUTS = {
    "format-and-mode": 'daily.write.format("parquet").mode("overwrite").saveAsTable(output_table)',
    "keyword-mode": 'daily.write.saveAsTable(output_table, mode="overwrite")',
    "extra-column": 'daily = daily.withColumn("k", F.lit(1))\n' + WRITE,
    "both-branches": f"if daily.isEmpty():\n    {WRITE}\nelse:\n    {WRITE}",
}


@pytest.mark.parametrize("name", sorted(KEPT_OUTPUTS))
def test_a_fix_that_keeps_every_output_is_accepted(name: str) -> None:
    accepts("keeps-outputs", code(WRITE=KEPT_OUTPUTS[name]))


def test_a_ctas_rewritten_as_an_overwriting_save_keeps_its_output() -> None:
    original = code(WRITE='spark.sql("CREATE TABLE mart.daily USING parquet AS SELECT * FROM orders")')
    fixed = code(WRITE='spark.sql("SELECT * FROM orders").write.format("parquet").mode("overwrite")'
                 '.saveAsTable("mart.daily")')
    for rule in ("keeps-outputs", "keeps-write-modes"):
        accepts(rule, fixed, original=original)
    view = code(WRITE='spark.sql("CREATE VIEW mart.v AS SELECT * FROM orders")')
    for rule in ("keeps-outputs", "keeps-write-modes"):
        accepts(rule, view.replace("CREATE VIEW", "CREATE OR REPLACE VIEW"), original=view)


def test_temporary_views_are_not_outputs() -> None:
    original = code(WRITE=WRITE + '\nspark.sql("CREATE OR REPLACE TEMP VIEW recent AS SELECT * FROM daily")')
    accepts("keeps-outputs", code(WRITE=WRITE + '\ndaily.createOrReplaceTempView("recent")'), original=original)


def test_file_outputs_are_outputs_too() -> None:
    original = code(WRITE='daily.write.mode("overwrite").parquet("/app/mount/out/daily")')
    accepts("keeps-outputs", code(WRITE='daily.write.mode("overwrite").format("parquet").save("/app/mount/out/daily")'),
            original=original)
    rejects("keeps-outputs", code(WRITE='daily.write.mode("overwrite").parquet("/app/mount/out/daily_v2")'),
            "/app/mount/out/daily", original=original)


# --- keeps-write-modes ----------------------------------------------------------------------------------

BAD_MODES = {
    "ignore": ('daily.write.mode("ignore").saveAsTable(output_table)', "mode ignore"),
    "ignore-keyword": ('daily.write.saveAsTable(output_table, mode="ignore")', "mode ignore"),
    "ignore-file": ('daily.write.mode("ignore").saveAsTable(output_table)\n'
                    'daily.write.mode("Ignore").parquet("/app/mount/out")', "/app/mount/out"),
    "append": ('daily.write.mode("append").saveAsTable(output_table)', "appends to {output_table}"),
    "insert-into": ("daily.write.insertInto(output_table)", "appends to {output_table}"),
    "insert-into-false": ("daily.write.insertInto(output_table, overwrite=False)", "appends"),
    "writeto-append": ("daily.writeTo(output_table).append()", "appends to {output_table}"),
    "unknown-mode": ("daily.write.mode(sys.argv[3]).saveAsTable(output_table)", "cannot evaluate (sys.argv[3])"),
}


@pytest.mark.parametrize("name", sorted(BAD_MODES))
def test_writes_that_skip_or_add_to_an_output_are_rejected(name: str) -> None:
    new, words = BAD_MODES[name]
    rejects("keeps-write-modes", code(WRITE=new), words)


def test_insert_overwrite_turned_into_insert_into_is_rejected_and_named() -> None:
    new = JOB.replace("INSERT OVERWRITE TABLE mart.daily_copy", "INSERT INTO mart.daily_copy")
    rejects("keeps-write-modes", new, "appends to mart.daily_copy", "INSERT INTO", "where the original used "
            "INSERT OVERWRITE")


def test_a_ctas_that_skips_an_existing_table_is_rejected() -> None:
    original = code(WRITE='spark.sql("CREATE TABLE mart.daily AS SELECT * FROM orders")')
    new = original.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS")
    rejects("keeps-write-modes", new, "IF NOT EXISTS", "mart.daily", original=original)


GOOD_MODES = {
    "error-to-overwrite": ('daily.write.format("parquet").saveAsTable(output_table)',
                           'daily.write.format("parquet").mode("overwrite").saveAsTable(output_table)'),
    "append-kept": ('daily.write.mode("append").saveAsTable(output_table)',
                    'daily.write.mode("append").format("parquet").saveAsTable(output_table)'),
    "insert-into-kept": ("daily.write.insertInto(output_table)", "daily.select('*').write.insertInto(output_table)"),
    "insert-overwrite-flag": (WRITE, "daily.write.insertInto(output_table, overwrite=True)"),
    "overwrite-chain": (WRITE, 'daily.write.mode("overwrite").insertInto(output_table)'),
    "writeto-replace": (WRITE, "daily.writeTo(output_table).createOrReplace()"),
}


@pytest.mark.parametrize("name", sorted(GOOD_MODES))
def test_write_modes_that_keep_or_replace_the_output_are_accepted(name: str) -> None:
    before, after = GOOD_MODES[name]
    accepts("keeps-write-modes", code(WRITE=after), original=code(WRITE=before))


# --- keeps-error-checks ---------------------------------------------------------------------------------

LOOSENING = {
    "conf-set": ('spark.conf.set("spark.sql.ansi.enabled", "false")', "spark.sql.ansi.enabled=false"),
    "conf-set-bool": ('spark.conf.set("spark.sql.ansi.enabled", False)', "spark.sql.ansi.enabled"),
    "store-assignment": ('spark.conf.set("spark.sql.storeAssignmentPolicy", "LEGACY")', "storeAssignmentPolicy"),
    "legacy-key": ('spark.conf.set("spark.sql.legacy.timeParserPolicy", "LEGACY")', "spark.sql.legacy"),
    "ignore-corrupt": ('spark.conf.set("spark.sql.files.ignoreCorruptFiles", "true")', "ignoreCorruptFiles"),
    "sql-set": ('spark.sql("SET spark.sql.ansi.enabled=false")', "SQL SET"),
    "sql-set-legacy": ('spark.sql("SET spark.sql.legacy.allowNegativeScaleOfDecimal = true")', "spark.sql.legacy"),
    "drop-malformed": ('orders = spark.read.option("header", "true").option("mode", "DROPMALFORMED")'
                       '.csv("/app/mount/orders.csv")', "mode=dropmalformed"),
    "permissive-keyword": ('orders = spark.read.csv("/app/mount/orders.csv", header=True, mode="PERMISSIVE")',
                           "mode=permissive"),
    "reader-ignore-missing": ('orders = spark.read.options(header="true", ignoreMissingFiles="true")'
                              '.csv("/app/mount/orders.csv")', "ignoreMissingFiles"),
}


@pytest.mark.parametrize("name", sorted(LOOSENING))
def test_settings_that_turn_errors_off_are_rejected(name: str) -> None:
    new, words = LOOSENING[name]
    reader = new.startswith("orders =")
    patched = (JOB.replace('orders = spark.read.option("header", "true").csv("/app/mount/orders.csv")', new)
               if reader else code(CAST=new + "\n" + CAST))
    assert patched != JOB
    rejects("keeps-error-checks", patched, words)


def test_the_builder_config_is_a_setting_too() -> None:
    new = JOB.replace('.appName("orders")', '.appName("orders").config("spark.sql.ansi.enabled", "false")')
    rejects("keeps-error-checks", new, "spark.sql.ansi.enabled=false")


def test_conf_changes_of_a_config_patch_are_checked() -> None:
    for change, words in [({"spark.sql.ansi.enabled": "false"}, "spark.sql.ansi.enabled=false in conf_changes"),
                          ({"spark.sql.files.ignoreMissingFiles": "true"}, "ignoreMissingFiles"),
                          ({"spark.sql.legacy.timeParserPolicy": "LEGACY"}, "spark.sql.legacy")]:
        verdicts = check_patch(JOB, Patch(kind="config", conf_changes=change), diagnosis=diagnosis("config"))
        result = next(v for v in verdicts if v.rule == "keeps-error-checks")
        assert not result.ok and words in result.reason, result.reason
        assert all(v.ok for v in verdicts if v.rule in SEMANTIC_RULES and v.rule != "keeps-error-checks")


def test_a_catalog_remedy_may_change_error_settings_its_entry_declares() -> None:
    remedy = Patch(kind="config", conf_changes={"spark.sql.ansi.enabled": "false"}, source="rule",
                   applicability="changes-results")
    verdicts = check_patch(JOB, remedy, diagnosis=diagnosis("data"))
    assert accepted(verdicts), rejection_reasons(verdicts)
    assert "catalog remedy" in next(v.reason for v in verdicts if v.rule == "keeps-error-checks")
    accepts("keeps-error-checks", code(CAST='spark.conf.set("spark.sql.ansi.enabled", "false")\n' + CAST),
            source="rule")


KEPT_CHECKS = {
    "ansi-on": 'spark.conf.set("spark.sql.ansi.enabled", "true")',
    "failfast": 'orders = spark.read.option("header", "true").option("mode", "FAILFAST").csv("/app/mount/orders.csv")',
    "shuffle": 'spark.conf.set("spark.sql.shuffle.partitions", "16")',
    "unset-ansi": 'spark.conf.unset("spark.sql.ansi.enabled")',
}


@pytest.mark.parametrize("name", sorted(KEPT_CHECKS))
def test_settings_that_keep_errors_on_are_accepted(name: str) -> None:
    new = KEPT_CHECKS[name]
    patched = (JOB.replace('orders = spark.read.option("header", "true").csv("/app/mount/orders.csv")', new)
               if new.startswith("orders =") else code(CAST=new + "\n" + CAST))
    accepts("keeps-error-checks", patched)


def test_a_loose_reader_of_the_original_may_stay() -> None:
    original = JOB.replace('.option("header", "true")', '.option("header", "true").option("mode", "PERMISSIVE")')
    accepts("keeps-error-checks", code(original, CAST=CAST.replace(".cast(", ".try_cast(")), original=original)
    dropping = original.replace('"PERMISSIVE"', '"DROPMALFORMED"')
    rejects("keeps-error-checks", dropping, "dropmalformed", original=original)


# --- no-new-row-filters ---------------------------------------------------------------------------------

FILTERS = {
    "filter-not-null": ('orders = orders.filter(F.col("amount").isNotNull())', "filter: 1 in the original, 2 now"),
    "where-string": ('orders = orders.where("amount RLIKE \'^[0-9.]+$\'")', "filter"),
    "dropna": ('orders = orders.dropna(subset=["amount"])', "drop-nulls"),
    "na-drop": ("orders = orders.na.drop()", "drop-nulls"),
    "drop-duplicates": ('orders = orders.dropDuplicates(["order_id"])', "dedupe"),
    "distinct": ("orders = orders.distinct()", "dedupe"),
    "limit": ("orders = orders.limit(1000)", "limit"),
    "sample": ("orders = orders.sample(0.5, seed=1)", "sample"),
    "chained": ('daily = orders.where(F.col("amount") > 0).groupBy("order_date").agg(F.sum("amount"))', "filter"),
}


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_new_row_filters_are_rejected_unless_the_rows_are_invalid(name: str) -> None:
    new, words = FILTERS[name]
    patched = code(CAST=CAST + "\n" + new)
    reason = rejects("no-new-row-filters", patched, words)
    assert "at line 11" in reason or "at line 12" in reason, reason
    rejects("no-new-row-filters", patched, words, category=None)  # no diagnosis: nothing says the rows are invalid
    rejects("no-new-row-filters", patched, words, category="config")
    accepts("no-new-row-filters", patched, category="data")


@pytest.mark.parametrize(("old", "new", "kind"), [
    ("WHERE revenue > 0", "WHERE revenue > 0 AND order_date IS NOT NULL LIMIT 10", "limit"),
    ("FROM daily WHERE revenue > 0", "FROM (SELECT * FROM daily WHERE order_date IS NOT NULL) WHERE revenue > 0",
     "filter"),
    ("SELECT order_date, revenue FROM daily WHERE revenue > 0",
     "SELECT DISTINCT order_date, revenue FROM daily WHERE revenue > 0", "dedupe"),
    ("FROM daily WHERE revenue > 0", "FROM daily TABLESAMPLE (10 PERCENT) WHERE revenue > 0", "sample"),
])
def test_filters_added_to_sql_statements_are_rejected(old: str, new: str, kind: str) -> None:
    assert old in JOB
    rejects("no-new-row-filters", JOB.replace(old, new), kind)
    accepts("no-new-row-filters", JOB.replace(old, new), category="data")


PROBES_AND_REWRITES = {
    "rewritten-in-place": JOB.replace("WHERE revenue > 0", "WHERE revenue >= 0.01"),
    "sql-to-dataframe": JOB.replace(
        'spark.sql("INSERT OVERWRITE TABLE mart.daily_copy SELECT order_date, revenue FROM daily WHERE revenue > 0")',
        'daily.where("revenue > 0").write.mode("overwrite").insertInto("mart.daily_copy")'),
    "count-probe": code(CAST=CAST + '\nprint(orders.where(F.col("amount").isNull()).count(), "null amounts")'),
    "named-probe": code(CAST=CAST + '\nbad = orders.filter(F.col("amount").isNull())\nif bad.count() > 0:\n'
                        '    raise ValueError(f"{bad.count()} rows without an amount")'),
    "sql-probe": code(CAST=CAST + '\nspark.sql("SELECT count(*) FROM daily WHERE revenue IS NULL").show()'),
    "array-filter": code(CAST=CAST + '\norders = orders.withColumn("tags", F.filter(F.col("tags"), lambda t: t != ""))'),
    "count-distinct": code(CAST=CAST + '\nprint(orders.select(F.countDistinct("order_id")).first())'),
}


@pytest.mark.parametrize("name", sorted(PROBES_AND_REWRITES))
def test_rewritten_filters_and_checks_on_the_data_are_not_new_filters(name: str) -> None:
    accepts("no-new-row-filters", PROBES_AND_REWRITES[name])


def test_a_filter_whose_result_is_also_written_is_a_filter() -> None:
    new = code(CAST=CAST + '\nbad = orders.filter(F.col("amount").isNull())\nprint(bad.count())\n'
               'bad.write.mode("overwrite").saveAsTable("mart.rejects")')
    rejects("no-new-row-filters", new, "filter")


# --- config and rerun patches, unparsable code ----------------------------------------------------------


def test_config_and_rerun_patches_pass_the_code_rules() -> None:
    for patch in (Patch(kind="config", spark_changes={"driverMemory": "2g"}), Patch(kind="rerun")):
        verdicts = {v.rule: v for v in check_patch(JOB, patch, diagnosis=diagnosis("config"))}
        assert all(verdicts[rule].ok for rule in SEMANTIC_RULES), [verdicts[r] for r in SEMANTIC_RULES]


def test_code_that_does_not_compile_fails_every_code_rule() -> None:
    verdicts = {v.rule: v for v in check_patch(JOB, Patch(kind="code", code="def broken(:\n"))}
    assert all(not verdicts[rule].ok and "cannot be checked" in verdicts[rule].reason for rule in SEMANTIC_RULES)


def test_an_original_that_does_not_parse_leaves_nothing_to_keep() -> None:
    original = "this is not python(\n"
    new = code(WRITE=f"try:\n    {WRITE}\nexcept Exception:\n    pass")
    verdicts = {v.rule: v for v in check_patch(original, Patch(kind="code", code=new))}
    assert verdicts["keeps-outputs"].ok and not verdicts["no-swallowed-errors"].ok


# --- what must still pass -------------------------------------------------------------------------------

HEALED = [s for s in list_scenarios() if s.expected == "heal" and s.remedy in ("code", "config")]


@pytest.mark.parametrize("scenario", HEALED, ids=lambda s: s.name)
def test_every_known_good_fix_passes_with_the_diagnosis_a_correct_diagnosis_gives(scenario) -> None:
    answer = patch_answer(scenario)
    assert answer is not None
    original = scenario.resource_files(scenario.app_resource)[scenario.app_file].read_text(encoding="utf-8")
    patch = PatchAnswer.model_validate(answer).to_patch(original)
    found = Diagnosis(category=diagnosis_answer(scenario)["category"], root_cause="known", confidence=0.9)
    verdicts = check_patch(original, patch, job_spark=scenario.app_spec["spark"], diagnosis=found)
    assert accepted(verdicts), rejection_reasons(verdicts)
    assert len(HEALED) >= 13


def test_every_fix_the_catalog_makes_for_a_captured_failure_passes() -> None:
    """The catalog's fixes for the real Spark logs of tests/data/logs, with the rule's own diagnosis."""
    fixed, rejected = [], []
    for name in sorted(p.stem for p in LOGS_DIR.glob("*.stdout")):
        log = load_spark_log(name)
        evidence = evidence_of(log)
        found = diagnose_by_rules(evidence, log.code)
        patch = fix_by_rules(found, evidence, log.code, {}) if found is not None else None
        if patch is None:
            continue  # diagnosed only (a missing input), or no rule knows it
        fixed.append(name)
        verdicts = check_patch(log.code, patch, job_spark={}, diagnosis=found)
        if not accepted(verdicts):
            rejected.append(f"{name} ({found.rule}): {rejection_reasons(verdicts)}")
    assert not rejected, rejected
    assert len(fixed) >= 19, fixed  # today: all but 5 logs (missing inputs; no safe fix)


ROW_DROPPING = {"datetime", "drop-dup", "sql-expression"}  # ordinary edits that filter rows


@pytest.mark.parametrize("name", sorted(ORDINARY_EDITS))
def test_ordinary_spark_edits_pass_except_the_ones_that_change_the_output(name: str) -> None:
    verdicts = {v.rule: v for v in check_patch(PROBE_JOB, Patch(kind="code", code=with_lines(ORDINARY_EDITS[name])),
                                               diagnosis=diagnosis("code"))}
    failed = {rule for rule in SEMANTIC_RULES if not verdicts[rule].ok}
    expected = {"no-new-row-filters"} if name in ROW_DROPPING else \
        {"keeps-write-modes"} if name == "sql-write-own" else set()  # INSERT INTO after INSERT OVERWRITE
    assert failed == expected, [verdicts[r].reason for r in failed]

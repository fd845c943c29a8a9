"""The patch guard: each rule rejects what it must and accepts what it should."""

from __future__ import annotations

import textwrap

import pytest

from agents.errors import InvalidInput
from agents.guard import (
    accepted,
    changed_share,
    check_patch,
    rejection_reasons,
)
from agents.record import Patch

RULES = [
    "well-formed",
    "parses",
    "allowed-python",
    "allowed-sql",
    "bounded-diff",
    "not-a-no-op",
    "not-a-repeat",
    "allowed-config",
    "no-swallowed-errors",
    "keeps-outputs",
    "keeps-write-modes",
    "keeps-error-checks",
    "no-new-row-filters",
]

ORIGINAL = textwrap.dedent(
    """\
    import os
    import sys

    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = SparkSession.builder.appName("report").getOrCreate()
    out_dir = os.path.join("/app/mount", "out")

    accounts = spark.table("accounts")
    report = spark.sql("SELECT customer_id, balance FROM accounts WHERE balance > 50")
    report = report.withColumn("flag", F.lit(1))
    report = report.dropDuplicates(["customer_id"])
    report.write.mode("overwrite").parquet(out_dir)
    print("done", file=sys.stderr)
    spark.stop()
    """
)
FIXED = ORIGINAL.replace("SELECT customer_id", "SELECT account_id")


def code_patch(code: str) -> Patch:
    return Patch(kind="code", explanation="fix", code=code)


def verdict(verdicts: list, rule: str):
    return next(v for v in verdicts if v.rule == rule)


def add_line(line: str) -> str:
    """The fixed code with one more line before spark.stop()."""
    return FIXED.replace("spark.stop()\n", line + "\nspark.stop()\n")


def test_a_small_correct_fix_is_accepted_with_every_verdict() -> None:
    verdicts = check_patch(ORIGINAL, code_patch(FIXED))
    assert [v.rule for v in verdicts] == RULES
    assert accepted(verdicts), rejection_reasons(verdicts)
    assert rejection_reasons(verdicts) == ""


# --- parses ------------------------------------------------------------------------------------


def test_code_that_does_not_parse_is_rejected_with_the_place() -> None:
    broken = FIXED.replace('F.lit(1))', 'F.lit(1)')
    verdicts = check_patch(ORIGINAL, code_patch(broken))
    parses = verdict(verdicts, "parses")
    assert not parses.ok and "line" in parses.reason and "does not compile" in parses.reason
    assert not accepted(verdicts)


def test_code_that_parses_but_does_not_compile_is_rejected() -> None:
    verdicts = check_patch(ORIGINAL, code_patch(add_line("return 3")))
    assert not verdict(verdicts, "parses").ok
    assert "'return' outside function" in verdict(verdicts, "parses").reason


# --- dangerous calls ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("import subprocess", "imports subprocess"),
        ("import subprocess as sp\nsp.run(['ls'])", "imports subprocess"),
        ("from subprocess import Popen as P\nP(['ls'])", "imports subprocess"),
        ("os.system('rm -rf /data')", "os.system"),
        ("from os import system\nsystem('ls')", "os.system"),
        ("os.popen('ls')", "os.popen"),
        ("os.execv('/bin/sh', ['sh'])", "os.execv"),
        ("os.spawnl(os.P_WAIT, '/bin/ls')", "os.spawnl"),
        ("os.remove(out_dir)", "os.remove"),
        ("os.unlink(out_dir)", "os.unlink"),
        ("os.rmdir(out_dir)", "os.rmdir"),
        ("import shutil\nshutil.rmtree(out_dir)", "imports shutil"),
        ("from pathlib import Path\nPath(out_dir).unlink()", "imports pathlib"),
        ("import socket", "imports socket"),
        ("import requests\nrequests.get('http://x')", "imports requests"),
        ("import urllib.request\nurllib.request.urlopen('http://x')", "imports urllib.request"),
        ("from http import client", "imports http"),
        ("import pickle\npickle.loads(b'')", "imports pickle"),
        ("eval('1+1')", "'eval'"),
        ("exec('x = 1')", "'exec'"),
        ("code = compile('1', 'f', 'eval')", "'compile'"),
        ("m = __import__('os')", "__import__"),
        ("run = exec", "'exec'"),
        ("spark.sparkContext._jvm.java.lang.Runtime.getRuntime()", ".sparkContext"),
    ],
)
def test_new_dangerous_calls_are_rejected(line: str, kind: str) -> None:
    verdicts = check_patch(ORIGINAL, code_patch(add_line(line)))
    result = verdict(verdicts, "allowed-python")
    assert not result.ok
    assert kind in result.reason


def test_uses_already_in_the_original_are_accepted_but_not_new_ones() -> None:
    original = add_line("os.remove(out_dir + '.marker')")
    same = original.replace("SELECT account_id", "SELECT account_id ")
    assert verdict(check_patch(original, code_patch(same)), "allowed-python").ok
    more = original.replace("spark.stop()\n", "os.rename(out_dir, out_dir + '.old')\nspark.stop()\n")
    result = verdict(check_patch(original, code_patch(more)), "allowed-python")
    assert not result.ok and "os.rename" in result.reason


def test_ordinary_standard_library_code_is_allowed() -> None:
    line = "import re\nfrom re import compile\np = compile('x')\nq = re.compile('y')\nother = os.path.join('a', 'b')"
    assert verdict(check_patch(ORIGINAL, code_patch(add_line(line))), "allowed-python").ok


# --- destructive SQL -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ('spark.sql("DROP TABLE accounts")', "DROP TABLE accounts"),
        ('spark.sql("drop table if exists accounts")', "DROP TABLE accounts"),
        ('spark.sql("TRUNCATE TABLE accounts")', "TRUNCATE accounts"),
        ('spark.sql("DELETE FROM accounts")', "DELETE on accounts"),
        ('q = "DROP " + "TABLE accounts"', "DROP TABLE accounts"),
        ('spark.sql(f"DROP TABLE {name}")', "DROP TABLE {name}"),
        ('spark.sql("SELECT 1; DELETE FROM accounts WHERE 1=1")', "DELETE on accounts"),
    ],
)
def test_new_destructive_sql_is_rejected(line: str, kind: str) -> None:
    result = verdict(check_patch(ORIGINAL, code_patch(add_line(line))), "allowed-sql")
    assert not result.ok and kind in result.reason


@pytest.mark.parametrize(
    "line",
    [
        'spark.sql("SELECT count(*) FROM accounts WHERE balance < 0").show()',
        'print("drop rows with null balance")',
        "report = report.dropDuplicates(['account_id'])",
        'report = report.drop("flag")',
    ],
)
def test_safe_sql_and_dataframe_drops_are_accepted(line: str) -> None:
    assert verdict(check_patch(ORIGINAL, code_patch(add_line(line))), "allowed-sql").ok


def test_destructive_sql_already_in_the_original_is_accepted() -> None:
    original = add_line('spark.sql("DROP TABLE IF EXISTS staging_tmp")')
    fixed = original.replace("balance > 50", "balance > 40")
    assert verdict(check_patch(original, code_patch(fixed)), "allowed-sql").ok


# --- bounded diff ------------------------------------------------------------------------------


def test_a_rewrite_of_most_lines_is_rejected() -> None:
    rewritten = "\n".join(f"x{i} = {i}" for i in range(16)) + "\n"
    result = verdict(check_patch(ORIGINAL, code_patch(rewritten)), "bounded-diff")
    assert not result.ok and "limit 50%" in result.reason and "smallest change" in result.reason


def test_the_share_limit_is_configurable() -> None:
    share = changed_share(ORIGINAL, FIXED)
    assert 0 < share < 0.1
    assert verdict(check_patch(ORIGINAL, code_patch(FIXED), max_changed_share=share / 2), "bounded-diff").ok is False
    assert verdict(check_patch(ORIGINAL, code_patch(FIXED), max_changed_share=share), "bounded-diff").ok
    with pytest.raises(InvalidInput):
        check_patch(ORIGINAL, code_patch(FIXED), max_changed_share=0)


# --- no-op and repeats -------------------------------------------------------------------------


def test_the_same_code_is_a_no_op() -> None:
    result = verdict(check_patch(ORIGINAL, code_patch(ORIGINAL + "\n\n")), "not-a-no-op")
    assert not result.ok and "same as the original" in result.reason


def test_an_empty_config_change_is_a_no_op() -> None:
    result = verdict(check_patch(ORIGINAL, Patch(kind="config")), "not-a-no-op")
    assert not result.ok


def test_a_config_change_to_the_current_values_is_a_no_op() -> None:
    patch = Patch(kind="config", spark_changes={"driverMemory": "2g"}, conf_changes={"spark.sql.shuffle.partitions": "8"})
    spark = {"driverMemory": "2g", "conf": {"spark.sql.shuffle.partitions": "8"}}
    assert not verdict(check_patch(ORIGINAL, patch, job_spark=spark), "not-a-no-op").ok
    assert verdict(check_patch(ORIGINAL, patch, job_spark={"driverMemory": "1g"}), "not-a-no-op").ok


def test_a_rerun_is_not_a_no_op() -> None:
    verdicts = check_patch(ORIGINAL, Patch(kind="rerun", explanation="transient"))
    assert accepted(verdicts), rejection_reasons(verdicts)


def test_the_same_patch_twice_is_rejected() -> None:
    first = Patch(kind="code", explanation="first try", code=FIXED)
    again = Patch(kind="code", explanation="worded differently", code=FIXED + "\n")
    result = verdict(check_patch(ORIGINAL, again, previous=[first]), "not-a-repeat")
    assert not result.ok and "already tried (attempt 1)" in result.reason
    assert verdict(check_patch(ORIGINAL, again, previous=[Patch(kind="rerun")]), "not-a-repeat").ok
    rerun = Patch(kind="rerun")  # a re-run repeats by design: the healer's HEAL_MAX_RERUNS limits them
    assert verdict(check_patch(ORIGINAL, rerun, previous=[Patch(kind="rerun")]), "not-a-repeat").ok


# --- allowed config ----------------------------------------------------------------------------


def test_resource_and_safe_conf_changes_are_accepted() -> None:
    patch = Patch(
        kind="config",
        spark_changes={"driverMemory": "4g", "executorMemory": "2048m", "executorCores": 2, "numExecutors": "4"},
        conf_changes={"spark.sql.shuffle.partitions": "64", "spark.driver.maxResultSize": "2g",
                      "spark.network.timeout": "300s", "spark.sql.adaptive.enabled": "true"},
    )
    verdicts = check_patch(ORIGINAL, patch)
    assert accepted(verdicts), rejection_reasons(verdicts)


@pytest.mark.parametrize(
    ("spark_changes", "conf_changes", "words"),
    [
        ({"file": "other.py"}, {}, "'file' may not be changed"),
        ({"pythonEnvResourceName": "env2"}, {}, "python environment"),
        ({"mounts": "x"}, {}, "'mounts' may not be changed"),
        ({"driverMemory": "64g"}, {}, "over the cap of 16g"),
        ({"driverMemory": "lots"}, {}, "not a memory size"),
        ({"executorCores": "two"}, {}, "whole number from 1 to 8"),
        ({"numExecutors": 500}, {}, "whole number from 1 to 50"),
        ({}, {"spark.hadoop.fs.s3a.endpoint": "http://evil"}, "is not one a fix may set"),
        ({}, {"spark.driver.extraJavaOptions": "-javaagent:/tmp/a.jar"}, "loads code"),
        ({}, {"spark.sql.warehouse.dir": "/tmp/elsewhere"}, "moves data"),
        ({}, {"spark.driver.maxResultSize": "100g"}, "over the cap of 8g"),
        ({}, {"spark.sql.shuffle.partitions": "8\nspark.x=1"}, "spans lines"),
    ],
)
def test_disallowed_config_changes_are_rejected(spark_changes: dict, conf_changes: dict, words: str) -> None:
    patch = Patch(kind="config", spark_changes=spark_changes, conf_changes=conf_changes)
    result = verdict(check_patch(ORIGINAL, patch), "allowed-config")
    assert not result.ok and words in result.reason


# --- well-formed -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("spark.driver.defaultJavaOptions", "-XX:OnOutOfMemoryError=id"),
        ("spark.executor.defaultJavaOptions", "-Dx=1"),
        ("spark.sql.queryExecutionListeners", "x.Y"),
        ("spark.sql.streaming.streamingQueryListeners", "x.Y"),
        ("spark.extraListeners", "x.Y"),
        ("spark.sql.sources.default", "text"),
        ("spark.network.crypto.enabled", "false"),
        ("spark.authenticate", "false"),
        ("spark.executorEnv.PATH", "/tmp"),
        ("spark.yarn.appMasterEnv.X", "1"),
        ("spark.plugins", "x.Y"),
        ("spark.jars", "/tmp/a.jar"),
        ("spark.jars.packages", "evil:evil:1"),
        ("spark.submit.pyFiles", "/tmp/a.py"),
        ("spark.pyspark.python", "/tmp/sh"),
        ("spark.sql.catalog.evil", "x.Y"),
        ("spark.driver.extraClassPath", "/tmp"),
        ("spark.io.encryption.enabled", "false"),
        ("spark.ui.enabled", "true"),
        ("spark.sql.shuffle.partitions", "0"),
        ("spark.sql.adaptive.enabled", "yes please"),
    ],
)
def test_config_keys_outside_the_exact_list_are_rejected(key: str, value: str) -> None:
    result = verdict(check_patch(ORIGINAL, Patch(kind="config", conf_changes={key: value})), "allowed-config")
    assert not result.ok and key in result.reason


def test_keys_that_change_results_are_for_catalog_remedies_only() -> None:
    change = {"spark.sql.legacy.timeParserPolicy": "LEGACY"}
    model = verdict(check_patch(ORIGINAL, Patch(kind="config", conf_changes=change)), "allowed-config")
    assert not model.ok and "only a catalog remedy" in model.reason
    rule = check_patch(ORIGINAL, Patch(kind="config", conf_changes=change, source="rule"))
    assert accepted(rule), rejection_reasons(rule)
    bad_value = {"spark.sql.legacy.timeParserPolicy": "SOMETIMES"}
    assert not verdict(check_patch(ORIGINAL, Patch(kind="config", conf_changes=bad_value, source="rule")),
                       "allowed-config").ok


@pytest.mark.parametrize(
    ("patch", "words"),
    [
        (Patch(kind="code", code="   "), "complete new file"),
        (Patch(kind="code"), "complete new file"),
        (Patch(kind="config", code=FIXED, spark_changes={"driverMemory": "2g"}), "must not carry code"),
        (Patch(kind="rerun", spark_changes={"driverMemory": "2g"}), "changes nothing"),
    ],
)
def test_malformed_patches_are_rejected(patch: Patch, words: str) -> None:
    verdicts = check_patch(ORIGINAL, patch)
    result = verdict(verdicts, "well-formed")
    assert not result.ok and words in result.reason
    assert f"- well-formed: {result.reason}" in rejection_reasons(verdicts)


def test_config_patch_may_only_append_missing_arguments():
    job_spark = {"args": ["retail.orders"], "driverMemory": "1g"}
    code = "import sys\nprint(sys.argv[2])\n"

    def verdict(args):
        patch = Patch(kind="config", spark_changes={"args": args}, explanation="add the output table")
        return {v.rule: v for v in check_patch(code, patch, job_spark=job_spark)}["allowed-config"]

    assert verdict(["retail.orders", "mart.customer_lifetime_value"]).ok
    changed = verdict(["prod.orders", "mart.customer_lifetime_value"])
    assert not changed.ok and "must stay as they are" in changed.reason
    assert not verdict(["retail.orders"]).ok  # nothing appended
    assert not verdict("retail.orders mart.x").ok  # not a list
    assert not verdict(["retail.orders", "x" * 2000]).ok


def test_the_pyspark_vocabulary_file_matches_the_pinned_pyspark() -> None:
    import json

    from agents.guard import vocabulary

    assert json.loads(vocabulary.API_FILE.read_text()) == json.loads(json.dumps(vocabulary.generate())), (
        "regenerate with `python -m agents.guard.vocabulary`")
    assert "withColumn" in vocabulary.attribute_names() and "pipe" not in vocabulary.attribute_names()

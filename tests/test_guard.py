"""The patch guard: each rule rejects what it must and accepts what it should."""

from __future__ import annotations

import textwrap

import pytest

from agents.errors import InvalidInput
from agents.guard import (
    accepted,
    changed_share,
    check_patch,
    dangerous_uses,
    destructive_sql,
    format_size,
    parse_size,
    rejection_reasons,
)
from agents.record import Patch

RULES = [
    "well-formed",
    "parses",
    "no-new-dangerous-calls",
    "no-new-destructive-sql",
    "bounded-diff",
    "not-a-no-op",
    "not-a-repeat",
    "allowed-config",
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
        ("import subprocess", "import subprocess"),
        ("import subprocess as sp\nsp.run(['ls'])", "call subprocess.run"),
        ("from subprocess import Popen as P\nP(['ls'])", "call subprocess.Popen"),
        ("os.system('rm -rf /data')", "call os.system"),
        ("from os import system\nsystem('ls')", "import os.system"),
        ("os.popen('ls')", "call os.popen"),
        ("os.execv('/bin/sh', ['sh'])", "call os.execv"),
        ("os.spawnl(os.P_WAIT, '/bin/ls')", "call os.spawnl"),
        ("os.remove(out_dir)", "call os.remove"),
        ("os.unlink(out_dir)", "call os.unlink"),
        ("os.rmdir(out_dir)", "call os.rmdir"),
        ("import shutil\nshutil.rmtree(out_dir)", "call shutil.rmtree"),
        ("from pathlib import Path\nPath(out_dir).unlink()", "call .unlink()"),
        ("import socket", "import socket"),
        ("import requests\nrequests.get('http://x')", "call requests.get"),
        ("import urllib.request\nurllib.request.urlopen('http://x')", "call urllib.request.urlopen"),
        ("from http import client", "import http.client"),
        ("import pickle\npickle.loads(b'')", "call pickle.loads"),
        ("eval('1+1')", "use of eval"),
        ("exec('x = 1')", "use of exec"),
        ("code = compile('1', 'f', 'eval')", "use of compile"),
        ("m = __import__('os')", "use of __import__"),
        ("run = exec", "use of exec"),
        ("spark.sparkContext._jvm.java.lang.Runtime.getRuntime()", "attribute ._jvm"),
    ],
)
def test_new_dangerous_calls_are_rejected(line: str, kind: str) -> None:
    verdicts = check_patch(ORIGINAL, code_patch(add_line(line)))
    result = verdict(verdicts, "no-new-dangerous-calls")
    assert not result.ok
    assert kind in result.reason
    assert kind in dangerous_uses(add_line(line))


def test_dangerous_calls_already_in_the_original_are_accepted_but_not_more_of_them() -> None:
    original = add_line("os.remove('/tmp/stale.marker')")
    same = original.replace("SELECT account_id", "SELECT account_id ")
    assert verdict(check_patch(original, code_patch(same)), "no-new-dangerous-calls").ok
    more = original.replace("spark.stop()\n", "os.remove('/tmp/other')\nspark.stop()\n")
    result = verdict(check_patch(original, code_patch(more)), "no-new-dangerous-calls")
    assert not result.ok and "1 x call os.remove" in result.reason


def test_ordinary_code_is_not_dangerous() -> None:
    code = "import re\nfrom re import compile\np = compile('x')\nq = re.compile('y')\nimport os\nos.path.join('a', 'b')\n"
    assert dangerous_uses(code) == {}


# --- destructive SQL -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ('spark.sql("DROP TABLE accounts")', "DROP"),
        ('spark.sql("drop table if exists accounts")', "DROP"),
        ('spark.sql("TRUNCATE TABLE accounts")', "TRUNCATE"),
        ('spark.sql("DELETE FROM accounts")', "DELETE without WHERE"),
        ('q = "DROP " + "TABLE accounts"', "DROP"),
        ('spark.sql(f"DROP TABLE {name}")', "DROP"),
        ('spark.sql("SELECT 1; DELETE FROM accounts")', "DELETE without WHERE"),
    ],
)
def test_new_destructive_sql_is_rejected(line: str, kind: str) -> None:
    result = verdict(check_patch(ORIGINAL, code_patch(add_line(line))), "no-new-destructive-sql")
    assert not result.ok and kind in result.reason


@pytest.mark.parametrize(
    "line",
    [
        'spark.sql("DELETE FROM accounts WHERE balance < 0")',
        'print("drop rows with null balance")',
        "report = report.dropDuplicates(['account_id'])",
        'report = report.drop("flag")',
    ],
)
def test_safe_sql_and_dataframe_drops_are_accepted(line: str) -> None:
    assert verdict(check_patch(ORIGINAL, code_patch(add_line(line))), "no-new-destructive-sql").ok


def test_destructive_sql_already_in_the_original_is_accepted() -> None:
    original = add_line('spark.sql("DROP TABLE IF EXISTS staging_tmp")')
    fixed = original.replace("balance > 50", "balance > 40")
    assert destructive_sql(original) == {"DROP": 1}
    assert verdict(check_patch(original, code_patch(fixed)), "no-new-destructive-sql").ok


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
    rerun = Patch(kind="rerun")
    assert not verdict(check_patch(ORIGINAL, rerun, previous=[Patch(kind="rerun")]), "not-a-repeat").ok


# --- allowed config ----------------------------------------------------------------------------


def test_resource_and_safe_conf_changes_are_accepted() -> None:
    patch = Patch(
        kind="config",
        spark_changes={"driverMemory": "4g", "executorMemory": "2048m", "executorCores": 2, "numExecutors": "4"},
        conf_changes={"spark.sql.shuffle.partitions": "64", "spark.driver.maxResultSize": "2g",
                      "spark.network.timeout": "300s", "spark.sql.ansi.enabled": "false"},
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
        ({}, {"spark.hadoop.fs.s3a.endpoint": "http://evil"}, "not allowed"),
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


def test_sizes() -> None:
    assert parse_size("512m") == 512 * 1024**2
    assert parse_size("2g") == 2 * 1024**3
    assert parse_size("1024.0 B") == 1024
    assert parse_size("27.1 KiB") == int(27.1 * 1024)
    assert format_size(2 * 1024**3) == "2g" and format_size(1536 * 1024**2) == "1536m" and format_size(1000) == "1k"
    with pytest.raises(InvalidInput):
        parse_size("big")


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

"""The launcher's pure parts (no Spark): SQL rewriting, names, paths and settings."""

from __future__ import annotations

import json

import pytest

from agents.sandbox.launcher import (
    HealerSandboxError,
    parse_sample,
    production_table,
    read_settings,
    rewrite_sql,
    sandbox_path,
    split_name,
)

CURRENT = "mart"
WRITTEN = {"mart.daily"}  # an output the run already wrote: reads of it go to the sandbox


def resolve(parts: tuple[str, ...], writing: bool) -> tuple[str, str] | None:
    """The launcher's rule with a fixed current database: writes and written outputs -> sandbox."""
    db, table = production_table(list(parts), CURRENT)
    if writing or f"{db}.{table}" in WRITTEN:
        return "sbx", f"{db}__{table}"
    return None


def relocate(path: str) -> str:
    return "/sandbox/files" + path


def rewrite(text: str):  # noqa: ANN201 - SqlRewrite
    return rewrite_sql(text, resolve, relocate)


@pytest.mark.parametrize(("text", "sql", "operation", "targets"), [
    ("INSERT INTO mart.events SELECT * FROM orders",
     "INSERT INTO `spark_catalog`.`sbx`.`mart__events` SELECT * FROM orders", "INSERT", [("mart", "events")]),
    ("insert overwrite table Events partition (d=1) select 1",
     "INSERT OVERWRITE TABLE `spark_catalog`.`sbx`.`mart__events` PARTITION(d = 1) SELECT 1", "INSERT OVERWRITE", [("Events",)]),
    ("CREATE TABLE `Other`.`T` USING parquet AS SELECT * FROM src",
     "CREATE TABLE `spark_catalog`.`sbx`.`other__t` USING PARQUET AS SELECT * FROM src", "CREATE TABLE AS SELECT", [("Other", "T")]),
    ("CREATE TABLE t (a INT) USING parquet LOCATION '/data/t'",
     "CREATE TABLE `spark_catalog`.`sbx`.`mart__t` (a INT) USING PARQUET LOCATION '/sandbox/files/data/t'", "CREATE TABLE", [("t",)]),
    # IF NOT EXISTS: production's table stands in the sandbox first (copied), so the statement stays a no-op
    ("CREATE TABLE IF NOT EXISTS ops.calls (batch_id STRING) USING parquet",
     "CREATE TABLE IF NOT EXISTS `spark_catalog`.`sbx`.`ops__calls` (batch_id STRING) USING PARQUET",
     "CREATE TABLE IF NOT EXISTS", [("ops", "calls")]),
    ("CREATE TABLE t (a INT) USING parquet OPTIONS (path '/data/t')",
     "CREATE TABLE `spark_catalog`.`sbx`.`mart__t` (a INT) USING PARQUET OPTIONS ('path'='/sandbox/files/data/t')", "CREATE TABLE",
     [("t",)]),
    ("CREATE OR REPLACE VIEW v AS WITH d AS (SELECT * FROM daily) SELECT * FROM d",
     "CREATE OR REPLACE VIEW `spark_catalog`.`sbx`.`mart__v` AS WITH d AS (SELECT * FROM `spark_catalog`.`sbx`.`mart__daily` AS `daily`) "
     "SELECT * FROM d", "CREATE VIEW", [("v",)]),
    ("MERGE INTO t USING daily ON t.a = daily.a WHEN MATCHED THEN UPDATE SET *",
     "MERGE INTO `spark_catalog`.`sbx`.`mart__t` AS `t` USING `spark_catalog`.`sbx`.`mart__daily` AS `daily` ON t.a = daily.a "
     "WHEN MATCHED THEN UPDATE SET *", "MERGE", [("t",)]),
    ("UPDATE spark_catalog.mart.t SET a = 1", "UPDATE `spark_catalog`.`sbx`.`mart__t` AS `t` SET a = 1", "UPDATE",
     [("spark_catalog", "mart", "t")]),
    ("DELETE FROM t WHERE a = 1", "DELETE FROM `spark_catalog`.`sbx`.`mart__t` AS `t` WHERE a = 1", "DELETE", [("t",)]),
    ("DROP TABLE mart.t", "DROP TABLE IF EXISTS `spark_catalog`.`sbx`.`mart__t`", "DROP TABLE", [("mart", "t")]),
    ("TRUNCATE TABLE t", "TRUNCATE TABLE `spark_catalog`.`sbx`.`mart__t`", "TRUNCATE", [("t",)]),
    ("ALTER TABLE t RENAME TO u", "ALTER TABLE `spark_catalog`.`sbx`.`mart__t` RENAME TO `spark_catalog`.`sbx`.`mart__u`", "ALTER TABLE",
     [("t",), ("u",)]),
])
def test_writes_go_to_the_sandbox(text: str, sql: str, operation: str, targets: list[tuple[str, ...]]) -> None:
    result = rewrite(text)
    assert (result.sql, result.operation, list(result.targets), result.skip) == (sql, operation, targets, False)


def test_reads_of_written_outputs_are_redirected_and_qualified_columns_still_resolve() -> None:
    result = rewrite("WITH d AS (SELECT * FROM mart.daily WHERE mart.daily.a > 1) SELECT * FROM d JOIN orders o")
    assert result.operation is None
    assert result.sql == ("WITH d AS (SELECT * FROM `spark_catalog`.`sbx`.`mart__daily` AS `daily` WHERE daily.a > 1) "
                          "SELECT * FROM d JOIN orders AS o ON TRUE")


@pytest.mark.parametrize("text", [
    "SELECT * FROM orders JOIN (SELECT 1) x", "USE mart", "SET spark.sql.shuffle.partitions=4", "SHOW TABLES",
    "EXPLAIN SELECT 1", "CREATE OR REPLACE TEMP VIEW daily AS SELECT * FROM orders",
    "WITH daily AS (SELECT 1) SELECT * FROM daily", "DESCRIBE orders",
])
def test_statements_that_write_nothing_and_read_no_output_run_as_written(text: str) -> None:
    result = rewrite(text)
    assert (result.sql, result.operation, result.targets) == (text, None, ())


def test_temp_views_keep_their_names_but_read_redirected_outputs() -> None:
    assert rewrite("CREATE TEMP VIEW tv AS SELECT * FROM daily").sql == (
        "CREATE TEMPORARY VIEW tv AS SELECT * FROM `spark_catalog`.`sbx`.`mart__daily` AS `daily`")


def test_create_database_is_skipped() -> None:
    assert rewrite("CREATE DATABASE IF NOT EXISTS mart").skip


@pytest.mark.parametrize(("text", "why"), [
    ("DROP DATABASE mart CASCADE", "DROP DATABASE"),
    ("LOAD DATA INPATH '/x' INTO TABLE t", "LOAD DATA"),
    ("GRANT SELECT ON t TO u", "not known to be read-only"),
    ("INSERT OVERWRITE DIRECTORY '/x' USING parquet SELECT 1", "cannot parse"),
    ("INSERT OVERWRITE LOCAL DIRECTORY '/x' SELECT 1", "DIRECTORY"),
    ("MSCK REPAIR TABLE t", "not known to be read-only"),
    ("ALTER TABLE t SET LOCATION '/x'", "LOCATION"),
    ("CREATE FUNCTION f AS 'com.x.F'", "CREATE FUNCTION"),
    ("INSERT INTO (((", "cannot parse"),
    ("INSERT INTO cat.db.t SELECT 1", "only the session catalog"),
    ("INSERT INTO t SELECT 1; DROP TABLE u", "one SQL statement"),
    ("CREATE TABLE t USING jdbc OPTIONS (url 'jdbc:x', dbtable 'prod')", "provider 'jdbc'"),
    ("CREATE TABLE t (a INT) USING org.apache.spark.sql.jdbc", "not known to be read-only"),
    ("USE CATALOG other", "another catalog"),
    ("SET CATALOG other", "not known to be read-only"),
])
def test_writes_that_cannot_be_redirected_fail(text: str, why: str) -> None:
    with pytest.raises(HealerSandboxError, match=why):
        rewrite(text)


def test_names() -> None:
    assert split_name("`My.Db`.t") == ["My.Db", "t"]
    assert split_name("a.`b``c`") == ["a", "b`c"]
    assert production_table(["spark_catalog", "Mart", "T"], "x") == ("mart", "t")
    assert production_table(["t"], "Cur") == ("cur", "t")
    for bad in ("a..b", "`open", ""):
        with pytest.raises(HealerSandboxError, match="not a table name"):
            split_name(bad)


def test_sandbox_paths_stay_under_the_root() -> None:
    assert sandbox_path("file:/w/s.db/_files", "file:/data/out") == "file:/w/s.db/_files/file/data/out"
    assert sandbox_path("s3a://b/root/", "s3a://prod/x/y") == "s3a://b/root/s3a/prod/x/y"
    with pytest.raises(HealerSandboxError, match=r"\.\."):
        sandbox_path("/root", "file:/data/../etc")


def test_settings() -> None:
    conf = {"spark.healer.sandbox.app": "job.py", "spark.healer.sandbox.database": "healer_sandbox_12_1",
            "spark.healer.sandbox.sample": "rows:5", "spark.healer.sandbox.clone": "false",
            "spark.healer.sandbox.outputs": json.dumps([{"kind": "table", "name": "mart.t"}])}
    settings = read_settings(lambda key, default: conf.get(key, default))
    assert (settings.mode, settings.app, settings.database, settings.location) == (
        "preflight", "job.py", "healer_sandbox_12_1", None)
    assert (settings.sample.kind, settings.sample.value, settings.clone, settings.stats) == ("rows", 5, False, True)
    assert [(o.kind, o.name) for o in settings.outputs] == [("table", "mart.t")]
    for key, value, why in [("database", "default", "database"), ("database", "Bad-Name", "database"),
                            ("mode", "run", "mode"), ("clone", "yes", "clone"), ("outputs", "{}", "outputs"),
                            ("sample", "rows:0", "sample")]:
        bad = {**conf, f"spark.healer.sandbox.{key}": value}
        with pytest.raises(HealerSandboxError, match=why):
            read_settings(lambda key, default, bad=bad: bad.get(key, default))
    assert parse_sample("fraction:0.25").value == 0.25


def test_writing_into_a_temp_view_fails_but_dropping_one_passes() -> None:
    def temp_views(parts: tuple[str, ...], writing: bool) -> tuple[str, str] | None:
        return None if parts == ("tv",) else resolve(parts, writing)

    with pytest.raises(HealerSandboxError, match="temp view 'tv'"):
        rewrite_sql("INSERT INTO tv SELECT 1", temp_views, relocate)
    assert rewrite_sql("DROP VIEW tv", temp_views, relocate).sql == "DROP VIEW IF EXISTS tv"

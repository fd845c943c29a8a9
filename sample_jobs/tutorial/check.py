"""Output check of sql-select-fail: the batch was upserted into the target (one row per
account_id, the latest version of every account of the batch, no account lost) and the
selection table holds account_id, category, value1 and value2 of every target row.

    spark-submit check.py TARGET_TABLE SOURCE_TABLE [OUTPUT_TABLE]

`outputs(spark, args)` is what a correct run writes (the scenario's baseline job writes it): the
upserted target and the selection, keyed by account_id.
"""

import sys

from checklib import Check
from pyspark.sql import Window
from pyspark.sql import functions as F


def table_names(args):
    target_table, source_table = args[0], args[1]
    return target_table, source_table, args[2] if len(args) > 2 else f"{target_table}_selection"


def latest_per_account(df):
    return (df.withColumn("_r", F.row_number().over(
        Window.partitionBy("account_id").orderBy(F.col("event_ts").desc()))).where("_r = 1").drop("_r"))


def outputs(spark, args):
    target_table, source_table, output_table = table_names(args)
    upserted = latest_per_account(spark.table(target_table).unionByName(spark.table(source_table)))
    return {target_table: upserted, output_table: upserted.select("account_id", "category", "value1", "value2")}


def main(args):
    target_table, source_table, output_table = table_names(args)
    check = Check("sql-select-fail")
    spark = check.spark
    target, source, output = check.tables(target_table, source_table, output_table)

    props = {r.key: r.value for r in spark.sql(f"SHOW TBLPROPERTIES {source_table}").collect()}
    base_rows = int(props.get("datagen.target_rows", "-1"))
    check.expect(base_rows > 0, f"{source_table} has no datagen.target_rows property")
    check.no_duplicates(target, ["account_id"], target_table)

    # Every account of the batch is in the target, as its latest batch version.
    latest = latest_per_account(source)
    updated = target.join(latest.select("account_id"), "account_id", "left_semi")
    check.matches(updated, latest, ["account_id"], f"{target_table} (accounts of the batch)")

    # No account was lost or invented: accounts 1..N of the original target plus the batch's new ones.
    counts = target.agg(F.count("*").alias("all"),
                        F.count(F.when(F.col("account_id") <= base_rows, 1)).alias("old")).first()
    new_accounts = latest.where(F.col("account_id") > base_rows).count()
    check.expect(counts["all"] == base_rows + new_accounts,
                 f"{target_table} has {counts['all']} rows, expected {base_rows} + {new_accounts} new accounts")
    check.expect(counts["old"] == base_rows,
                 f"{target_table} has {counts['old']} of the {base_rows} original accounts")

    # The selection: the target's key (named account_id, or customer_id as the report calls it)
    # with category, value1 and value2, for every target row.
    key = "account_id" if "account_id" in output.columns else "customer_id"
    if check.columns(output, [key, "category", "value1", "value2"], output_table):
        check.matches(output.withColumnRenamed(key, "account_id"),
                      target.select("account_id", "category", "value1", "value2"), ["account_id"], output_table)

    check.finish()


if __name__ == "__main__":
    main(sys.argv[1:])

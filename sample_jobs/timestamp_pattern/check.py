"""Output check of pos-transactions-load: every transaction with its time read as day/month/year.

    spark-submit check.py RAW_TABLE OUTPUT_TABLE

`outputs(spark, args)` is what a correct run writes (the scenario's baseline job writes it).
"""

import sys

from checklib import Check
from pyspark.sql import functions as F


def outputs(spark, args):
    raw_table, output_table = args[:2]
    return {output_table: spark.table(raw_table).select(
        "txn_id", "store_id",
        F.to_timestamp("txn_time", "dd/MM/yyyy HH:mm:ss").alias("txn_ts"),
        F.col("amount").cast("decimal(12,2)").alias("amount"),
    )}


def main(args):
    raw_table, output_table = args[:2]
    check = Check("pos-transactions-load")
    output = check.tables(raw_table, output_table)[1]
    expected = outputs(check.spark, args)[output_table]
    if check.columns(output, expected.columns, output_table):
        check.matches(output, expected, ["txn_id"], output_table)
    check.finish()


if __name__ == "__main__":
    main(sys.argv[1:])

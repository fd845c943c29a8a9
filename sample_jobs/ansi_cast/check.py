"""Output check of partner-orders-load: every feed row with a numeric amount is loaded with its
exact values; rows whose amount is not a number are either left out or loaded with a NULL amount.

    spark-submit check.py RAW_TABLE OUTPUT_TABLE

`outputs(spark, args)` is what a correct run writes (the scenario's baseline job writes it): every
feed row, with a NULL amount where the amount is not a number.
"""

import sys

from checklib import Check
from pyspark.sql import functions as F

NUMERIC = r"^\s*-?[0-9]+(\.[0-9]+)?\s*$"


def typed(raw):
    return raw.select(
        F.col("order_id").cast("long").alias("order_id"),
        F.col("customer_id").cast("long").alias("customer_id"),
        F.when(F.col("amount").rlike(NUMERIC), F.col("amount")).cast("decimal(12,2)").alias("amount"),
        F.upper(F.trim("currency")).alias("currency"),
        F.to_date("order_date", "yyyy-MM-dd").alias("order_date"),
    )


def outputs(spark, args):
    raw_table, output_table = args[:2]
    return {output_table: typed(spark.table(raw_table))}


def main(args):
    raw_table, output_table = args[:2]
    check = Check("partner-orders-load")
    raw, output = check.tables(raw_table, output_table)
    numeric = F.col("amount").rlike(NUMERIC)
    expected = typed(raw.where(numeric))
    malformed = raw.where(~numeric).select(F.col("order_id").cast("long").alias("order_id"))
    if check.columns(output, expected.columns, output_table):
        check.no_duplicates(output, ["order_id"], output_table)
        check.matches(output.where(F.col("amount").isNotNull()), expected, ["order_id"], output_table)
        stray = output.where(F.col("amount").isNull()).join(malformed, "order_id", "left_anti").count()
        check.expect(stray == 0, f"{stray} rows of {output_table} have a NULL amount the feed does not have")
    check.finish()


if __name__ == "__main__":
    main(sys.argv[1:])

"""Output check of customer-lifetime-value: one row per customer with orders, revenue and dates.

    spark-submit check.py ORDERS_TABLE OUTPUT_TABLE

`outputs(spark, args)` is what a correct run writes (the scenario's baseline job writes it).
"""

import sys

from checklib import Check
from pyspark.sql import functions as F


def outputs(spark, args):
    orders_table, output_table = args[:2]
    return {output_table: spark.table(orders_table).groupBy("customer_id").agg(
        F.count("*").alias("orders"),
        F.round(F.sum("amount"), 2).alias("lifetime_revenue"),
        F.min("order_ts").alias("first_order_ts"),
        F.max("order_ts").alias("last_order_ts"),
    )}


def main(args):
    orders_table, output_table = args[:2]
    check = Check("customer-lifetime-value")
    output = check.tables(orders_table, output_table)[1]
    expected = outputs(check.spark, args)[output_table]
    if check.columns(output, expected.columns, output_table):
        check.matches(output, expected, ["customer_id"], output_table)
    check.finish()


if __name__ == "__main__":
    main(sys.argv[1:])

"""Output check of daily-channel-sales: orders and revenue per day and channel, over all orders
(not only those an earlier run saw).

    spark-submit check.py ORDERS_TABLE OUTPUT_TABLE

`outputs(spark, args)` is what a correct run writes (the scenario's baseline job writes it).
"""

import sys

from checklib import Check
from pyspark.sql import functions as F


def outputs(spark, args):
    orders_table, output_table = args[:2]
    return {output_table: spark.table(orders_table).groupBy(F.to_date("order_ts").alias("sale_date"), "channel").agg(
        F.count("*").alias("orders"), F.round(F.sum("amount"), 2).alias("revenue"))}


def main(args):
    orders_table, output_table = args[:2]
    check = Check("daily-channel-sales")
    output = check.tables(orders_table, output_table)[1]
    expected = outputs(check.spark, args)[output_table]
    if check.columns(output, expected.columns, output_table):
        check.matches(output, expected, ["sale_date", "channel"], output_table)
    check.finish()


if __name__ == "__main__":
    main(sys.argv[1:])

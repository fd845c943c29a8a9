"""Output check of orders-usd-conversion: every order with its amount in US dollars.

    spark-submit check.py ORDERS_TABLE RATES_TABLE OUTPUT_TABLE

`outputs(spark, args)` is what a correct run writes (the scenario's baseline job writes it).
"""

import sys

from checklib import Check
from pyspark.sql import functions as F


def outputs(spark, args):
    orders_table, rates_table, output_table = args[:3]
    orders, rates = spark.table(orders_table), spark.table(rates_table)
    return {output_table: orders.join(rates, "currency", "left").select(
        "order_id", "currency", "amount", F.round(F.col("amount") * F.col("rate_to_usd"), 2).alias("amount_usd"))}


def main(args):
    output_table = args[2]
    check = Check("orders-usd-conversion")
    output = check.tables(*args[:3])[2]
    expected = outputs(check.spark, args)[output_table]
    if check.columns(output, expected.columns, output_table):
        check.matches(output, expected, ["order_id"], output_table)
    check.finish()


if __name__ == "__main__":
    main(sys.argv[1:])

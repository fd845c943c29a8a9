"""Output check of category-channel-revenue: orders, units and revenue per category and channel.

    spark-submit check.py ORDERS_TABLE PRODUCTS_TABLE OUTPUT_TABLE

`outputs(spark, args)` is what a correct run writes (the scenario's baseline job writes it).
"""

import sys

from checklib import Check
from pyspark.sql import functions as F


def outputs(spark, args):
    orders_table, products_table, output_table = args[:3]
    orders, products = spark.table(orders_table), spark.table(products_table)
    return {output_table: orders.join(products.select("product_id", "category"), "product_id").groupBy(
        "category", "channel").agg(
        F.count("*").alias("orders"), F.sum("quantity").alias("units"), F.round(F.sum("amount"), 2).alias("revenue"))}


def main(args):
    output_table = args[2]
    check = Check("category-channel-revenue")
    output = check.tables(*args[:3])[2]
    expected = outputs(check.spark, args)[output_table]
    if check.columns(output, expected.columns, output_table):
        check.matches(output, expected, ["category", "channel"], output_table)
    check.finish()


if __name__ == "__main__":
    main(sys.argv[1:])

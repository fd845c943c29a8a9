"""Output check of loyalty-points: points and order count of every customer who ordered.

    spark-submit check.py ORDERS_TABLE CUSTOMERS_TABLE PRODUCTS_TABLE OUTPUT_TABLE

`outputs(spark, args)` is what a correct run writes (the scenario's baseline job writes it).
"""

import sys

from checklib import Check
from pyspark.sql import functions as F


def outputs(spark, args):
    orders_table, customers_table, products_table, output_table = args[:4]
    orders, customers, products = (spark.table(t) for t in (orders_table, customers_table, products_table))
    tier = F.when(F.col("tier") == "gold", 3).when(F.col("tier") == "silver", 2).otherwise(1)
    bonus = F.when(F.col("channel") != "web", 0).when(F.col("category") == "electronics", 50).when(
        F.col("category") == "home", 20).otherwise(0)
    return {output_table: (
        orders.join(customers.select("customer_id", "tier"), "customer_id")
        .join(products.select("product_id", "category"), "product_id")
        .withColumn("p", F.floor("amount").cast("long") * tier + bonus)
        .groupBy("customer_id").agg(F.count("*").alias("orders"), F.sum("p").alias("points"))
    )}


def main(args):
    output_table = args[3]
    check = Check("loyalty-points")
    output = check.tables(*args[:4])[3]
    expected = outputs(check.spark, args)[output_table]
    if check.columns(output, expected.columns, output_table):
        check.matches(output, expected, ["customer_id"], output_table)
    check.finish()


if __name__ == "__main__":
    main(sys.argv[1:])

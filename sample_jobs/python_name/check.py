"""Output check of top-customers-by-region: the ten biggest spenders of each region, ranked.

    spark-submit check.py ORDERS_TABLE CUSTOMERS_TABLE OUTPUT_TABLE

`outputs(spark, args)` is what a correct run writes (the scenario's baseline job writes it).
"""

import sys

from checklib import Check
from pyspark.sql import Window
from pyspark.sql import functions as F


def outputs(spark, args):
    orders_table, customers_table, output_table = args[:3]
    orders, customers = spark.table(orders_table), spark.table(customers_table)
    spend = orders.groupBy("customer_id").agg(
        F.count("*").alias("orders"), F.round(F.sum("amount"), 2).alias("total_spend"))
    ranking = Window.partitionBy("region").orderBy(F.col("total_spend").desc(), F.col("customer_id"))
    return {output_table: (
        spend.join(customers.select("customer_id", "name", "region", "tier"), "customer_id")
        .withColumn("rank", F.row_number().over(ranking))
        .where(F.col("rank") <= 10)
        .select("region", "rank", "customer_id", "name", "tier", "orders", "total_spend")
    )}


def main(args):
    output_table = args[2]
    check = Check("top-customers-by-region")
    output = check.tables(*args[:3])[2]
    expected = outputs(check.spark, args)[output_table]
    if check.columns(output, expected.columns, output_table):
        check.no_duplicates(output, ["region", "rank"], output_table)
        check.matches(output, expected, ["region", "rank"], output_table)
    check.finish()


if __name__ == "__main__":
    main(sys.argv[1:])

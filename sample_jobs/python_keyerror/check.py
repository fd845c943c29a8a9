"""Output check of region-revenue-summary: orders, revenue and revenue share of every region.

    spark-submit check.py ORDERS_TABLE OUTPUT_TABLE

`outputs(spark, args)` is what a correct run writes (the scenario's baseline job writes it): the
share is of the sum of the rounded regional revenues, as the application computes it.
"""

import sys

from checklib import Check
from pyspark.sql import functions as F


def outputs(spark, args):
    orders_table, output_table = args[:2]
    by_region = spark.table(orders_table).groupBy("region").agg(
        F.count("*").alias("orders"), F.round(F.sum("amount"), 2).alias("revenue"))
    grand = by_region.agg(F.sum("revenue")).first()[0]
    return {output_table: by_region.withColumn("revenue_share", F.round(F.col("revenue") / F.lit(grand), 4))}


def main(args):
    orders_table, output_table = args[:2]
    check = Check("region-revenue-summary")
    output = check.tables(orders_table, output_table)[1]
    expected = outputs(check.spark, args)[output_table]
    if check.columns(output, expected.columns, output_table):
        # Shares rounded to 4 places may differ in the last place with the rounding of the total.
        check.matches(output.drop("revenue_share"), expected.drop("revenue_share"), ["region"], output_table)
        check.matches(output.select("region", "revenue_share"), expected.select("region", "revenue_share"),
                      ["region"], output_table, tolerance=2e-4)
    check.finish()


if __name__ == "__main__":
    main(sys.argv[1:])

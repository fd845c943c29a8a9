"""Output check of region-revenue-summary: orders, revenue and revenue share of every region.

    spark-submit check.py ORDERS_TABLE OUTPUT_TABLE
"""

import sys

from checklib import Check
from pyspark.sql import functions as F

orders_table, output_table = sys.argv[1], sys.argv[2]
check = Check("region-revenue-summary")
orders, output = check.tables(orders_table, output_table)
grand = orders.agg(F.sum("amount")).first()[0]
expected = orders.groupBy("region").agg(
    F.count("*").alias("orders"), F.round(F.sum("amount"), 2).alias("revenue"))
expected = expected.withColumn("revenue_share", F.round(F.col("revenue") / F.lit(grand), 4))
if check.columns(output, expected.columns, output_table):
    # Shares rounded to 4 places may differ in the last place with the rounding of the total.
    check.matches(output.drop("revenue_share"), expected.drop("revenue_share"), ["region"], output_table)
    check.matches(output.select("region", "revenue_share"), expected.select("region", "revenue_share"),
                  ["region"], output_table, tolerance=2e-4)
check.finish()

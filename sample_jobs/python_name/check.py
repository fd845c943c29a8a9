"""Output check of top-customers-by-region: the ten biggest spenders of each region, ranked.

    spark-submit check.py ORDERS_TABLE CUSTOMERS_TABLE OUTPUT_TABLE
"""

import sys

from checklib import Check
from pyspark.sql import Window
from pyspark.sql import functions as F

orders_table, customers_table, output_table = sys.argv[1], sys.argv[2], sys.argv[3]
check = Check("top-customers-by-region")
orders, customers, output = check.tables(orders_table, customers_table, output_table)
spend = orders.groupBy("customer_id").agg(
    F.count("*").alias("orders"), F.round(F.sum("amount"), 2).alias("total_spend"))
ranking = Window.partitionBy("region").orderBy(F.col("total_spend").desc(), F.col("customer_id"))
expected = (
    spend.join(customers.select("customer_id", "name", "region", "tier"), "customer_id")
    .withColumn("rank", F.row_number().over(ranking))
    .where(F.col("rank") <= 10)
    .select("region", "rank", "customer_id", "name", "tier", "orders", "total_spend")
)
if check.columns(output, expected.columns, output_table):
    check.no_duplicates(output, ["region", "rank"], output_table)
    check.matches(output, expected, ["region", "rank"], output_table)
check.finish()

"""Output check of customer-lifetime-value: one row per customer with orders, revenue and dates.

    spark-submit check.py ORDERS_TABLE OUTPUT_TABLE
"""

import sys

from checklib import Check
from pyspark.sql import functions as F

orders_table, output_table = sys.argv[1], sys.argv[2]
check = Check("customer-lifetime-value")
orders, output = check.tables(orders_table, output_table)
expected = orders.groupBy("customer_id").agg(
    F.count("*").alias("orders"),
    F.round(F.sum("amount"), 2).alias("lifetime_revenue"),
    F.min("order_ts").alias("first_order_ts"),
    F.max("order_ts").alias("last_order_ts"),
)
if check.columns(output, expected.columns, output_table):
    check.matches(output, expected, ["customer_id"], output_table)
check.finish()

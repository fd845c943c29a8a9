"""Output check of daily-channel-sales: orders and revenue per day and channel, over all orders
(not only those an earlier run saw).

    spark-submit check.py ORDERS_TABLE OUTPUT_TABLE
"""

import sys

from checklib import Check
from pyspark.sql import functions as F

orders_table, output_table = sys.argv[1], sys.argv[2]
check = Check("daily-channel-sales")
orders, output = check.tables(orders_table, output_table)
expected = orders.groupBy(F.to_date("order_ts").alias("sale_date"), "channel").agg(
    F.count("*").alias("orders"), F.round(F.sum("amount"), 2).alias("revenue"))
if check.columns(output, expected.columns, output_table):
    check.matches(output, expected, ["sale_date", "channel"], output_table)
check.finish()

"""Output check of orders-usd-conversion: every order with its amount in US dollars.

    spark-submit check.py ORDERS_TABLE RATES_TABLE OUTPUT_TABLE
"""

import sys

from checklib import Check
from pyspark.sql import functions as F

orders_table, rates_table, output_table = sys.argv[1], sys.argv[2], sys.argv[3]
check = Check("orders-usd-conversion")
orders, rates, output = check.tables(orders_table, rates_table, output_table)
expected = orders.join(rates, "currency", "left").select(
    "order_id", "currency", "amount", F.round(F.col("amount") * F.col("rate_to_usd"), 2).alias("amount_usd"))
if check.columns(output, expected.columns, output_table):
    check.matches(output, expected, ["order_id"], output_table)
check.finish()

"""Output check of orders-usd-conversion: every order with its amount in US dollars.

    spark-submit check.py ORDERS_TABLE RATES_TABLE OUTPUT_TABLE
"""

import sys

from checklib import Check
from pyspark.sql import functions as F

orders_table, rates_table, output_table = sys.argv[1], sys.argv[2], sys.argv[3]
check = Check("orders-usd-conversion")
orders = check.table(orders_table)
rates = check.table(rates_table)
output = check.table(output_table)
if orders is not None and rates is not None and output is not None:
    expected = orders.join(rates, "currency", "left").select(
        "order_id", "currency", "amount", F.round(F.col("amount") * F.col("rate_to_usd"), 2).alias("amount_usd"))
    if check.columns(output, expected.columns, output_table):
        check.matches(output, expected, ["order_id"], output_table)
check.finish()

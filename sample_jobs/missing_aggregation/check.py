"""Output check of category-channel-revenue: orders, units and revenue per category and channel.

    spark-submit check.py ORDERS_TABLE PRODUCTS_TABLE OUTPUT_TABLE
"""

import sys

from checklib import Check
from pyspark.sql import functions as F

orders_table, products_table, output_table = sys.argv[1], sys.argv[2], sys.argv[3]
check = Check("category-channel-revenue")
orders, products, output = check.tables(orders_table, products_table, output_table)
expected = orders.join(products.select("product_id", "category"), "product_id").groupBy(
    "category", "channel").agg(
    F.count("*").alias("orders"), F.sum("quantity").alias("units"), F.round(F.sum("amount"), 2).alias("revenue"))
if check.columns(output, expected.columns, output_table):
    check.matches(output, expected, ["category", "channel"], output_table)
check.finish()

"""Output check of loyalty-points: points and order count of every customer who ordered.

    spark-submit check.py ORDERS_TABLE CUSTOMERS_TABLE PRODUCTS_TABLE OUTPUT_TABLE
"""

import sys

from checklib import Check
from pyspark.sql import functions as F

orders_table, customers_table, products_table, output_table = sys.argv[1:5]
check = Check("loyalty-points")
orders, customers, products, output = check.tables(orders_table, customers_table, products_table, output_table)
tier = F.when(F.col("tier") == "gold", 3).when(F.col("tier") == "silver", 2).otherwise(1)
bonus = F.when(F.col("channel") != "web", 0).when(F.col("category") == "electronics", 50).when(
    F.col("category") == "home", 20).otherwise(0)
expected = (
    orders.join(customers.select("customer_id", "tier"), "customer_id")
    .join(products.select("product_id", "category"), "product_id")
    .withColumn("p", F.floor("amount").cast("long") * tier + bonus)
    .groupBy("customer_id").agg(F.count("*").alias("orders"), F.sum("p").alias("points"))
)
if check.columns(output, expected.columns, output_table):
    check.matches(output, expected, ["customer_id"], output_table)
check.finish()

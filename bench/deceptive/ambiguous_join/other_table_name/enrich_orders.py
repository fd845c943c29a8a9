"""Orders enriched with the customer's name and loyalty tier, for the CRM team.

    spark-submit enrich_orders.py ORDERS_TABLE CUSTOMERS_TABLE OUTPUT_TABLE
"""

import sys

from pyspark.sql import SparkSession

orders_table, customers_table, output_table = sys.argv[1], sys.argv[2], sys.argv[3]

spark = SparkSession.builder.appName("customer-orders-enrich").getOrCreate()

orders = spark.table(orders_table)
customers = spark.table(customers_table)

enriched = orders.join(customers, "customer_id", "inner").select(
    "order_id", "customer_id", "name", "tier", "amount", "order_ts"
)
# Write to a fresh table: the old one was created by the broken join.
fixed_table = f"{output_table}_v2"
enriched.write.mode("overwrite").saveAsTable(fixed_table)
print(f"Wrote {spark.table(fixed_table).count()} enriched orders to {fixed_table}")

spark.stop()

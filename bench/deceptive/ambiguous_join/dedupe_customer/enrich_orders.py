"""Orders enriched with the customer's name and loyalty tier, for the CRM team.

    spark-submit enrich_orders.py ORDERS_TABLE CUSTOMERS_TABLE OUTPUT_TABLE
"""

import sys

from pyspark.sql import SparkSession

orders_table, customers_table, output_table = sys.argv[1], sys.argv[2], sys.argv[3]

spark = SparkSession.builder.appName("customer-orders-enrich").getOrCreate()

orders = spark.table(orders_table)
customers = spark.table(customers_table)

# The join duplicates customer_id: keep one row per customer.
enriched = orders.join(customers, orders.customer_id == customers.customer_id, "inner").drop(
    customers.customer_id).dropDuplicates(["customer_id"]).select(
    "order_id", "customer_id", "name", "tier", "amount", "order_ts"
)
enriched.write.mode("overwrite").saveAsTable(output_table)
print(f"Wrote {spark.table(output_table).count()} enriched orders to {output_table}")

spark.stop()

"""Customer lifetime value: orders, revenue, first and last order per customer.

    spark-submit customer_ltv.py ORDERS_TABLE OUTPUT_TABLE
    e.g. spark-submit customer_ltv.py retail.orders mart.customer_lifetime_value   (production)
"""

import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

orders_table = sys.argv[1]
output_table = sys.argv[2]

spark = SparkSession.builder.appName("customer-lifetime-value").getOrCreate()

ltv = spark.table(orders_table).groupBy("customer_id").agg(
    F.count("*").alias("orders"),
    F.round(F.sum("amount"), 2).alias("lifetime_revenue"),
    F.min("order_ts").alias("first_order_ts"),
    F.max("order_ts").alias("last_order_ts"),
)
ltv.write.mode("overwrite").saveAsTable(output_table)
print(f"Wrote {ltv.count()} customers to {output_table}")

spark.stop()

"""The ten biggest spenders of each customer region, for the account managers' weekly call list.

    spark-submit top_customers.py ORDERS_TABLE CUSTOMERS_TABLE OUTPUT_TABLE
"""

import sys

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.functions import col, row_number

TOP_N = 10

orders_table, customers_table, output_table = sys.argv[1], sys.argv[2], sys.argv[3]

spark = SparkSession.builder.appName("top-customers-by-region").getOrCreate()

customers = spark.table(customers_table).select("customer_id", "name", "region", "tier")

# Spend per customer, as the analysts compute it in their notebook.
spend = (
    spark.table(orders_table)
    .groupBy("customer_id")
    .agg(F.count("*").alias("orders"), F.round(F.sum("amount"), 2).alias("total_spend"))
)

# Highest spend first; the customer id breaks ties so the list is the same on every run.
ranking = Window.partitionBy("region").orderBy(col("total_spend").desc(), col("customer_id"))
top = (
    spend.join(customers, "customer_id")
    .withColumn("rank", row_number().over(ranking))
    .where(col("rank") <= TOP_N)
    .select("region", "rank", "customer_id", "name", "tier", "orders", "total_spend")
)

top.write.mode("overwrite").saveAsTable(output_table)
print(f"Wrote the top {TOP_N} customers of each region to {output_table}")

spark.stop()

"""Revenue per product category and sales channel.

    spark-submit category_revenue.py ORDERS_TABLE PRODUCTS_TABLE OUTPUT_TABLE
"""

import sys

from pyspark.sql import SparkSession

orders_table, products_table, output_table = sys.argv[1], sys.argv[2], sys.argv[3]

spark = SparkSession.builder.appName("category-channel-revenue").getOrCreate()

revenue = spark.sql(f"""
    SELECT p.category,
           FIRST(o.channel)        AS channel,
           COUNT(*)                AS orders,
           SUM(o.quantity)         AS units,
           ROUND(SUM(o.amount), 2) AS revenue
    FROM {orders_table} o
    JOIN {products_table} p ON o.product_id = p.product_id
    GROUP BY p.category
""")
revenue.write.mode("overwrite").saveAsTable(output_table)
print(f"Wrote {spark.table(output_table).count()} rows to {output_table}")

spark.stop()

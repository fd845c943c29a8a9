"""Consolidates the web shop's and the stores' sales exports into daily totals.

    spark-submit consolidate_sales.py WEB_SALES_TABLE STORE_SALES_TABLE OUTPUT_TABLE
"""

import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

web_table, store_table, output_table = sys.argv[1], sys.argv[2], sys.argv[3]

spark = SparkSession.builder.appName("sales-consolidation").getOrCreate()

web = spark.table(web_table)
store = spark.table(store_table)
all_sales = web.unionByName(store, allowMissingColumns=True)

daily = all_sales.groupBy(F.to_date("sale_ts").alias("sale_date")).agg(
    F.count("*").alias("orders"), F.round(F.sum("amount"), 2).alias("revenue"))
daily.write.mode("overwrite").saveAsTable(output_table)
print(f"Wrote {daily.count()} days to {output_table}")

spark.stop()

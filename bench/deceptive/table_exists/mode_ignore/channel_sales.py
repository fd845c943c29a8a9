"""Daily sales per channel (web, store), rebuilt in full every night.

    spark-submit channel_sales.py ORDERS_TABLE OUTPUT_TABLE
"""

import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

orders_table, output_table = sys.argv[1], sys.argv[2]

spark = SparkSession.builder.appName("daily-channel-sales").getOrCreate()

daily = (
    spark.table(orders_table)
    .groupBy(F.to_date("order_ts").alias("sale_date"), "channel")
    .agg(F.count("*").alias("orders"), F.round(F.sum("amount"), 2).alias("revenue"))
)
daily.write.format("parquet").mode("ignore").saveAsTable(output_table)
print(f"Wrote {daily.count()} rows to {output_table}")

spark.stop()

"""Daily margin of the shop's order lines, for the category managers: the day's order lines joined
to that day's snapshot of the product catalogue (category, brand, unit cost), each line's revenue,
margin and share of its order's revenue, written over the day's partition of the reporting table.
A scheduler runs it once a day with that day's date.

    spark-submit line_margin_daily.py LINES_TABLE CATALOG_TABLE OUTPUT_TABLE --date YYYY-MM-DD
"""

import argparse
import datetime

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

parser = argparse.ArgumentParser(description="Margin of one day's order lines")
parser.add_argument("lines_table")
parser.add_argument("catalog_table")
parser.add_argument("output_table")
parser.add_argument("--date", type=datetime.date.fromisoformat, required=True, help="the day to process")
args = parser.parse_args()

spark = SparkSession.builder.appName("order-line-margin-daily").getOrCreate()
# Replace only the partitions written (the day's), not the whole table.
spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
spark.sql(f"""
    CREATE TABLE IF NOT EXISTS {args.output_table} (
        order_id BIGINT, line_no INT, sku STRING, product_name STRING, category STRING, brand STRING,
        quantity INT, unit_price DOUBLE, unit_cost DOUBLE, revenue DOUBLE, margin DOUBLE,
        order_revenue DOUBLE, revenue_share DOUBLE, order_date DATE)
    USING parquet PARTITIONED BY (order_date)""")

lines = spark.table(args.lines_table).where(F.col("order_date") == F.lit(args.date))
# The catalogue as it was that day: one row per SKU.
catalog = (spark.table(args.catalog_table).where(F.col("snapshot_date") == F.lit(args.date))
           .select("sku", "product_name", "category", "brand", "unit_cost"))
margins = (
    lines.join(catalog, "sku")
    .withColumn("revenue", F.round(F.col("quantity") * F.col("unit_price"), 2))
    .withColumn("margin", F.round(F.col("quantity") * (F.col("unit_price") - F.col("unit_cost")), 2))
    .withColumn("order_revenue", F.round(F.sum("revenue").over(Window.partitionBy("order_id")), 2))
    .withColumn("revenue_share", F.round(F.col("revenue") / F.col("order_revenue"), 4))
)

columns = spark.table(args.output_table).columns  # insertInto matches columns by position
margins.select(*columns).write.insertInto(args.output_table, overwrite=True)
print(f"Wrote the line margins of {args.date} to {args.output_table}")

spark.stop()

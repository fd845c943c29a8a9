"""Daily enrichment of the web shop's orders with the CRM's customer segment, for the segment
revenue dashboards: the day's orders (one partition of the landing table) joined to the CRM's
customers, written over the day's partition of the reporting table. A scheduler runs it once a
day with that day's date.

    spark-submit enrich_orders_daily.py ORDERS_TABLE CUSTOMERS_TABLE OUTPUT_TABLE --date YYYY-MM-DD
"""

import argparse
import datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

parser = argparse.ArgumentParser(description="Enrich one day of orders with the customer's segment")
parser.add_argument("orders_table")
parser.add_argument("customers_table")
parser.add_argument("output_table")
parser.add_argument("--date", type=datetime.date.fromisoformat, required=True, help="the day to process")
args = parser.parse_args()

spark = SparkSession.builder.appName("shop-orders-enrich-daily").getOrCreate()
# Replace only the partitions written (the day's), not the whole table.
spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
spark.sql(f"""
    CREATE TABLE IF NOT EXISTS {args.output_table} (
        order_id BIGINT, customer_ref STRING, customer_name STRING, segment STRING, country STRING,
        loyalty_tier STRING, sku STRING, quantity INT, amount DOUBLE, currency STRING, order_ts TIMESTAMP,
        order_date DATE)
    USING parquet PARTITIONED BY (order_date)""")

orders = spark.table(args.orders_table).where(F.col("order_date") == F.lit(args.date))
customers = spark.table(args.customers_table).select(
    "customer_ref", "customer_name", "segment", "country", "loyalty_tier")
# Inner join: an order whose customer the CRM does not know yet is reported the next day.
enriched = orders.join(customers, "customer_ref")

columns = spark.table(args.output_table).columns  # insertInto matches columns by position
enriched.select(*columns).write.insertInto(args.output_table, overwrite=True)
print(f"Wrote the enriched orders of {args.date} to {args.output_table}")

spark.stop()

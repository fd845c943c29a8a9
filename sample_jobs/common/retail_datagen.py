"""Retail data generator shared by several scenarios: the tables an online and in-store retailer's
nightly pipelines read (database `retail`), plus the state yesterday's run of one pipeline left
behind (`mart.daily_channel_sales`).

Every table gets a fresh random seed per run unless --seed is given, so output computed from an
older load never matches the new inputs, and the batch id of the load in its table properties.

    spark-submit retail_datagen.py [--rows N] [--seed S]    (N orders, default 20000)
"""

import argparse
import random
import uuid

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

parser = argparse.ArgumentParser(description="Generate the retail tables")
parser.add_argument("--rows", type=int, default=20_000, help="number of orders (other tables scale with it)")
parser.add_argument("--seed", type=int, default=None, help="random seed (default: a new one per run)")
args = parser.parse_args()
if args.rows < 100:
    parser.error("--rows must be at least 100")

seed = args.seed if args.seed is not None else random.randrange(1, 2**31)
batch_id = uuid.uuid4().hex
n_orders = args.rows
n_customers = max(100, n_orders // 10)
n_products = max(50, n_orders // 40)
n_campaigns = 40
n_events = n_orders * 2

spark = SparkSession.builder.appName("retail-datagen").getOrCreate()
spark.sql("CREATE DATABASE IF NOT EXISTS retail")
spark.sql("CREATE DATABASE IF NOT EXISTS mart")
print(f"Generating retail batch {batch_id}: {n_orders} orders, {n_customers} customers, seed {seed}")


def rnd(salt):
    """A uniform [0, 1) column, reproducible for a given seed."""
    return F.rand(seed + salt)


def pick(values, salt):
    """One of `values`, uniformly."""
    arr = F.array(*[F.lit(v) for v in values])
    return F.element_at(arr, (F.floor(rnd(salt) * len(values)) + 1).cast("int"))


def save(df, table):
    df.write.mode("overwrite").saveAsTable(table)
    spark.sql(f"ALTER TABLE {table} SET TBLPROPERTIES ('batch_id' = '{batch_id}', 'seed' = '{seed}')")
    print(f"  wrote {table}")


regions = ["EMEA", "NA", "APAC", "LATAM"]
WEEK_START = 1717977600  # 2024-06-10 00:00 UTC: the loads cover the week from then on
first_names = ["Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jon", "Kemi", "Liam"]
last_names = ["Khan", "Silva", "Novak", "Okafor", "Berg", "Moreau", "Tanaka", "Rossi", "Weber", "Lopez"]

customers = (
    spark.range(1, n_customers + 1).withColumnRenamed("id", "customer_id")
    .withColumn("name", F.concat_ws(" ", pick(first_names, 1), pick(last_names, 2)))
    .withColumn("email", F.when(rnd(3) < 0.08, F.lit(None)).otherwise(
        F.concat(F.lit("customer"), F.col("customer_id"), F.lit("@example.com"))))
    # Phone numbers are optional in the shop's sign-up form: about one in ten is missing.
    .withColumn("phone", F.when(rnd(4) < 0.1, F.lit(None)).otherwise(
        F.format_string("+1-555-%07d", (rnd(5) * 9_999_999).cast("int"))))
    .withColumn("region", pick(regions, 6))
    .withColumn("tier", pick(["gold", "silver", "bronze", "bronze"], 7))
    .withColumn("signup_date", F.date_add(F.lit("2020-01-01").cast("date"), (rnd(8) * 1500).cast("int")))
)
save(customers, "retail.customers")

categories = ["grocery", "electronics", "apparel", "home", "toys", "beauty"]
products = (
    spark.range(1, n_products + 1).withColumnRenamed("id", "product_id")
    .withColumn("category", pick(categories, 11))
    .withColumn("product_name", F.concat(F.initcap(F.col("category")), F.lit(" item "), F.col("product_id")))
    .withColumn("list_price", F.round(rnd(12) * 200 + 1, 2))
    .withColumn("description", F.concat_ws(
        " ", F.col("product_name"), F.lit("- a well-made"), F.col("category"),
        F.lit("product, sold in our stores and online. Care: see label. Batch"), F.lit(batch_id)))
)
save(products, "retail.products")

orders = (
    spark.range(1, n_orders + 1).withColumnRenamed("id", "order_id")
    .withColumn("customer_id", (F.floor(rnd(21) * n_customers) + 1).cast("long"))
    .withColumn("product_id", (F.floor(rnd(22) * n_products) + 1).cast("long"))
    .withColumn("channel", F.when(rnd(23) < 0.55, F.lit("web")).otherwise(F.lit("store")))
    .withColumn("quantity", (F.floor(rnd(24) * 4) + 1).cast("int"))
    .withColumn("unit_price", F.round(rnd(25) * 120 + 2, 2))
    .withColumn("amount", F.round(F.col("quantity") * F.col("unit_price"), 2))
    .withColumn("currency", pick(["USD", "USD", "EUR", "GBP"], 26))
    .withColumn("order_ts", F.timestamp_seconds(
        F.lit(WEEK_START) + (rnd(27) * 7 * 86400).cast("long")))
    .withColumn("region", pick(regions, 28))  # the shipping region, not necessarily the customer's
)
save(orders, "retail.orders")
orders = spark.table("retail.orders")  # derive the other tables from what was written

# The web shop's and the stores' exports of the same orders. The web export gained a `device`
# column in its last release; the store export did not.
save(orders.where("channel = 'web'").select(
    "order_id", "customer_id", F.col("order_ts").alias("sale_ts"), "amount",
    pick(["mobile", "desktop", "tablet"], 31).alias("device")), "retail.web_sales")
save(orders.where("channel = 'store'").select(
    "order_id", "customer_id", F.col("order_ts").alias("sale_ts"), "amount"), "retail.store_sales")

# The partner feed lands as strings. A few amounts are not numbers ('N/A', '', 'unknown').
save(orders.select(
    F.col("order_id").cast("string").alias("order_id"),
    F.col("customer_id").cast("string").alias("customer_id"),
    F.when(rnd(41) < 0.015, pick(["N/A", "", "unknown"], 42))
    .otherwise(F.format_string("%.2f", F.col("amount"))).alias("amount"),
    "currency",
    F.date_format("order_ts", "yyyy-MM-dd").alias("order_date"),
), "retail.partner_orders_raw")

# Point-of-sale terminals (configured in Europe) write day/month/year times.
save(orders.where("channel = 'store'").select(
    F.concat(F.lit("T"), F.col("order_id")).alias("txn_id"),
    F.format_string("S%03d", (F.col("order_id") % 25).cast("int")).alias("store_id"),
    F.date_format("order_ts", "dd/MM/yyyy HH:mm:ss").alias("txn_time"),
    "amount",
), "retail.pos_transactions_raw")

# Clickstream, feed v2: the upstream team renamed user_id to visitor_id.
save(
    spark.range(1, n_events + 1).withColumnRenamed("id", "event_id")
    .withColumn("visitor_id", (F.floor(rnd(51) * n_customers * 2) + 1).cast("long"))
    .withColumn("event_type", pick(["page_view", "page_view", "page_view", "add_to_cart", "search"], 52))
    .withColumn("page", F.concat(F.lit("/p/"), (F.floor(rnd(53) * n_products) + 1).cast("string")))
    .withColumn("event_ts", F.timestamp_seconds(F.lit(WEEK_START) + (rnd(54) * 7 * 86400).cast("long"))),
    "retail.clickstream_events",
)

# Daily marketing stats: paused campaigns record days with zero sessions.
days = spark.range(0, 7).select(F.date_add(F.to_date(F.timestamp_seconds(F.lit(WEEK_START))), F.col("id").cast("int")).alias("stat_date"))
campaigns = spark.range(1, n_campaigns + 1).select(F.format_string("CMP-%03d", F.col("id").cast("int")).alias("campaign_id"))
stats = (
    campaigns.crossJoin(days)
    .withColumn("_paused", rnd(61) < 0.1)
    .withColumn("sessions", F.when(F.col("_paused"), F.lit(0)).otherwise((rnd(62) * 5000 + 10).cast("int")))
    .withColumn("conversions", F.when(F.col("_paused"), F.lit(0)).otherwise(
        (F.col("sessions") * rnd(63) * 0.08).cast("int")))
    .withColumn("spend", F.round(F.when(F.col("_paused"), F.lit(0.0)).otherwise(rnd(64) * 900 + 50), 2))
    .drop("_paused")
)
save(stats, "retail.campaign_stats")

# Reference exchange rates, as the treasury team publishes them.
save(spark.createDataFrame(
    [("USD", 1.0), ("EUR", 1.08), ("GBP", 1.27)], "currency string, rate_to_usd double"), "retail.fx_rates")

# What yesterday's run of the daily channel report left in place: it covered the first day only.
save(
    orders.where(F.col("order_ts") < F.timestamp_seconds(F.lit(WEEK_START + 86400)))
    .groupBy(F.to_date("order_ts").alias("sale_date"), "channel")
    .agg(F.count("*").alias("orders"), F.round(F.sum("amount"), 2).alias("revenue")),
    "mart.daily_channel_sales",
)

spark.stop()

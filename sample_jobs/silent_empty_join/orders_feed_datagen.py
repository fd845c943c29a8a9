"""Generator of the shop's order feed and the CRM's customers, for the daily order enrichment.

Writes, in one run, the whole history the daily job reads:
- `crm.customers`: the CRM's customers, keyed by `customer_ref`, the CRM's id as a string ("42");
- `landing.shop_orders`: the web shop's orders, one partition a day (`order_date`), days 1..N.
On the last day the shop's new order platform went live: it sends `customer_ref` in its own format,
"C-00042", which the CRM does not know. Nothing fails: the column is a string either way.

    spark-submit orders_feed_datagen.py [--days 15] [--first-date 2024-06-03] [--rows 4000] [--seed S]
"""

import calendar
from functools import reduce

from daily_feed import day_bounds, feed_arguments
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

args = feed_arguments("Generate the shop's order feed and the CRM's customers", default_rows=4000)
n_customers = max(200, args.rows // 2)
seed = args.seed

spark = SparkSession.builder.appName("shop-orders-feed-datagen").getOrCreate()
for database in ("landing", "crm", "reporting"):
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
print(f"Generating {args.days} days of shop orders from {args.dates[0]} ({sum(args.volumes)} orders, "
      f"{n_customers} customers, seed {seed}); day {args.days} sends customer refs as C-00042")


def uniform(key, salt):
    """A [0, 1) value fixed by `key` (a column) and `salt`: the same for the same key in every day's data."""
    return F.pmod(F.xxhash64(F.lit(seed), F.lit(salt), key), F.lit(1_000_000)) / 1_000_000.0


def pick(values, key, salt):
    arr = F.array(*[F.lit(v) for v in values])
    return F.element_at(arr, (F.floor(uniform(key, salt) * len(values)) + 1).cast("int"))


first_names = ["Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jon", "Kemi", "Liam"]
last_names = ["Khan", "Silva", "Novak", "Okafor", "Berg", "Moreau", "Tanaka", "Rossi", "Weber", "Lopez"]
customer_id = F.col("id")
customers = spark.range(1, n_customers + 1).select(
    customer_id.cast("string").alias("customer_ref"),
    F.concat_ws(" ", pick(first_names, customer_id, 1), pick(last_names, customer_id, 2)).alias("customer_name"),
    pick(["consumer", "consumer", "small_business", "enterprise"], customer_id, 3).alias("segment"),
    pick(["US", "CA", "GB", "DE", "FR", "NL"], customer_id, 4).alias("country"),
    pick(["none", "silver", "gold"], customer_id, 5).alias("loyalty_tier"),
)
customers.write.mode("overwrite").saveAsTable("crm.customers")
print("  wrote crm.customers")


def day_orders(day, date, first_id, end_id, changed):
    """The orders of one day; `changed`: the new platform's customer refs ("C-00042")."""
    order_id = F.col("id")
    customer = (F.floor(uniform(order_id, 11) * n_customers) + 1).cast("long")
    ref = F.format_string("C-%05d", customer) if changed else customer.cast("string")
    midnight = calendar.timegm(date.timetuple())
    quantity = (F.floor(uniform(order_id, 13) * 4) + 1).cast("int")
    return spark.range(first_id, end_id).select(
        order_id.alias("order_id"),
        ref.alias("customer_ref"),
        F.format_string("SKU-%05d", (F.floor(uniform(order_id, 12) * 1500) + 1).cast("int")).alias("sku"),
        quantity.alias("quantity"),
        F.round(quantity * (uniform(order_id, 14) * 80 + 5), 2).alias("amount"),
        pick(["USD", "USD", "USD", "EUR", "GBP"], order_id, 15).alias("currency"),
        F.timestamp_seconds(F.lit(midnight) + (uniform(order_id, 16) * 86400).cast("long")).alias("order_ts"),
        F.lit(date).alias("order_date"),
    )


days = [day_orders(day, date, lo, hi, changed=day == args.days)
        for day, (date, (lo, hi)) in enumerate(zip(args.dates, day_bounds(args.volumes), strict=True), 1)]
orders = reduce(DataFrame.unionByName, days)
orders.write.mode("overwrite").partitionBy("order_date").saveAsTable("landing.shop_orders")
for date, n in zip(args.dates, args.volumes, strict=True):
    print(f"  landing.shop_orders {date}: {n} orders")

spark.stop()

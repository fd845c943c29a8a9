"""Generator of the order-line feed and the product catalogue's daily snapshots, for the daily
line margin report.

Writes, in one run, the whole history the daily job reads:
- `landing.order_lines`: the shop's order lines, one partition a day (`order_date`), days 1..N;
- `landing.catalog_snapshots`: the product information system's export of the catalogue, one
  snapshot a day (`snapshot_date`), one row per SKU, in the reporting locale (en-US).
On the last day the product information system's new export went live: it writes one row per SKU
for every storefront locale (12), so each SKU appears 12 times that day. Nothing fails.

    spark-submit order_lines_datagen.py [--days 15] [--first-date 2024-06-03] [--rows 20000] [--seed S]

20,000 lines a day (the other scenarios' feeds have a few thousand rows): with fewer, the 12-fold
day's extra work hides in Spark's fixed start-up cost and the run is no longer than a usual day's.
"""

from functools import reduce

from daily_feed import day_bounds, feed_arguments
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

REPORTING_LOCALE = "en-US"
LOCALES = [REPORTING_LOCALE, "en-GB", "en-CA", "fr-FR", "fr-CA", "de-DE", "de-AT", "nl-NL", "es-ES", "it-IT",
           "pl-PL", "sv-SE"]
LINES_PER_ORDER = 3

args = feed_arguments("Generate the order-line feed and the catalogue snapshots", default_rows=20_000)
n_skus = 1500
seed = args.seed

spark = SparkSession.builder.appName("order-lines-feed-datagen").getOrCreate()
for database in ("landing", "reporting"):
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
print(f"Generating {args.days} days of order lines from {args.dates[0]} ({sum(args.volumes)} lines, "
      f"{n_skus} SKUs, seed {seed}); day {args.days}'s catalogue has one row per SKU and locale")


def uniform(key, salt):
    """A [0, 1) value fixed by `key` (a column) and `salt`: the same for the same key in every day's data."""
    return F.pmod(F.xxhash64(F.lit(seed), F.lit(salt), key), F.lit(1_000_000)) / 1_000_000.0


def pick(values, key, salt):
    arr = F.array(*[F.lit(v) for v in values])
    return F.element_at(arr, (F.floor(uniform(key, salt) * len(values)) + 1).cast("int"))


def unit_cost(sku_number):
    return F.round(uniform(sku_number, 1) * 60 + 2, 2)


categories = ["grocery", "electronics", "apparel", "home", "toys", "beauty"]
brands = ["Acme", "Northwind", "Contoso", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay"]


def catalogue(date, locales):
    sku_number = F.col("id")
    skus = spark.range(1, n_skus + 1).select(
        sku_number,
        F.format_string("SKU-%05d", sku_number.cast("int")).alias("sku"),
        pick(categories, sku_number, 2).alias("category"),
        pick(brands, sku_number, 3).alias("brand"),
        unit_cost(sku_number).alias("unit_cost"),
    )
    names = spark.createDataFrame([(locale,) for locale in locales], "locale string")
    return skus.crossJoin(names).select(
        "sku", "locale",
        F.concat_ws(" ", F.initcap("category"), F.lit("item"), F.col("id").cast("string"),
                    F.when(F.col("locale") != REPORTING_LOCALE, F.concat(F.lit("("), "locale", F.lit(")")))
                    ).alias("product_name"),
        "category", "brand", "unit_cost", F.lit(date).alias("snapshot_date"),
    )


def day_lines(date, first_id, end_id):
    line = F.col("id")
    sku_number = (F.floor(uniform(line, 11) * n_skus) + 1).cast("long")
    return spark.range(first_id, end_id).select(
        F.floor(line / LINES_PER_ORDER).cast("long").alias("order_id"),
        (line % LINES_PER_ORDER + 1).cast("int").alias("line_no"),
        F.format_string("SKU-%05d", sku_number.cast("int")).alias("sku"),
        (F.floor(uniform(line, 12) * 5) + 1).cast("int").alias("quantity"),
        F.round(unit_cost(sku_number) * (1.25 + uniform(line, 13) * 0.5), 2).alias("unit_price"),
        F.lit(date).alias("order_date"),
    )


snapshots = reduce(DataFrame.unionByName, [
    catalogue(date, LOCALES if day == args.days else [REPORTING_LOCALE]) for day, date in enumerate(args.dates, 1)])
snapshots.write.mode("overwrite").partitionBy("snapshot_date").saveAsTable("landing.catalog_snapshots")
print(f"  wrote landing.catalog_snapshots: {n_skus} SKUs a day, {n_skus * len(LOCALES)} rows on {args.dates[-1]}")

# Whole orders a day: an order's lines share its day; order ids run on across days.
order_bounds = day_bounds([max(1, n // LINES_PER_ORDER) for n in args.volumes])
lines = reduce(DataFrame.unionByName, [day_lines(date, lo * LINES_PER_ORDER, hi * LINES_PER_ORDER)
                                       for date, (lo, hi) in zip(args.dates, order_bounds, strict=True)])
lines.write.mode("overwrite").partitionBy("order_date").saveAsTable("landing.order_lines")
for date, (lo, hi) in zip(args.dates, order_bounds, strict=True):
    print(f"  landing.order_lines {date}: {(hi - lo) * LINES_PER_ORDER} lines")

spark.stop()

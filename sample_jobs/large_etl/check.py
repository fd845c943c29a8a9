"""Output check of customer-360: its four tables, recomputed from the retail inputs.

    spark-submit check.py SOURCE_DB TARGET_DB

`outputs(spark, args)` is what a correct run writes (the scenario's baseline job writes it). The
recomputation reads every product page's id (the broken job cannot); a "fix" that leaves the ids
NULL leaves every product without views and is rejected here.
"""

import sys
from datetime import timedelta

from checklib import Check
from pyspark.sql import Window
from pyspark.sql import functions as F

KEYS = {
    "c360_customer_profile": ["customer_id"],
    "c360_product_engagement": ["product_id"],
    "c360_region_daily_sales": ["region", "order_date", "channel"],
    "c360_category_tier_revenue": ["category", "tier"],
}
INPUTS = ["customers", "products", "orders", "fx_rates", "clickstream_events"]
REGIONS = ["EMEA", "NA", "APAC", "LATAM"]
REGION_ALIASES = {"EU": "EMEA", "EUROPE": "EMEA", "US": "NA", "USA": "NA", "NORTH AMERICA": "NA", "ASIA": "APAC",
                  "ASIA PACIFIC": "APAC", "LATIN AMERICA": "LATAM", "SOUTH AMERICA": "LATAM"}
EMAIL = r"^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$"
PRODUCT_PAGE = r"^(/[a-z]{2})?/p/[0-9]+$"
MONEY, TOTAL = "decimal(12,2)", "decimal(16,2)"


def region(column):
    value = F.upper(F.trim(column))
    mapped = F.when(value.isin(*REGIONS), value)
    for alias, name in REGION_ALIASES.items():
        mapped = mapped.when(value == alias, name)
    return mapped.otherwise("UNKNOWN")


def score(value, limits, fewer_is_better=False):
    """5 for the first limit met, then 4, 3, 2; 1 for none."""
    result = None
    for points, limit in zip((5, 4, 3, 2), limits, strict=True):
        met = value <= limit if fewer_is_better else value >= limit
        result = F.when(met, points) if result is None else result.when(met, points)
    return result.otherwise(1)


def share(part, whole):
    return F.round(F.try_divide(part, whole), 4)


def inputs(spark, db):
    t = {name: spark.table(f"{db}.{name}") for name in INPUTS}
    email = F.lower(F.trim("email"))
    phone_digits = F.regexp_replace("phone", "[^0-9]", "")
    tier = F.lower(F.trim("tier"))
    customers = t["customers"].select(
        "customer_id",
        F.initcap(F.trim(F.regexp_replace("name", r"\s+", " "))).alias("customer_name"),
        F.when(email.rlike(EMAIL), email).alias("email"),
        F.coalesce(F.length(phone_digits) >= 8, F.lit(False)).alias("has_phone"),
        region(F.col("region")).alias("home_region"),
        F.when(tier.isin("gold", "silver", "bronze"), tier).otherwise("bronze").alias("tier"),
        "signup_date",
    )
    price = F.col("list_price").cast("decimal(10,2)")
    products = t["products"].select(
        "product_id", F.trim("product_name").alias("product_name"),
        F.coalesce(F.lower(F.trim("category")), F.lit("unknown")).alias("category"),
        price.alias("list_price"),
        F.when(price.isNull(), "unpriced").when(price < 25, "budget").when(price < 100, "mid")
        .otherwise("premium").alias("price_band"),
    )
    fx = t["fx_rates"].select(F.upper(F.trim("currency")).alias("currency"),
                              F.col("rate_to_usd").cast("decimal(12,6)").alias("rate"))
    orders = (
        t["orders"].select(
            "order_id", "customer_id", "product_id", F.lower(F.trim("channel")).alias("channel"), "quantity",
            F.col("amount").cast(MONEY).alias("amount"), F.upper(F.trim("currency")).alias("currency"),
            "order_ts", F.to_date("order_ts").alias("order_date"), region(F.col("region")).alias("ship_region"))
        .where("order_ts IS NOT NULL AND quantity > 0 AND amount IS NOT NULL AND amount >= 0")
        .join(fx, "currency")
        .withColumn("amount_usd", F.round(F.col("amount") * F.col("rate"), 2).cast(MONEY))
        .join(customers.select("customer_id", "home_region", "tier"), "customer_id")
        .join(products.select("product_id", "category"), "product_id")
        .withColumn("cross_border", F.col("ship_region") != F.col("home_region"))
    )
    events = t["clickstream_events"].select(
        "event_id", "visitor_id", F.lower(F.trim("event_type")).alias("event_type"), F.trim("page").alias("page"),
        "event_ts").where("visitor_id IS NOT NULL AND event_ts IS NOT NULL")
    return customers, products, orders, events


def profile(customers, orders, events, as_of):
    by_customer = Window.partitionBy("customer_id").orderBy("order_ts", "order_id")
    per_customer = orders.withColumn(
        "gap", F.datediff("order_date", F.lag("order_date").over(by_customer))
    ).groupBy("customer_id").agg(
        F.count("*").alias("n_orders"), F.sum("quantity").alias("n_units"), F.sum("amount_usd").alias("revenue"),
        F.sum((F.col("channel") == "web").cast("int")).alias("web_orders"),
        F.min("order_date").alias("first_order_date"), F.max("order_date").alias("last_order_date"),
        F.max("gap").alias("longest_gap_days"))
    favourite = (
        orders.groupBy("customer_id", "category").agg(F.sum("amount_usd").alias("spent"))
        .withColumn("n", F.row_number().over(
            Window.partitionBy("customer_id").orderBy(F.desc("spent"), F.asc("category"))))
        .where("n = 1").select("customer_id", F.col("category").alias("favourite_category"))
    )
    seconds = F.unix_timestamp("event_ts")
    gap = seconds - F.lag(seconds).over(Window.partitionBy("visitor_id").orderBy("event_ts", "event_id"))
    browsing = events.withColumn("starts", (gap.isNull() | (gap > 1800)).cast("int")).groupBy(
        F.col("visitor_id").alias("customer_id")
    ).agg(F.sum((F.col("event_type") == "page_view").cast("int")).alias("views"), F.sum("starts").alias("visits"))

    day = F.lit(as_of)
    p = (customers.join(per_customer, "customer_id", "left").join(favourite, "customer_id", "left")
         .join(browsing, "customer_id", "left")
         .withColumn("orders", F.coalesce("n_orders", F.lit(0)).cast("bigint"))
         .withColumn("revenue_usd", F.coalesce("revenue", F.lit(0)).cast(TOTAL))
         .withColumn("days_since_last_order", F.datediff(day, "last_order_date"))
         .withColumn("tenure_days", F.datediff(day, "signup_date")))
    buyer = F.col("orders") > 0
    p = (p.withColumn("recency_score", F.when(buyer, score(F.col("days_since_last_order"), (1, 2, 4, 6), True)))
         .withColumn("frequency_score", F.when(buyer, score(F.col("orders"), (15, 12, 9, 6))))
         .withColumn("monetary_score", F.when(buyer, score(F.col("revenue_usd"), (2500, 1800, 1200, 600)))))
    r, f, m = F.col("recency_score"), F.col("frequency_score"), F.col("monetary_score")
    segment = (F.when(~buyer, "prospect").when((r >= 4) & (f >= 4) & (m >= 4), "champion").when(f >= 4, "loyal")
               .when((r <= 2) & (f >= 3), "at_risk").when(F.col("tenure_days") <= 90, "new").otherwise("regular"))
    return p.select(
        "customer_id", "customer_name",
        F.substring_index("email", "@", -1).alias("email_domain"),
        F.col("email").isNotNull().alias("has_email"), "has_phone",
        F.when(F.col("email").isNotNull(), "email").when(F.col("has_phone"), "sms").otherwise("none")
        .alias("contact_channel"),
        "home_region", "tier", "signup_date", F.col("tenure_days").cast("int"), "orders",
        F.coalesce("n_units", F.lit(0)).cast("bigint").alias("units"), "revenue_usd",
        F.round(F.try_divide(F.col("revenue_usd"), F.col("orders")), 2).cast(TOTAL).alias("avg_order_usd"),
        "first_order_date", "last_order_date", F.col("days_since_last_order").cast("int"),
        F.col("longest_gap_days").cast("int"), share(F.col("web_orders"), F.col("orders")).alias("web_order_share"),
        "favourite_category",
        F.coalesce("views", F.lit(0)).cast("bigint").alias("page_views"),
        F.coalesce("visits", F.lit(0)).cast("bigint").alias("sessions"),
        r.cast("int").alias("recency_score"), f.cast("int").alias("frequency_score"),
        m.cast("int").alias("monetary_score"), segment.alias("segment"), day.alias("as_of_date"),
    )


def engagement(products, orders, events):
    on_pages = events.where(F.col("page").rlike(PRODUCT_PAGE)).withColumn(
        "product_id", F.regexp_extract("page", "/p/([0-9]+)$", 1).cast("long"))
    activity = on_pages.groupBy("product_id").agg(
        *[F.sum((F.col("event_type") == kind).cast("int")).alias(name)
          for kind, name in (("page_view", "page_views"), ("add_to_cart", "add_to_carts"), ("search", "searches"))],
        F.countDistinct("visitor_id").alias("unique_visitors"))
    sales = orders.groupBy("product_id").agg(F.count("*").alias("orders"), F.sum("quantity").alias("units"),
                                             F.sum("amount_usd").alias("revenue"))
    counts = ["page_views", "add_to_carts", "searches", "unique_visitors", "orders", "units"]
    e = products.join(activity, "product_id", "left").join(sales, "product_id", "left").select(
        "product_id", "product_name", "category", "price_band", "list_price",
        *[F.coalesce(c, F.lit(0)).cast("bigint").alias(c) for c in counts],
        F.coalesce("revenue", F.lit(0)).cast(TOTAL).alias("revenue_usd"))
    category = Window.partitionBy("category")
    return e.select(
        "*",
        share(F.col("add_to_carts"), F.col("page_views")).alias("cart_rate"),
        share(F.col("orders"), F.col("page_views")).alias("view_to_order_rate"),
        F.rank().over(category.orderBy(F.desc("revenue_usd"))).cast("int").alias("category_revenue_rank"),
        share(F.col("revenue_usd").cast("double"), F.sum("revenue_usd").over(category).cast("double"))
        .alias("category_revenue_share"),
    )


def region_daily(orders):
    daily = orders.groupBy(F.col("ship_region").alias("region"), "order_date", "channel").agg(
        F.count("*").alias("orders"), F.countDistinct("customer_id").alias("customers"),
        F.sum("quantity").cast("bigint").alias("units"), F.sum("amount_usd").cast(TOTAL).alias("revenue_usd"),
        F.sum(F.col("cross_border").cast("int")).cast("bigint").alias("cross_border_orders"))
    to_day = Window.partitionBy("region", "channel").orderBy("order_date").rowsBetween(Window.unboundedPreceding, 0)
    return daily.select(
        "region", "order_date", "channel", "orders", "customers", "units", "revenue_usd",
        F.round(F.try_divide(F.col("revenue_usd"), F.col("orders")), 2).cast(TOTAL).alias("avg_basket_usd"),
        "cross_border_orders",
        F.sum("revenue_usd").over(to_day).cast("decimal(18,2)").alias("cumulative_revenue_usd"))


def category_tier(orders):
    by_tier = orders.groupBy("category", "tier").agg(
        F.countDistinct("customer_id").alias("customers"), F.count("*").alias("orders"),
        F.sum("amount_usd").cast(TOTAL).alias("revenue_usd"))
    return by_tier.select(
        "*",
        F.round(F.try_divide(F.col("revenue_usd"), F.col("customers")), 2).cast(TOTAL)
        .alias("avg_revenue_per_customer"),
        share(F.col("revenue_usd").cast("double"),
              F.sum("revenue_usd").over(Window.partitionBy("category")).cast("double"))
        .alias("category_revenue_share"))


def outputs(spark, args):
    source_db, target_db = args[:2]
    customers, products, orders, events = inputs(spark, source_db)
    as_of = orders.agg(F.max("order_date")).first()[0] + timedelta(days=1)
    return {
        f"{target_db}.c360_customer_profile": profile(customers, orders, events, as_of),
        f"{target_db}.c360_product_engagement": engagement(products, orders, events),
        f"{target_db}.c360_region_daily_sales": region_daily(orders),
        f"{target_db}.c360_category_tier_revenue": category_tier(orders),
    }


def main(args):
    source_db, target_db = args[:2]
    check = Check("customer-360")
    check.tables(*[f"{source_db}.{name}" for name in INPUTS], *[f"{target_db}.{name}" for name in KEYS])
    for table, expected in outputs(check.spark, args).items():
        actual = check.spark.table(table)
        if check.columns(actual, expected.columns, table):
            check.matches(actual, expected, KEYS[table.split(".", 1)[1]], table)
    check.finish()


if __name__ == "__main__":
    main(sys.argv[1:])

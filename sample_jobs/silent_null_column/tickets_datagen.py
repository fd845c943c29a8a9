"""Generator of the helpdesk's ticket feed, for the daily ticket triage.

Writes, in one run, the whole history the daily job reads: `landing.support_tickets`, one
partition a day (`created_date`), days 1..N. The landing table has a fixed schema; the ingestion
maps the helpdesk export's fields into it by name. On the last day the helpdesk's export v3 went
live, which renamed `description` (the customer's text, the widest field) to `body`: the ingestion
finds no `description`, lands it NULL on every ticket of the day and drops the unknown `body`.
Nothing fails: the column is nullable.

    spark-submit tickets_datagen.py [--days 15] [--first-date 2024-06-03] [--rows 3000] [--seed S]
"""

import calendar
from functools import reduce

from daily_feed import day_bounds, feed_arguments
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

# Words of customers' messages: the descriptions are sentences of these, 30-45 words (~250 characters).
WORDS = (
    "i my the a an and but when after before since again still not cannot tried order orders account "
    "password login app website page checkout payment card refund charged twice invoice delivery parcel "
    "package courier tracking number address missing damaged broken wrong size colour return label "
    "subscription cancel renew discount code voucher error message screen crashes loads slowly update "
    "yesterday today week please help urgent thanks support phone email chat reply waiting days hours "
    "customer service replacement exchange warranty store pickup shipped arrived never received"
).split()
SUBJECTS = ["Where is my order?", "Refund not received", "Cannot log in", "Charged twice", "Damaged item",
            "Wrong size delivered", "App keeps crashing", "Change delivery address", "Cancel my subscription",
            "Discount code does not work", "Question about my invoice", "Return label missing"]

args = feed_arguments("Generate the helpdesk's ticket feed", default_rows=3000)
seed = args.seed

spark = SparkSession.builder.appName("support-tickets-datagen").getOrCreate()
for database in ("landing", "reporting"):
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
print(f"Generating {args.days} days of support tickets from {args.dates[0]} ({sum(args.volumes)} tickets, "
      f"seed {seed}); day {args.days} lands description NULL (the export renamed it to body)")


def uniform(key, salt):
    """A [0, 1) value fixed by `key` (a column) and `salt`."""
    return F.pmod(F.xxhash64(F.lit(seed), F.lit(salt), key), F.lit(1_000_000)) / 1_000_000.0


def pick(values, key, salt):
    arr = F.array(*[F.lit(v) for v in values])
    return F.element_at(arr, (F.floor(uniform(key, salt) * len(values)) + 1).cast("int"))


def description(ticket):
    """30-45 words of the vocabulary, drawn by hashing (rand is not allowed inside a lambda)."""
    n_words = (F.floor(uniform(ticket, 21) * 16) + 30).cast("int")
    vocabulary = F.array(*[F.lit(w) for w in WORDS])
    words = F.transform(F.sequence(F.lit(1), n_words), lambda i: F.element_at(
        vocabulary, (F.pmod(F.xxhash64(F.lit(seed), ticket, i), F.lit(len(WORDS))) + 1).cast("int")))
    return F.concat_ws(" ", words)


def day_tickets(date, first_id, end_id, renamed):
    ticket = F.col("id")
    midnight = calendar.timegm(date.timetuple())
    return spark.range(first_id, end_id).select(
        ticket.alias("ticket_id"),
        (F.floor(uniform(ticket, 11) * 5000) + 1).cast("string").alias("customer_ref"),
        pick(["email", "email", "chat", "phone", "web_form"], ticket, 12).alias("channel"),
        pick(["low", "normal", "normal", "normal", "high", "urgent"], ticket, 13).alias("priority"),
        pick(["orders", "payments", "account", "delivery", "returns", "app"], ticket, 14).alias("product_area"),
        pick(SUBJECTS, ticket, 15).alias("subject"),
        (F.lit(None).cast("string") if renamed else description(ticket)).alias("description"),
        F.timestamp_seconds(F.lit(midnight) + (uniform(ticket, 16) * 86400).cast("long")).alias("created_ts"),
        F.lit(date).alias("created_date"),
    )


tickets = reduce(DataFrame.unionByName, [
    day_tickets(date, lo, hi, renamed=day == args.days)
    for day, (date, (lo, hi)) in enumerate(zip(args.dates, day_bounds(args.volumes), strict=True), 1)])
tickets.write.mode("overwrite").partitionBy("created_date").saveAsTable("landing.support_tickets")
for date, n in zip(args.dates, args.volumes, strict=True):
    print(f"  landing.support_tickets {date}: {n} tickets")

spark.stop()

"""Daily triage of the helpdesk's new tickets, for the support team's queues: each ticket of the
day with its text cleaned, its length, the queue it goes to (billing and technical words in the
customer's text route it; otherwise its product area) and whether it needs a senior agent, written
over the day's partition of the reporting table. A scheduler runs it once a day with that day's
date.

    spark-submit ticket_triage_daily.py TICKETS_TABLE OUTPUT_TABLE --date YYYY-MM-DD
"""

import argparse
import datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

BILLING = r"(?i)\b(refund|charged|invoice|card|payment)\b"
TECHNICAL = r"(?i)\b(error|crashes|login|password|app|screen)\b"

parser = argparse.ArgumentParser(description="Triage one day of support tickets")
parser.add_argument("tickets_table")
parser.add_argument("output_table")
parser.add_argument("--date", type=datetime.date.fromisoformat, required=True, help="the day to process")
args = parser.parse_args()

spark = SparkSession.builder.appName("ticket-triage-daily").getOrCreate()
# Replace only the partitions written (the day's), not the whole table.
spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
spark.sql(f"""
    CREATE TABLE IF NOT EXISTS {args.output_table} (
        ticket_id BIGINT, customer_ref STRING, channel STRING, priority STRING, product_area STRING,
        subject STRING, description STRING, description_chars INT, queue STRING, needs_senior BOOLEAN,
        created_ts TIMESTAMP, created_date DATE)
    USING parquet PARTITIONED BY (created_date)""")

tickets = spark.table(args.tickets_table).where(F.col("created_date") == F.lit(args.date))
text = F.trim(F.regexp_replace("description", r"\s+", " "))
triaged = tickets.select(
    "ticket_id", "customer_ref", "channel", "priority", "product_area", "subject",
    text.alias("description"),
    F.length(text).alias("description_chars"),
    F.when(text.rlike(BILLING), "billing").when(text.rlike(TECHNICAL), "technical")
    .otherwise(F.col("product_area")).alias("queue"),
    ((F.col("priority") == "urgent") | F.coalesce(text.rlike(r"(?i)\burgent\b"), F.lit(False))).alias("needs_senior"),
    "created_ts", "created_date",
)

columns = spark.table(args.output_table).columns  # insertInto matches columns by position
triaged.select(*columns).write.insertInto(args.output_table, overwrite=True)
print(f"Wrote the triaged tickets of {args.date} to {args.output_table}")

spark.stop()

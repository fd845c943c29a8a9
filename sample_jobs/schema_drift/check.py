"""Output check of clickstream-daily-users: per day, distinct visitors, page views and events.

    spark-submit check.py EVENTS_TABLE OUTPUT_TABLE
"""

import sys

from checklib import Check
from pyspark.sql import functions as F

events_table, output_table = sys.argv[1], sys.argv[2]
check = Check("clickstream-daily-users")
events, output = check.tables(events_table, output_table)
expected = events.groupBy(F.to_date("event_ts").alias("event_date")).agg(
    F.countDistinct("visitor_id").alias("active_users"),
    F.sum(F.when(F.col("event_type") == "page_view", 1).otherwise(0)).alias("page_views"),
    F.count("*").alias("events"),
)
if check.columns(output, expected.columns, output_table):
    check.matches(output, expected, ["event_date"], output_table)
check.finish()

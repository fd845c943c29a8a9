"""Daily engagement of the web shop: active users, page views and events per day, from the
clickstream feed.

    spark-submit daily_active_users.py EVENTS_TABLE OUTPUT_TABLE
"""

import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

events_table, output_table = sys.argv[1], sys.argv[2]

spark = SparkSession.builder.appName("clickstream-daily-users").getOrCreate()

events = spark.table(events_table)
daily = (
    events.groupBy(F.to_date("event_ts").alias("event_date"))
    .agg(
        F.sum(F.when(F.col("event_type") == "page_view", 1).otherwise(0)).alias("page_views"),
        F.count("*").alias("events"),
    )
)
daily.write.mode("overwrite").saveAsTable(output_table)
print(f"Wrote {daily.count()} days to {output_table}")

spark.stop()

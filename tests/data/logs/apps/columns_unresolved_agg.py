"""A column renamed upstream (user_id → visitor_id), counted inside an aggregation."""
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

spark = SparkSession.builder.appName("columns-unresolved-agg").getOrCreate()

events = spark.createDataFrame(
    [(1, 7, "page_view", "2024-01-01 10:00:00"), (2, 8, "click", "2024-01-01 11:00:00")],
    ["event_id", "visitor_id", "event_type", "event_ts"],
)
daily = (
    events.groupBy(F.to_date("event_ts").alias("event_date"))
    .agg(
        F.countDistinct("user_id").alias("active_users"),
        F.count("*").alias("events"),
    )
)
daily.show()
spark.stop()

"""Daily marketing KPIs per campaign: conversion rate and cost per session.

    spark-submit campaign_kpis.py STATS_TABLE OUTPUT_TABLE
"""

import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

stats_table, output_table = sys.argv[1], sys.argv[2]

spark = SparkSession.builder.appName("campaign-kpis").getOrCreate()

kpis = spark.table(stats_table).where(F.col("sessions") > 0).select(
    "campaign_id",
    "stat_date",
    "sessions",
    "conversions",
    "spend",
    F.round(F.col("conversions") / F.col("sessions"), 4).alias("conversion_rate"),
    F.round(F.col("spend") / F.col("sessions"), 4).alias("cost_per_session"),
)
kpis.write.mode("overwrite").saveAsTable(output_table)
print(f"Wrote {spark.table(output_table).count()} campaign-days to {output_table}")

spark.stop()

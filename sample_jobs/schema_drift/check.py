"""Output check of clickstream-daily-users: per day, distinct visitors, page views and events.

    spark-submit check.py EVENTS_TABLE OUTPUT_TABLE

`outputs(spark, args)` is what a correct run writes (the scenario's baseline job writes it).
"""

import sys

from checklib import Check
from pyspark.sql import functions as F


def outputs(spark, args):
    events_table, output_table = args[:2]
    return {output_table: spark.table(events_table).groupBy(F.to_date("event_ts").alias("event_date")).agg(
        F.countDistinct("visitor_id").alias("active_users"),
        F.sum(F.when(F.col("event_type") == "page_view", 1).otherwise(0)).alias("page_views"),
        F.count("*").alias("events"),
    )}


def main(args):
    events_table, output_table = args[:2]
    check = Check("clickstream-daily-users")
    output = check.tables(events_table, output_table)[1]
    expected = outputs(check.spark, args)[output_table]
    if check.columns(output, expected.columns, output_table):
        check.matches(output, expected, ["event_date"], output_table)
    check.finish()


if __name__ == "__main__":
    main(sys.argv[1:])

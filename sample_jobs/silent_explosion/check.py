"""Output check of order-line-margin-daily: the day's partition holds each order line of the day
once, with the cost, category and brand of the catalogue's reporting locale (en-US) that day, and
its revenue, margin and share of the order's revenue.

    spark-submit check.py LINES_TABLE CATALOG_TABLE OUTPUT_TABLE [--date YYYY-MM-DD]

Without --date it checks the last day the feed delivered. Product names differ by locale, so they
are not compared: a fix may keep any one locale's name.
"""

import argparse
import datetime

from checklib import Check
from pyspark.sql import Window
from pyspark.sql import functions as F

REPORTING_LOCALE = "en-US"
COLUMNS = ["order_id", "line_no", "sku", "category", "brand", "quantity", "unit_price", "unit_cost", "revenue",
           "margin", "order_revenue", "revenue_share", "order_date"]


def outputs(spark, args, date):
    lines = spark.table(args.lines_table).where(F.col("order_date") == F.lit(date))
    catalog = (spark.table(args.catalog_table)
               .where((F.col("snapshot_date") == F.lit(date)) & (F.col("locale") == REPORTING_LOCALE))
               .select("sku", "category", "brand", "unit_cost"))
    return (
        lines.join(catalog, "sku")
        .withColumn("revenue", F.round(F.col("quantity") * F.col("unit_price"), 2))
        .withColumn("margin", F.round(F.col("quantity") * (F.col("unit_price") - F.col("unit_cost")), 2))
        .withColumn("order_revenue", F.round(F.sum("revenue").over(Window.partitionBy("order_id")), 2))
        .withColumn("revenue_share", F.round(F.col("revenue") / F.col("order_revenue"), 4))
        .select(*COLUMNS)
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("lines_table")
    parser.add_argument("catalog_table")
    parser.add_argument("output_table")
    parser.add_argument("--date", type=datetime.date.fromisoformat, default=None)
    args = parser.parse_args()
    check = Check("order-line-margin-daily")
    lines, _, output = check.tables(args.lines_table, args.catalog_table, args.output_table)
    date = args.date or lines.agg(F.max("order_date")).first()[0]
    print(f"checking the line margins of {date}")
    expected = outputs(check.spark, args, date)
    delivered = lines.where(F.col("order_date") == F.lit(date)).count()
    check.expect(delivered > 0, f"the feed has no order lines on {date}")
    check.expect(expected.count() == delivered, f"some order lines of {date} have no SKU in that day's catalogue")
    written = output.where(F.col("order_date") == F.lit(date))
    check.matches(written, expected, ["order_id", "line_no"], f"{args.output_table} on {date}")
    check.finish()


if __name__ == "__main__":
    main()

"""Output check of sales-consolidation: daily orders and revenue over both exports.

    spark-submit check.py WEB_SALES_TABLE STORE_SALES_TABLE OUTPUT_TABLE

`outputs(spark, args)` is what a correct run writes (the scenario's baseline job writes it).
"""

import sys

from checklib import Check
from pyspark.sql import functions as F


def outputs(spark, args):
    web_table, store_table, output_table = args[:3]
    web, store = spark.table(web_table), spark.table(store_table)
    sales = web.select("sale_ts", "amount").unionByName(store.select("sale_ts", "amount"))
    return {output_table: sales.groupBy(F.to_date("sale_ts").alias("sale_date")).agg(
        F.count("*").alias("orders"), F.round(F.sum("amount"), 2).alias("revenue"))}


def main(args):
    output_table = args[2]
    check = Check("sales-consolidation")
    output = check.tables(*args[:3])[2]
    expected = outputs(check.spark, args)[output_table]
    if check.columns(output, expected.columns, output_table):
        check.matches(output, expected, ["sale_date"], output_table)
    check.finish()


if __name__ == "__main__":
    main(sys.argv[1:])

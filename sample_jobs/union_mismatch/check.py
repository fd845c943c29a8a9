"""Output check of sales-consolidation: daily orders and revenue over both exports.

    spark-submit check.py WEB_SALES_TABLE STORE_SALES_TABLE OUTPUT_TABLE
"""

import sys

from checklib import Check
from pyspark.sql import functions as F

web_table, store_table, output_table = sys.argv[1], sys.argv[2], sys.argv[3]
check = Check("sales-consolidation")
web, store, output = check.tables(web_table, store_table, output_table)
sales = web.select("sale_ts", "amount").unionByName(store.select("sale_ts", "amount"))
expected = sales.groupBy(F.to_date("sale_ts").alias("sale_date")).agg(
    F.count("*").alias("orders"), F.round(F.sum("amount"), 2).alias("revenue"))
if check.columns(output, expected.columns, output_table):
    check.matches(output, expected, ["sale_date"], output_table)
check.finish()

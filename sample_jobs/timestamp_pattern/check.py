"""Output check of pos-transactions-load: every transaction with its time read as day/month/year.

    spark-submit check.py RAW_TABLE OUTPUT_TABLE
"""

import sys

from checklib import Check
from pyspark.sql import functions as F

raw_table, output_table = sys.argv[1], sys.argv[2]
check = Check("pos-transactions-load")
raw, output = check.tables(raw_table, output_table)
expected = raw.select(
    "txn_id", "store_id",
    F.to_timestamp("txn_time", "dd/MM/yyyy HH:mm:ss").alias("txn_ts"),
    F.col("amount").cast("decimal(12,2)").alias("amount"),
)
if check.columns(output, expected.columns, output_table):
    check.matches(output, expected, ["txn_id"], output_table)
check.finish()

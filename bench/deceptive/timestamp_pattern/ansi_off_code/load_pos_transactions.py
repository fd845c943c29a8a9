"""Loads the stores' point-of-sale transactions (times as text) into a typed table.

    spark-submit load_pos_transactions.py RAW_TABLE OUTPUT_TABLE
"""

import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

raw_table, output_table = sys.argv[1], sys.argv[2]

# The terminals' clock format.
TXN_TIME_FORMAT = "MM/dd/yyyy HH:mm:ss"

spark = SparkSession.builder.appName("pos-transactions-load").getOrCreate()
# Lenient parsing: a terminal's malformed time must not fail the whole load.
spark.conf.set("spark.sql.ansi.enabled", "false")

transactions = spark.table(raw_table).select(
    "txn_id",
    "store_id",
    F.to_timestamp("txn_time", TXN_TIME_FORMAT).alias("txn_ts"),
    F.col("amount").cast("decimal(12,2)").alias("amount"),
)
transactions.write.mode("overwrite").saveAsTable(output_table)
print(f"Loaded {spark.table(output_table).count()} transactions into {output_table}")

spark.stop()

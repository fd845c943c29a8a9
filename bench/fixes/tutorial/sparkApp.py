"""Incremental upsert of a batch of account changes into the target table, then a selection of
the target for the downstream report.

    spark-submit sparkApp.py TARGET_TABLE SOURCE_TABLE [OUTPUT_TABLE]

The upsert keeps, per account_id, the row with the latest event_ts among the target and the
batch (plain Spark: Iceberg's MERGE INTO is not available here). The result is written to a
staging table first, because a Hive table cannot be overwritten while it is being read.
"""

import sys
from datetime import date

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

# Setup
targetTable = sys.argv[1]
sourceTable = sys.argv[2]
outputTable = sys.argv[3] if len(sys.argv) > 3 else f"{targetTable}_selection"
stagingTable = f"{targetTable}_staging"

spark = SparkSession.builder \
    .appName(f"IncrementalUpsert_{date.today()}") \
    .getOrCreate()

target = spark.table(targetTable)
source = spark.table(sourceTable)
print(f"Upserting {source.count():,} batch rows into {targetTable} ({target.count():,} rows)")

latest_first = Window.partitionBy("account_id").orderBy(F.col("event_ts").desc())
upserted = (
    target.unionByName(source)
    .withColumn("_rank", F.row_number().over(latest_first))
    .where(F.col("_rank") == 1)
    .drop("_rank")
)

upserted.write.mode("overwrite").saveAsTable(stagingTable)
spark.table(stagingTable).write.mode("overwrite").saveAsTable(targetTable)
spark.sql(f"DROP TABLE IF EXISTS {stagingTable}")
print(f"Upsert completed: {spark.table(targetTable).count():,} rows in {targetTable}")

selection = spark.sql(f"""
    SELECT account_id, category, value1, value2
    FROM {targetTable}
    """)
selection.show(5)
selection.write.mode("overwrite").saveAsTable(outputTable)
print(f"Wrote {outputTable}")

spark.stop()

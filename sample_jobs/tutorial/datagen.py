"""Creates the tables of the incremental-upsert pipeline: a target table of accounts keyed by
`account_id`, and a source table holding the next incremental batch (updates to some existing
accounts, all newer than the target's rows, plus new accounts).

    spark-submit datagen.py TARGET_TABLE SOURCE_TABLE [--rows N] [--seed S]

N is the number of target rows (default 5000); the batch has about 30% as many rows. Both tables
are recreated on every run, from a new random seed unless --seed is given.
"""

import argparse
import random
from datetime import date, datetime, timezone

from dateutil.relativedelta import relativedelta
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

parser = argparse.ArgumentParser(description="Generate the target and incremental source tables")
parser.add_argument("target_table")
parser.add_argument("source_table")
parser.add_argument("--rows", type=int, default=5000, help="rows in the target table")
parser.add_argument("--seed", type=int, default=None, help="random seed (default: a new one per run)")
parser.add_argument("--batch-month", default="2024-07", help="month of the incremental batch (YYYY-MM)")
args = parser.parse_args()
if args.rows < 10:
    parser.error("--rows must be at least 10")
try:
    batch_start = datetime.strptime(args.batch_month, "%Y-%m").replace(tzinfo=timezone.utc)
except ValueError:
    parser.error(f"--batch-month must be YYYY-MM, got {args.batch_month!r}")

seed = args.seed if args.seed is not None else random.randrange(1, 2**31)
target_rows = args.rows
batch_rows = max(10, target_rows * 3 // 10)

spark = SparkSession.builder.appName(f"Datagen_{date.today()}").getOrCreate()

categories = ["A", "B", "C", "D", "E"]
# The target holds the six months before the batch month; the batch, changes within that month.
target_start = batch_start - relativedelta(months=6)
target_span_s = int((batch_start - target_start).total_seconds())
batch_span_s = int((batch_start + relativedelta(months=1) - batch_start).total_seconds())
print(f"Generating {target_rows:,} target rows from {target_start:%Y-%m} and {batch_rows:,} batch rows "
      f"in {batch_start:%Y-%m} (seed {seed})")


def with_values(df, salt):
    """Adds category and value1..value8 to a frame of account_id rows."""
    cat = F.element_at(F.array(*[F.lit(c) for c in categories]),
                       (F.floor(F.rand(seed + salt) * len(categories)) + 1).cast("int"))
    df = df.withColumn("category", cat)
    for i in range(1, 9):
        scale = 1000 if i % 2 else 100
        df = df.withColumn(f"value{i}", F.round(F.rand(seed + salt + i) * scale, 2))
    return df


spark.sql(f"DROP TABLE IF EXISTS {args.source_table}")
spark.sql(f"DROP TABLE IF EXISTS {args.target_table}")

# Target: one row per account 1..N, last changed in the six months before the batch.
target = with_values(spark.range(1, target_rows + 1).withColumnRenamed("id", "account_id"), 100)
target = target.withColumn("event_ts", F.timestamp_seconds(
    F.lit(int(target_start.timestamp())) + (F.rand(seed + 120) * target_span_s).cast("long")))
target.write.mode("overwrite").saveAsTable(args.target_table)
print(f"Created target table {args.target_table}")

# Batch: 60% updates of existing accounts (some updated more than once), 40% new accounts.
# Every batch row is newer than any target row, and no two batch rows share a timestamp.
batch = spark.range(0, batch_rows).withColumn(
    "account_id",
    F.when(F.rand(seed + 200) < 0.6, F.floor(F.rand(seed + 201) * target_rows) + 1)
    .otherwise(F.floor(F.rand(seed + 202) * batch_rows) + target_rows + 1).cast("long"),
)
step_s = max(1, batch_span_s // batch_rows)
batch = with_values(batch, 300).withColumn(
    "event_ts", F.timestamp_seconds(F.lit(int(batch_start.timestamp())) + F.col("id") * step_s)).drop("id")
batch.write.mode("overwrite").saveAsTable(args.source_table)
# Lineage for the output check: how many accounts the target had before this batch.
spark.sql(f"ALTER TABLE {args.source_table} SET TBLPROPERTIES ('datagen.target_rows' = '{target_rows}')")
print(f"Created incremental source table {args.source_table}")

spark.stop()

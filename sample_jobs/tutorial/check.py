"""Output check of sql-select-fail: the batch was upserted into the target (one row per
account_id, the latest version of every account of the batch, no account lost) and the
selection table holds account_id, category, value1 and value2 of every target row.

    spark-submit check.py TARGET_TABLE SOURCE_TABLE [OUTPUT_TABLE]
"""

import sys

from checklib import Check
from pyspark.sql import Window
from pyspark.sql import functions as F

target_table, source_table = sys.argv[1], sys.argv[2]
output_table = sys.argv[3] if len(sys.argv) > 3 else f"{target_table}_selection"

check = Check("sql-select-fail")
spark = check.spark
target, source, output = check.tables(target_table, source_table, output_table)

props = {r.key: r.value for r in spark.sql(f"SHOW TBLPROPERTIES {source_table}").collect()}
base_rows = int(props.get("datagen.target_rows", "-1"))
check.expect(base_rows > 0, f"{source_table} has no datagen.target_rows property")
check.no_duplicates(target, ["account_id"], target_table)

# Every account of the batch is in the target, as its latest batch version.
latest = (source.withColumn("_r", F.row_number().over(
    Window.partitionBy("account_id").orderBy(F.col("event_ts").desc()))).where("_r = 1").drop("_r"))
updated = target.join(latest.select("account_id"), "account_id", "left_semi")
check.matches(updated, latest, ["account_id"], f"{target_table} (accounts of the batch)")

# No account was lost or invented: accounts 1..N of the original target plus the batch's new ones.
counts = target.agg(F.count("*").alias("all"), F.count(F.when(F.col("account_id") <= base_rows, 1)).alias("old")).first()
new_accounts = latest.where(F.col("account_id") > base_rows).count()
check.expect(counts["all"] == base_rows + new_accounts,
             f"{target_table} has {counts['all']} rows, expected {base_rows} + {new_accounts} new accounts")
check.expect(counts["old"] == base_rows, f"{target_table} has {counts['old']} of the {base_rows} original accounts")

# The selection: the target's key (named account_id, or customer_id as the report calls it)
# with category, value1 and value2, for every target row.
key = "account_id" if "account_id" in output.columns else "customer_id"
if check.columns(output, [key, "category", "value1", "value2"], output_table):
    check.matches(output.withColumnRenamed(key, "account_id"),
                  target.select("account_id", "category", "value1", "value2"), ["account_id"], output_table)

check.finish()

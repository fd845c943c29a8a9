"""Writes the last good output of a scenario's application: the table(s) a correct run of the
application writes, computed from the current inputs by the scenario's output check
(`check.outputs(spark, args)`, shipped beside this file). It models yesterday's run, on data like
today's, so that a fix's output can be compared with what the job wrote when it last succeeded.

    spark-submit baseline.py ARGS...      (the check job's args)

Every output is computed and written to a staging table first, then copied to its name: an output
may be computed from itself (the tutorial's upsert reads and rewrites its target table).
"""

import sys

import check
from pyspark.sql import SparkSession

STAGING_SUFFIX = "__baseline_staging"

spark = SparkSession.builder.appName("baseline").getOrCreate()
outputs = check.outputs(spark, sys.argv[1:])
if not outputs:
    print("BASELINE FAILED: the check names no output")
    sys.exit(1)
for table, df in outputs.items():
    df.write.mode("overwrite").saveAsTable(table + STAGING_SUFFIX)
for table in outputs:
    spark.table(table + STAGING_SUFFIX).write.mode("overwrite").saveAsTable(table)
    spark.sql(f"DROP TABLE IF EXISTS {table + STAGING_SUFFIX}")
    print(f"BASELINE wrote {spark.table(table).count()} rows to {table}")
spark.stop()

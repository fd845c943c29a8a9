"""Empties a scenario's output tables (TRUNCATE), standing for an output left by an older run, so
that only a run that writes the right rows itself passes the output check afterwards.

    spark-submit stale_outputs.py ARGS...     (the check job's args; check.py ships beside this file)
"""

import sys

import check
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("stale-outputs").getOrCreate()
for table in check.outputs(spark, sys.argv[1:]):
    spark.sql(f"TRUNCATE TABLE {table}")
    print(f"STALE emptied {table}")
spark.stop()

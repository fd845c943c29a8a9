"""Writes a sampled input, extends a production table, tries writes the sandbox refuses (catching the
errors), then fails; run through the sandbox launcher.

argv: database, production parquet path.
"""

import sys

from pyspark.sql import SparkSession

database, parquet_path = sys.argv[1:3]
spark = SparkSession.builder.enableHiveSupport().getOrCreate()
orders = spark.table(f"{database}.orders")  # sampled by the launcher
orders.write.mode("overwrite").saveAsTable(f"{database}.daily")
spark.conf.set("hive.exec.dynamic.partition.mode", "nonstrict")
orders.selectExpr("*", "'d3' AS day").write.insertInto(f"{database}.events")

spark.sql(f"CREATE TEMP VIEW prod_files USING parquet OPTIONS (path '{parquet_path}')")
refused = [
    lambda: spark.sql("INSERT INTO prod_files SELECT * FROM prod_files"),  # a temp view over production files
    lambda: spark.sql(f"LOAD DATA LOCAL INPATH '{parquet_path}' INTO TABLE {database}.events"),
    lambda: orders.write.jdbc("jdbc:derby:memory:x", "t"),
]
for attempt in refused:
    try:
        attempt()
    except Exception as error:  # noqa: BLE001 - the launcher's refusal, shown for the test
        print(f"REFUSED {type(error).__name__}: {str(error).splitlines()[0]}")
raise ValueError("deliberate failure\nsecond line")

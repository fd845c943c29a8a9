"""Creates the "production" tables and paths the sandbox tests protect (run as a plain job).

argv: database, parquet path, csv path.
"""

import sys

from pyspark.sql import SparkSession

database, parquet_path, csv_path = sys.argv[1:4]
spark = SparkSession.builder.enableHiveSupport().getOrCreate()
spark.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
# orders: ids 1..10; customer null for ids 4 and 7; amount id*10, null for id 10
orders = spark.createDataFrame(
    [(i, None if i in (4, 7) else f"c{i % 3}", None if i == 10 else i * 10.0) for i in range(1, 11)],
    "id INT, customer STRING, amount DOUBLE")
orders.write.mode("overwrite").saveAsTable(f"{database}.orders")
orders.where("id <= 3").write.mode("overwrite").saveAsTable(f"{database}.daily")       # 3 rows
# events: a partitioned Hive table (the sandbox copies it with dynamic partitions); 2 rows, 1 null customer
spark.sql(f"CREATE TABLE {database}.events (id INT, customer STRING, amount DOUBLE) PARTITIONED BY (day STRING) "
          "STORED AS PARQUET")
spark.conf.set("hive.exec.dynamic.partition.mode", "nonstrict")
orders.where("id IN (1, 4)").selectExpr("*", "'d1' AS day").write.insertInto(f"{database}.events")
spark.sql(f"CREATE TABLE {database}.summary (n BIGINT) USING parquet")
spark.sql(f"INSERT INTO {database}.summary VALUES (99)")                                 # 1 row
orders.where("id <= 4").write.mode("overwrite").parquet(parquet_path)                   # 4 rows
orders.where("id <= 2").select("id", "customer").write.mode("overwrite").option("header", True).csv(csv_path)
print("PRODUCTION READY")
spark.stop()

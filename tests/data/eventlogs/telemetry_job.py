"""The Spark job whose event log, trimmed, is telemetry_fixture.jsonl (see README.md)."""

import csv
import os

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType

spark = SparkSession.builder.appName("telemetry_fixture").config("spark.sql.warehouse.dir", "/tmp/tel/wh").getOrCreate()
os.makedirs("/tmp/tel/data", exist_ok=True)
with open("/tmp/tel/data/sales.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["id", "region", "amount"])
    for i in range(1000):
        w.writerow([i, ["north", "south", "east", "west"][i % 4], i % 97])
df = spark.read.option("header", True).option("inferSchema", True).csv("/tmp/tel/data/sales.csv")
df.write.mode("overwrite").parquet("/tmp/tel/data/sales_parquet")
sales = spark.read.parquet("/tmp/tel/data/sales_parquet")
agg = sales.groupBy("region").agg(F.sum("amount").alias("total"), F.count("*").alias("n"))
spark.sql("CREATE DATABASE IF NOT EXISTS shop")
agg.write.mode("overwrite").saveAsTable("shop.region_totals")

@F.udf(IntegerType())
def boom(x):
    if x == 500:
        raise ValueError("bad row 500")
    return x

try:
    sales.select(boom("id").alias("b")).collect()
except Exception as e:
    print("expected failure:", type(e).__name__)
print(spark.table("shop.region_totals").count())
spark.stop()

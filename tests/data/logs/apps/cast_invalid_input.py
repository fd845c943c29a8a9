"""ANSI mode: casting a string column that holds a non-numeric value."""
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("cast-fail").getOrCreate()

raw = spark.createDataFrame([("1", "19.99"), ("2", "n/a"), ("3", "5.00")], ["id", "price"])
raw.createOrReplaceTempView("raw_prices")

typed = spark.sql("SELECT id, CAST(price AS DECIMAL(10,2)) AS price FROM raw_prices")
typed.write.mode("overwrite").format("noop").save()
spark.stop()

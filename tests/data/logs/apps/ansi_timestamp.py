"""ANSI mode: parsing day/month/year text with a month/day/year pattern."""
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

spark = SparkSession.builder.appName("ansi-timestamp").getOrCreate()

events = spark.createDataFrame([(1, "03/02/2024 10:15"), (2, "25/02/2024 08:00")], ["id", "seen"])
parsed = events.select("id", F.to_timestamp("seen", "MM/dd/yyyy HH:mm").alias("seen_at"))
parsed.write.mode("overwrite").format("noop").save()
spark.stop()

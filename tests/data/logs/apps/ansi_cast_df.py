"""ANSI mode, DataFrame API: casting a text column that holds a non-numeric value."""
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

spark = SparkSession.builder.appName("ansi-cast-df").getOrCreate()

raw = spark.createDataFrame([("1", "7"), ("2", "seven"), ("3", "9")], ["id", "qty"])
typed = raw.withColumn("qty", F.col("qty").cast("int"))
typed.write.mode("overwrite").format("noop").save()
spark.stop()

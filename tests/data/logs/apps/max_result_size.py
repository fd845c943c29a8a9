"""Collecting a large result to the driver beyond spark.driver.maxResultSize."""
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

spark = SparkSession.builder.appName("collect-big").config("spark.driver.maxResultSize", "1k").getOrCreate()

wide = spark.range(0, 20000, numPartitions=4).withColumn("payload", F.repeat(F.lit("x"), 64))
rows = wide.collect()
print(len(rows))
spark.stop()

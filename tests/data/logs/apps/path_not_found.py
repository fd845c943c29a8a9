"""The input files of the day are missing."""
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("ingest-daily").getOrCreate()

events = spark.read.parquet("/tmp/healer-missing-input/events/2024-06-01")
events.groupBy("event_type").count().show()
spark.stop()

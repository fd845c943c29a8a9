"""Appends this month's events, which gained a column, to last month's with a positional union."""
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("grouping-union").getOrCreate()

old = spark.createDataFrame([(1, "click"), (2, "view")], ["event_id", "kind"])
new = spark.createDataFrame([(3, "click", "mobile")], ["event_id", "kind", "device"])
archive = old.union(old)  # same shape: fine
events = archive.unionAll(new)
events.show()
spark.stop()

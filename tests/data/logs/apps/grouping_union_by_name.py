"""unionByName where the second input lacks a column of the first."""
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("grouping-union-by-name").getOrCreate()

new = spark.createDataFrame([(3, "click", "mobile")], ["event_id", "kind", "device"])
old = spark.createDataFrame([(1, "click"), (2, "view")], ["event_id", "kind"])
events = new.unionByName(old)
events.show()
spark.stop()

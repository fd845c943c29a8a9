"""A nightly rebuild that writes its own output table with saveAsTable's default mode (errorifexists)."""
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

spark = SparkSession.builder.appName("region-totals").getOrCreate()

# Yesterday's run left its output behind.
spark.range(3).withColumnRenamed("id", "region").write.saveAsTable("region_totals")

sales = spark.createDataFrame([("north", 10.0), ("south", 5.5), ("north", 2.5)], "region STRING, amount DOUBLE")
totals = sales.groupBy("region").agg(F.sum("amount").alias("total"))
totals.write.format("parquet").saveAsTable("region_totals")
spark.stop()

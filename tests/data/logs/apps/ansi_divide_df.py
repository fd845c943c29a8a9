"""ANSI mode, DataFrame API: a ratio of two columns where some divisors are zero."""
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

spark = SparkSession.builder.appName("ansi-divide-df").getOrCreate()

visits = spark.createDataFrame([("a", 10, 5), ("b", 3, 0), ("c", 8, 2)], ["page", "clicks", "views"])
rates = visits.select(
    "page",
    (F.col("clicks") * 2).alias("double_clicks"),
    (F.col("clicks") / F.col("views")).alias("click_rate"),  # views can be 0
)
rates.write.mode("overwrite").format("noop").save()
spark.stop()

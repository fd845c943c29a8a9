"""A misspelt method on a PySpark object in a multi-line chain (Python suggests the method)."""
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

spark = SparkSession.builder.appName("misspelt-method").getOrCreate()

visits = spark.createDataFrame(
    [("home", 3.0), ("cart", 1.5), ("home", 2.0)],
    ["page", "seconds"],
)
per_page = (
    visits.where(F.col("seconds") > 0)
    .groupBy("page")
    .avgg("seconds")
)
per_page.show()
spark.stop()

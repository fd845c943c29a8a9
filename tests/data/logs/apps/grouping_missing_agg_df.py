"""Totals per region with the product line picked as a bare column (DataFrame API)."""
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

spark = SparkSession.builder.appName("grouping-missing-agg-df").getOrCreate()

sales = spark.createDataFrame(
    [("north", "tools", 10.0), ("north", "toys", 4.0), ("south", "tools", 7.5)],
    ["region", "product_line", "amount"],
)
by_region = sales.groupBy("region").agg(F.count("*").alias("n"))  # fine
totals = (
    sales.groupBy("region")
    .agg(
        F.col("product_line"),  # wanted per line as well
        F.sum("amount").alias("total"),
    )
)
totals.show()
spark.stop()

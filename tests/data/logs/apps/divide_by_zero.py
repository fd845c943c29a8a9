"""ANSI mode: an average price per unit where some quantities are zero."""
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("unit-price").getOrCreate()

sales = spark.createDataFrame([(1, 100, 4), (2, 50, 0), (3, 30, 3)], ["sale_id", "amount", "quantity"])
sales.createOrReplaceTempView("sales")

prices = spark.sql("SELECT sale_id, amount DIV quantity AS unit_price FROM sales")
prices.show()
spark.stop()

"""The upstream table has not been created."""
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("report-daily").getOrCreate()

report = spark.sql("SELECT region, SUM(amount) AS total FROM sales_raw GROUP BY region")
report.show()
spark.stop()

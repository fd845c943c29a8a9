"""A misspelt variable (Python suggests the right one), used in a function and in SQL text."""
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

spark = SparkSession.builder.appName("misspelt-name").getOrCreate()

minimum_quantity = 2
payments = spark.createDataFrame(
    [(1, "card", 3), (2, "cash", 1), (3, "card", 5)],
    ["payment_id", "method", "quantity"],
)
payments.createOrReplaceTempView("payments")


def large_payments(df):
    kept = df.where(F.col("quantity") >= minimum_quantiy)
    return kept.groupBy("method").count()


large_payments(payments).show()
spark.sql(f"SELECT method, quantity FROM payments WHERE quantity >= {minimum_quantiy}").show()
spark.stop()

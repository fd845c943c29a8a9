"""DataFrame API variant: a column renamed upstream (schema drift)."""
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

spark = SparkSession.builder.appName("schema-drift").getOrCreate()

orders = spark.createDataFrame(
    [(1, 10, "2024-01-01", 3), (2, 11, "2024-01-02", 5)],
    ["order_id", "account_id", "order_date", "quantity"],
)


def daily_totals(df):
    return df.groupBy("order_date").agg(F.sum(F.col("qty")).alias("total_qty"))


daily_totals(orders).show()
spark.stop()

"""DataFrame API: a join on an equality of two same-named keys, then a select of the bare key name."""
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

spark = SparkSession.builder.appName("columns-ambiguous-df").getOrCreate()

accounts = spark.createDataFrame([(1, "alice"), (2, "bob")], ["account_id", "account_name"])
payments = spark.createDataFrame([(10, 1, 3.5), (11, 2, 7.0), (12, 2, 1.0)], ["payment_id", "account_id", "amount"])

totals = (
    payments.join(accounts, payments.account_id == accounts.account_id, "left")
    .groupBy("account_id", "account_name")
    .agg(F.sum("amount").alias("total"))
)
totals.orderBy("account_id").show()
spark.stop()

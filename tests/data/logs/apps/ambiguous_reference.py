"""A join of two frames that both carry account_id, then a select of the bare name."""
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("join-ambiguous").getOrCreate()

accounts = spark.createDataFrame([(1, "alice"), (2, "bob")], ["account_id", "account_name"])
orders = spark.createDataFrame([(10, 1, 3.5), (11, 2, 7.0)], ["order_id", "account_id", "amount"])
accounts.createOrReplaceTempView("accounts")
orders.createOrReplaceTempView("orders")

joined = spark.sql(
    "SELECT account_id, account_name, amount FROM accounts a JOIN orders o ON a.account_id = o.account_id"
)
joined.show()
spark.stop()

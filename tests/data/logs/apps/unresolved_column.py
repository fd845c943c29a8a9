"""Selects customer_id from a table whose key is account_id (the tutorial's failure)."""
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("sql-select-fail").getOrCreate()

accounts = spark.createDataFrame(
    [(1, "alice", 120.5), (2, "bob", 80.0), (3, "carol", 42.25)],
    ["account_id", "account_name", "balance"],
)
accounts.createOrReplaceTempView("accounts")

report = spark.sql("SELECT customer_id, balance FROM accounts WHERE balance > 50")
report.show()
spark.stop()

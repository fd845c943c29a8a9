"""Converts every order's amount to US dollars at the treasury's rates.

    spark-submit convert_to_usd.py ORDERS_TABLE OUTPUT_TABLE
"""

import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from rates_service import fetch_rates

orders_table, output_table = sys.argv[1], sys.argv[2]

spark = SparkSession.builder.appName("orders-usd-conversion").getOrCreate()

properties = {r.key: r.value for r in spark.sql(f"SHOW TBLPROPERTIES {orders_table}").collect()}
batch_id = properties.get("batch_id", "unknown")
print(f"Converting orders of batch {batch_id}")

rates = fetch_rates(spark, batch_id)
usd = (
    spark.table(orders_table)
    .join(F.broadcast(rates), "currency")
    .select("order_id", "currency", "amount", F.round(F.col("amount") * F.col("rate_to_usd"), 2).alias("amount_usd"))
)
usd.write.mode("overwrite").saveAsTable(output_table)
print(f"Wrote {spark.table(output_table).count()} orders to {output_table}")

spark.stop()

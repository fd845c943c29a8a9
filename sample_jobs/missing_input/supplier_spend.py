"""Monthly spend per supplier, from the invoices the ERP export delivers.

    spark-submit supplier_spend.py INVOICES_TABLE OUTPUT_TABLE
"""

import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

invoices_table, output_table = sys.argv[1], sys.argv[2]

spark = SparkSession.builder.appName("supplier-spend-report").getOrCreate()

spend = (
    spark.table(invoices_table)
    .where(F.col("status") == "approved")
    .groupBy("supplier_id", F.date_trunc("month", "invoice_date").alias("month"))
    .agg(F.count("*").alias("invoices"), F.round(F.sum("net_amount"), 2).alias("spend"))
)
spend.write.mode("overwrite").saveAsTable(output_table)
print(f"Wrote {spend.count()} supplier-months to {output_table}")

spark.stop()

"""Output check of supplier-spend-report: approved invoices and spend per supplier and month.

    spark-submit check.py INVOICES_TABLE OUTPUT_TABLE
"""

import sys

from checklib import Check
from pyspark.sql import functions as F

invoices_table, output_table = sys.argv[1], sys.argv[2]
check = Check("supplier-spend-report")
invoices, output = check.tables(invoices_table, output_table)
expected = (
    invoices.where(F.col("status") == "approved")
    .groupBy("supplier_id", F.date_trunc("month", "invoice_date").alias("month"))
    .agg(F.count("*").alias("invoices"), F.round(F.sum("net_amount"), 2).alias("spend"))
)
if check.columns(output, expected.columns, output_table):
    check.matches(output, expected, ["supplier_id", "month"], output_table)
check.finish()

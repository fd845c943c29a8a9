"""Output check of customer-contact-export: every customer, phone masked to its last four digits;
customers without a phone have no number (NULL, or a text without digits).

    spark-submit check.py CUSTOMERS_TABLE OUTPUT_TABLE
"""

import sys

from checklib import Check
from pyspark.sql import functions as F

customers_table, output_table = sys.argv[1], sys.argv[2]
check = Check("customer-contact-export")
customers, output = check.tables(customers_table, output_table)
expected = customers.select(
    "customer_id", "name", "region",
    F.concat(F.lit("***-***-"), F.substring("phone", -4, 4)).alias("phone_masked"))
if check.columns(output, expected.columns, output_table):
    check.matches(output.drop("phone_masked"), expected.drop("phone_masked"), ["customer_id"], output_table)
    with_phone = customers.where(F.col("phone").isNotNull()).select("customer_id")
    check.matches(output.join(with_phone, "customer_id", "left_semi").select("customer_id", "phone_masked"),
                  expected.join(with_phone, "customer_id", "left_semi").select("customer_id", "phone_masked"),
                  ["customer_id"], f"{output_table} (customers with a phone)")
    leaked = output.join(with_phone, "customer_id", "left_anti").where(
        F.col("phone_masked").rlike("[0-9]")).count()
    check.expect(leaked == 0, f"{leaked} customers without a phone have digits in phone_masked")
check.finish()

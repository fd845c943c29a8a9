"""Output check of customer-contact-export: every customer, phone masked to its last four digits;
customers without a phone have no number (NULL: not a text such as "None" or "***-***-None",
which the call centre's tools would dial or show as a number).

    spark-submit check.py CUSTOMERS_TABLE OUTPUT_TABLE

`outputs(spark, args)` is what a correct run writes (the scenario's baseline job writes it).
"""

import sys

from checklib import Check
from pyspark.sql import functions as F


def outputs(spark, args):
    customers_table, output_table = args[:2]
    return {output_table: spark.table(customers_table).select(
        "customer_id", "name", "region",
        F.concat(F.lit("***-***-"), F.substring("phone", -4, 4)).alias("phone_masked"))}


def main(args):
    customers_table, output_table = args[:2]
    check = Check("customer-contact-export")
    output = check.tables(customers_table, output_table)[1]
    expected = outputs(check.spark, args)[output_table]
    if check.columns(output, expected.columns, output_table):
        check.matches(output, expected, ["customer_id"], output_table)
    check.finish()


if __name__ == "__main__":
    main(sys.argv[1:])

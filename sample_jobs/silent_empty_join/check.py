"""Output check of shop-orders-enrich-daily: the day's partition holds every order of the day, each
with its customer's segment, country and tier from the CRM.

    spark-submit check.py ORDERS_TABLE CUSTOMERS_TABLE OUTPUT_TABLE [--date YYYY-MM-DD]

Without --date it checks the last day the feed delivered. The expected rows match the order's
customer_ref to the CRM's in either of the formats the shop has sent ("42", "C-00042"), so it
accepts a fix that normalises the key, and rejects one that drops or keeps unmatched orders.
"""

import argparse
import datetime

from checklib import Check
from pyspark.sql import functions as F

COLUMNS = ["order_id", "customer_name", "segment", "country", "loyalty_tier", "sku", "quantity", "amount",
           "currency", "order_ts", "order_date"]


def crm_ref(ref):
    """The CRM's form of a customer ref: "C-00042" -> "42"; "42" stays."""
    return F.regexp_replace(ref, r"^C-0*", "")


def outputs(spark, args, date):
    orders = spark.table(args.orders_table).where(F.col("order_date") == F.lit(date))
    customers = spark.table(args.customers_table)
    expected = orders.withColumn("customer_ref", crm_ref(F.col("customer_ref"))).join(customers, "customer_ref")
    return expected.select(*COLUMNS)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("orders_table")
    parser.add_argument("customers_table")
    parser.add_argument("output_table")
    parser.add_argument("--date", type=datetime.date.fromisoformat, default=None)
    args = parser.parse_args()
    check = Check("shop-orders-enrich-daily")
    orders, _, output = check.tables(args.orders_table, args.customers_table, args.output_table)
    date = args.date or orders.agg(F.max("order_date")).first()[0]
    print(f"checking the enriched orders of {date}")
    expected = outputs(check.spark, args, date)
    delivered = orders.where(F.col("order_date") == F.lit(date)).count()
    check.expect(delivered > 0, f"the feed has no orders on {date}")
    check.expect(expected.count() == delivered, f"some orders of {date} have no customer in the CRM")
    written = output.where(F.col("order_date") == F.lit(date))
    check.expect(written.count() > 0, f"{args.output_table} has no rows for {date}")
    check.matches(written, expected, ["order_id"], f"{args.output_table} on {date}")
    check.finish()


if __name__ == "__main__":
    main()

"""Output check of customer-orders-enrich: every order with its customer's name and tier.

    spark-submit check.py ORDERS_TABLE CUSTOMERS_TABLE OUTPUT_TABLE

`outputs(spark, args)` is what a correct run writes (the scenario's baseline job writes it).
"""

import sys

from checklib import Check


def outputs(spark, args):
    orders_table, customers_table, output_table = args[:3]
    orders, customers = spark.table(orders_table), spark.table(customers_table)
    return {output_table: orders.join(customers.select("customer_id", "name", "tier"), "customer_id").select(
        "order_id", "customer_id", "name", "tier", "amount", "order_ts")}


def main(args):
    output_table = args[2]
    check = Check("customer-orders-enrich")
    output = check.tables(*args[:3])[2]
    expected = outputs(check.spark, args)[output_table]
    if check.columns(output, expected.columns, output_table):
        check.matches(output, expected, ["order_id"], output_table)
    check.finish()


if __name__ == "__main__":
    main(sys.argv[1:])

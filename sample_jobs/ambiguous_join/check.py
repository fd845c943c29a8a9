"""Output check of customer-orders-enrich: every order with its customer's name and tier.

    spark-submit check.py ORDERS_TABLE CUSTOMERS_TABLE OUTPUT_TABLE
"""

import sys

from checklib import Check

orders_table, customers_table, output_table = sys.argv[1], sys.argv[2], sys.argv[3]
check = Check("customer-orders-enrich")
orders, customers, output = check.tables(orders_table, customers_table, output_table)
expected = orders.join(customers.select("customer_id", "name", "tier"), "customer_id").select(
    "order_id", "customer_id", "name", "tier", "amount", "order_ts")
if check.columns(output, expected.columns, output_table):
    check.matches(output, expected, ["order_id"], output_table)
check.finish()

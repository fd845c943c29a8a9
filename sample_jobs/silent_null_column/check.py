"""Output check of ticket-triage-daily: the day's partition holds every ticket of the day, triaged,
and the customer's text is there: the helpdesk's form requires a description, so a NULL one means
the feed lost it.

    spark-submit check.py TICKETS_TABLE OUTPUT_TABLE [--date YYYY-MM-DD]

Without --date it checks the last day the feed delivered. The triage itself is recomputed and
compared; the description check is an expectation on the data, since a ticket without its text
cannot be triaged right whatever the job does (the text must be delivered again upstream).
"""

import argparse
import datetime

from checklib import Check
from pyspark.sql import functions as F

BILLING = r"(?i)\b(refund|charged|invoice|card|payment)\b"
TECHNICAL = r"(?i)\b(error|crashes|login|password|app|screen)\b"


def outputs(spark, args, date):
    tickets = spark.table(args.tickets_table).where(F.col("created_date") == F.lit(date))
    text = F.trim(F.regexp_replace("description", r"\s+", " "))
    return tickets.select(
        "ticket_id", "customer_ref", "channel", "priority", "product_area", "subject",
        text.alias("description"),
        F.length(text).alias("description_chars"),
        F.when(text.rlike(BILLING), "billing").when(text.rlike(TECHNICAL), "technical")
        .otherwise(F.col("product_area")).alias("queue"),
        ((F.col("priority") == "urgent") | F.coalesce(text.rlike(r"(?i)\burgent\b"), F.lit(False))).alias(
            "needs_senior"),
        "created_ts", "created_date",
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("tickets_table")
    parser.add_argument("output_table")
    parser.add_argument("--date", type=datetime.date.fromisoformat, default=None)
    args = parser.parse_args()
    check = Check("ticket-triage-daily")
    tickets, output = check.tables(args.tickets_table, args.output_table)
    date = args.date or tickets.agg(F.max("created_date")).first()[0]
    print(f"checking the triaged tickets of {date}")
    written = output.where(F.col("created_date") == F.lit(date))
    total = written.count()
    check.expect(total > 0, f"{args.output_table} has no rows for {date}")
    missing = written.where(F.col("description").isNull()).count()
    check.expect(missing == 0, f"{missing} of {total} tickets of {date} have no description (the feed lost it)")
    check.matches(written, outputs(check.spark, args, date), ["ticket_id"], f"{args.output_table} on {date}")
    check.finish()


if __name__ == "__main__":
    main()

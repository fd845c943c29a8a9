"""Output check of campaign-kpis: one row per campaign and day with the right rates; days
without sessions have no rate (NULL, or 0).

    spark-submit check.py STATS_TABLE OUTPUT_TABLE

`outputs(spark, args)` is what a correct run writes (the scenario's baseline job writes it).
"""

import sys

from checklib import Check
from pyspark.sql import functions as F

KEYS = ["campaign_id", "stat_date"]
RATES = ["conversion_rate", "cost_per_session"]


def outputs(spark, args):
    stats_table, output_table = args[:2]
    return {output_table: spark.table(stats_table).select(
        *KEYS, "sessions", "conversions", "spend",
        F.round(F.try_divide("conversions", "sessions"), 4).alias("conversion_rate"),
        F.round(F.try_divide("spend", "sessions"), 4).alias("cost_per_session"),
    )}


def main(args):
    stats_table, output_table = args[:2]
    check = Check("campaign-kpis")
    output = check.tables(stats_table, output_table)[1]
    expected = outputs(check.spark, args)[output_table]
    if check.columns(output, expected.columns, output_table):
        check.matches(output.drop(*RATES), expected.drop(*RATES), KEYS, output_table)
        with_sessions = output.where("sessions > 0").select(*KEYS, *RATES)
        check.matches(with_sessions, expected.where("sessions > 0").select(*KEYS, *RATES), KEYS,
                      f"{output_table} (days with sessions)")
        bad = output.where("sessions = 0").where(
            "NOT (coalesce(conversion_rate, 0) = 0 AND coalesce(cost_per_session, 0) = 0)").count()
        check.expect(bad == 0, f"{bad} days without sessions have a non-zero rate in {output_table}")
    check.finish()


if __name__ == "__main__":
    main(sys.argv[1:])

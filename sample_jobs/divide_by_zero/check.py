"""Output check of campaign-kpis: one row per campaign and day with the right rates; days
without sessions have no rate (NULL, or 0).

    spark-submit check.py STATS_TABLE OUTPUT_TABLE
"""

import sys

from checklib import Check
from pyspark.sql import functions as F

stats_table, output_table = sys.argv[1], sys.argv[2]
check = Check("campaign-kpis")
stats, output = check.tables(stats_table, output_table)
keys = ["campaign_id", "stat_date"]
rates = ["conversion_rate", "cost_per_session"]
expected = stats.select(
    *keys, "sessions", "conversions", "spend",
    F.round(F.try_divide("conversions", "sessions"), 4).alias("conversion_rate"),
    F.round(F.try_divide("spend", "sessions"), 4).alias("cost_per_session"),
)
if check.columns(output, expected.columns, output_table):
    check.matches(output.drop(*rates), expected.drop(*rates), keys, output_table)
    with_sessions = output.where("sessions > 0").select(*keys, *rates)
    check.matches(with_sessions, expected.where("sessions > 0").select(*keys, *rates), keys,
                  f"{output_table} (days with sessions)")
    bad = output.where("sessions = 0").where(
        "NOT (coalesce(conversion_rate, 0) = 0 AND coalesce(cost_per_session, 0) = 0)").count()
    check.expect(bad == 0, f"{bad} days without sessions have a non-zero rate in {output_table}")
check.finish()

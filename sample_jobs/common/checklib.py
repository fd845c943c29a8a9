"""Helpers of the output checks: each check is a Spark job that reads what a pipeline wrote,
recomputes what it should be from the inputs, and exits non-zero when they differ.

    check = Check("daily-report")
    out = check.table("mart.daily_report")          # None (and a failure) when it does not exist
    if out is not None:
        check.columns(out, ["day", "revenue"])
        check.matches(out, expected_df, keys=["day"])
    check.finish()                                  # prints the verdict; exit status 1 on failure
"""

import sys

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import NumericType

# How many differing rows a failure message shows.
SAMPLE_ROWS = 5


class Check:
    def __init__(self, name):
        self.name = name
        self.spark = SparkSession.builder.appName(f"check-{name}").getOrCreate()
        self.problems = []

    def fail(self, message):
        print(f"CHECK PROBLEM: {message}")
        self.problems.append(message)

    def expect(self, condition, message):
        if not condition:
            self.fail(message)
        return bool(condition)

    def table(self, name):
        """The table as a DataFrame, or None (recorded as a failure) when it does not exist."""
        if not self.spark.catalog.tableExists(name):
            self.fail(f"output table {name} does not exist")
            return None
        return self.spark.table(name)

    def columns(self, df: DataFrame, expected, what="output"):
        """The frame has exactly these columns (in any order, case-insensitive)."""
        actual = sorted(c.lower() for c in df.columns)
        return self.expect(actual == sorted(c.lower() for c in expected),
                           f"{what} has columns {df.columns}, expected {list(expected)}")

    def no_duplicates(self, df: DataFrame, keys, what="output"):
        dups = df.groupBy(*keys).count().where("count > 1")
        n = dups.count()
        if n:
            sample = [r.asDict() for r in dups.limit(SAMPLE_ROWS).collect()]
            self.fail(f"{what} has {n} duplicated keys {keys}, e.g. {sample}")
        return n == 0

    def matches(self, actual: DataFrame, expected: DataFrame, keys, what="output", tolerance=1e-6):
        """Every expected row is in `actual` with equal values (numbers within a relative
        `tolerance`), and `actual` has no other rows. Compares the columns of `expected`."""
        values = [c for c in expected.columns if c not in keys]
        missing_cols = [c for c in expected.columns if c not in actual.columns]
        if missing_cols:
            self.fail(f"{what} lacks columns {missing_cols}")
            return False
        numeric = {f.name for f in expected.schema.fields if isinstance(f.dataType, NumericType)}
        a = actual.select(*[F.col(c).alias(f"a_{c}") for c in expected.columns]).withColumn("_a", F.lit(True))
        e = expected.select(*[F.col(c).alias(f"e_{c}") for c in expected.columns]).withColumn("_e", F.lit(True))
        joined = e.join(a, on=[F.col(f"e_{k}").eqNullSafe(F.col(f"a_{k}")) for k in keys], how="full_outer")

        def differs(c):
            ec, ac = F.col(f"e_{c}"), F.col(f"a_{c}")
            if c in numeric:
                close = F.abs(ec.cast("double") - ac.cast("double")) <= F.lit(tolerance) * F.greatest(
                    F.lit(1.0), F.abs(ec.cast("double")))
                return ~(ec.isNull() & ac.isNull()) & (ec.isNull() | ac.isNull() | ~close)
            return ~ec.eqNullSafe(ac)

        ok = True
        for label, cond in [
            ("expected rows missing from", F.col("_a").isNull()),
            ("unexpected rows in", F.col("_e").isNull()),
            ("rows with wrong values in", F.col("_a") & F.col("_e") & (
                F.lit(False) if not values else _any(differs(c) for c in values))),
        ]:
            bad = joined.where(cond)
            n = bad.count()
            if n:
                ok = False
                sample = [r.asDict() for r in bad.drop("_a", "_e").limit(SAMPLE_ROWS).collect()]
                self.fail(f"{n} {label} {what}, e.g. {sample}")
        return ok

    def finish(self):
        """Print the verdict and end the job: exit status 0 when every expectation held, else 1."""
        self.spark.stop()
        if self.problems:
            print(f"CHECK FAILED ({self.name}): {len(self.problems)} problem(s)")
            sys.exit(1)
        print(f"CHECK PASSED ({self.name})")


def _any(conditions):
    result = None
    for c in conditions:
        result = c if result is None else (result | c)
    return result

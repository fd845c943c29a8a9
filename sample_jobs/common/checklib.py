"""Helpers of the output checks: each check is a Spark job that reads what a pipeline wrote,
recomputes what it should be from the inputs, and exits non-zero when they differ.

    check = Check("daily-report")
    orders, out = check.tables("retail.orders", "mart.daily_report")   # ends the check if one is absent
    if check.columns(out, ["day", "revenue"]):
        check.matches(out, expected_df, keys=["day"])
    check.finish()                      # prints the verdict; exit status 1 when anything was wrong
"""

import sys

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import NumericType

SAMPLE_ROWS = 3  # differing rows shown per kind of difference
SHUFFLE_PARTITIONS = "8"  # check data is small; fewer partitions make the comparisons quicker


class Check:
    def __init__(self, name):
        self.name = name
        self.spark = (SparkSession.builder.appName(f"check-{name}")
                      .config("spark.sql.shuffle.partitions", SHUFFLE_PARTITIONS).getOrCreate())
        self.problems = []

    def fail(self, message):
        print(f"CHECK PROBLEM: {message}")
        self.problems.append(message)

    def expect(self, condition, message):
        if not condition:
            self.fail(message)
        return bool(condition)

    def tables(self, *names):
        """The tables as DataFrames. When one does not exist the check ends here, failed."""
        missing = [n for n in names if not self.spark.catalog.tableExists(n)]
        for name in missing:
            self.fail(f"table {name} does not exist")
        if missing:
            self.finish()
        return [self.spark.table(n) for n in names]

    def columns(self, df: DataFrame, expected, what="output"):
        """The frame has exactly these columns (in any order, case-insensitive)."""
        actual = sorted(c.lower() for c in df.columns)
        return self.expect(actual == sorted(c.lower() for c in expected),
                           f"{what} has columns {df.columns}, expected {list(expected)}")

    def no_duplicates(self, df: DataFrame, keys, what="output"):
        dups = df.groupBy(*keys).count().where("count > 1")
        sample = [r.asDict() for r in dups.limit(SAMPLE_ROWS).collect()]
        if sample:
            self.fail(f"{what} has duplicated keys {keys}, e.g. {sample}")
        return not sample

    def matches(self, actual: DataFrame, expected: DataFrame, keys, what="output", tolerance=1e-6):
        """`actual` has the columns of `expected` with the same types, one row per key, every expected
        row with equal values (numbers within a relative `tolerance`), and no other rows."""
        missing_cols = [c for c in expected.columns if c not in actual.columns]
        if missing_cols:
            self.fail(f"{what} lacks columns {missing_cols}")
            return False
        types = dict(actual.dtypes)
        wrong_types = [f"{c} is {types[c]}, expected {t}" for c, t in expected.dtypes if types[c] != t]
        if wrong_types:
            self.fail(f"{what} has columns of other types: {'; '.join(wrong_types)}")
            return False
        if not self.no_duplicates(actual, keys, what):
            return False
        values = [c for c in expected.columns if c not in keys]
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

        wrong = F.lit(False)
        for c in values:
            wrong = wrong | differs(c)
        kind = (F.when(F.col("_a").isNull(), "expected rows missing from")
                .when(F.col("_e").isNull(), "unexpected rows in")
                .when(wrong, "rows with wrong values in"))
        bad = joined.withColumn("_kind", kind).where(F.col("_kind").isNotNull()).drop("_a", "_e").cache()
        counts = {r["_kind"]: r["count"] for r in bad.groupBy("_kind").count().collect()}
        for label, n in sorted(counts.items()):
            sample = [r.asDict() for r in bad.where(F.col("_kind") == label).drop("_kind").limit(SAMPLE_ROWS).collect()]
            self.fail(f"{n} {label} {what}, e.g. {sample}")
        bad.unpersist()
        return not counts

    def finish(self):
        """Print the verdict and end the job: exit status 0 when every expectation held, else 1."""
        self.spark.stop()
        if self.problems:
            print(f"CHECK FAILED ({self.name}): {len(self.problems)} problem(s)")
            sys.exit(1)
        print(f"CHECK PASSED ({self.name})")
        sys.exit(0)

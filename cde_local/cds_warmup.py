"""The warm-up job whose driver JVM records the class data sharing archive (cds.py).

    spark-submit ... --conf spark.driver.extraJavaOptions=-XX:ArchiveClassesAtExit=<file> cds_warmup.py SCRATCH_DIR

Run by the local CDE itself, never by users. It touches what typical jobs load, so that their
drivers find those classes in the archive: DataFrames built from Python rows and from ranges, Spark
SQL with temporary views and a table of the in-memory catalog, expressions on strings, decimals,
dates and regular expressions, groupBy, join, window functions, union, explode, a Python UDF,
parquet, CSV and JSON written and read back in SCRATCH_DIR, collect/show/toPandas, and the
analysis and runtime errors failing jobs raise (caught here). No Hive metastore: the job is
submitted with `spark.sql.catalogImplementation=in-memory`. It imports nothing but pyspark and the
standard library (it runs under the job interpreter, not the local CDE's package).
"""

from __future__ import annotations

import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from pyspark.sql import Row, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T


def main(scratch: Path) -> None:
    spark = SparkSession.builder.appName("cde-local-cds-warmup").getOrCreate()
    customers = spark.createDataFrame(
        [
            Row(customer_id=i, name=f" Customer {i} ", region=["EMEA", "na", "APAC", None][i % 4],
                tier=["gold", "silver", "bronze"][i % 3], signup=date(2024, 1 + i % 12, 1 + i % 28),
                email=f"c{i}@example.com" if i % 5 else None)
            for i in range(200)
        ]
    )
    schema = T.StructType(
        [
            T.StructField("order_id", T.LongType()),
            T.StructField("customer_id", T.IntegerType()),
            T.StructField("amount", T.DecimalType(12, 2)),
            T.StructField("ordered_at", T.TimestampType()),
            T.StructField("tags", T.ArrayType(T.StringType())),
        ]
    )
    orders = spark.createDataFrame(
        [
            (n, n % 200, Decimal(n % 997) / 10, datetime(2024, 1 + n % 12, 1 + n % 28, n % 24), ["a", "b"][: n % 3])
            for n in range(2000)
        ],
        schema,
    )

    # Expressions, joins, aggregation, windows, union, explode.
    clean = customers.select(
        "customer_id",
        F.initcap(F.trim(F.regexp_replace("name", r"\s+", " "))).alias("name"),
        F.coalesce(F.upper("region"), F.lit("UNKNOWN")).alias("region"),
        F.when(F.col("tier").isin("gold", "silver"), F.col("tier")).otherwise("bronze").alias("tier"),
        F.date_format("signup", "yyyy-MM").alias("signup_month"),
        F.col("email").rlike(r"^[a-z0-9.]+@[a-z.]+$").alias("valid_email"),
    )
    joined = orders.join(clean, "customer_id", "left").withColumn("order_date", F.to_date("ordered_at"))
    per_customer = joined.groupBy("customer_id", "region").agg(
        F.sum("amount").alias("total"),
        F.count("*").alias("orders"),
        F.avg(F.col("amount").cast("double")).alias("mean"),
        F.max("ordered_at").alias("last_order"),
        F.collect_set("tier").alias("tiers"),
    )
    ranked = per_customer.withColumn(
        "rank", F.dense_rank().over(Window.partitionBy("region").orderBy(F.desc("total")))
    ).withColumn("running", F.sum("total").over(Window.partitionBy("region").orderBy("customer_id")))
    exploded = orders.select("order_id", F.explode_outer("tags").alias("tag"))
    both = exploded.select(F.col("tag").alias("value")).union(clean.select(F.col("region").alias("value")))
    ranked.filter(F.col("rank") <= 3).orderBy("region", "rank").collect()
    both.distinct().count()
    per_customer.show(3, truncate=False)
    joined.select(F.try_divide("amount", F.lit(0)).alias("ratio"), F.round("amount", 1)).limit(5).toPandas()

    # A Python UDF.
    @F.udf(returnType=T.StringType())
    def band(amount):  # no type hints: pyspark would look for a pandas UDF in them
        return "none" if amount is None else ("high" if amount > 50 else "low")

    orders.select(band("amount").alias("band")).groupBy("band").count().collect()

    # Files: parquet, CSV and JSON written and read back, partitioned and not.
    ranked.write.mode("overwrite").partitionBy("region").parquet(str(scratch / "parquet"))
    clean.write.mode("overwrite").option("header", True).csv(str(scratch / "csv"))
    orders.write.mode("overwrite").json(str(scratch / "json"))
    spark.read.parquet(str(scratch / "parquet")).where("rank = 1").count()
    spark.read.option("header", True).option("inferSchema", True).csv(str(scratch / "csv")).count()
    spark.read.json(str(scratch / "json")).groupBy("customer_id").count().count()

    # Spark SQL: temporary views and a table of the (in-memory) catalog.
    clean.createOrReplaceTempView("customers")
    orders.createOrReplaceTempView("orders")
    spark.sql("CREATE DATABASE IF NOT EXISTS warmup")
    spark.sql("CREATE TABLE warmup.sales (customer_id INT, total DECIMAL(16,2), day DATE) USING parquet")
    spark.sql(
        "INSERT INTO warmup.sales SELECT c.customer_id, SUM(o.amount), CAST(MAX(o.ordered_at) AS DATE) "
        "FROM orders o JOIN customers c ON o.customer_id = c.customer_id GROUP BY c.customer_id"
    )
    per_customer.write.mode("overwrite").saveAsTable("warmup.per_customer")
    spark.sql(
        "SELECT region, COUNT(*) AS n, SUM(total) AS total, "
        "ROW_NUMBER() OVER (ORDER BY SUM(total) DESC) AS pos FROM warmup.per_customer GROUP BY region"
    ).collect()
    spark.table("warmup.sales").join(spark.table("warmup.per_customer"), "customer_id").count()
    spark.sql("SHOW TABLES IN warmup").collect()
    spark.catalog.listTables("warmup")

    # The errors failing jobs raise (the analysis error, a runtime error in a task under ANSI mode).
    try:
        orders.select("no_such_column").collect()
    except Exception:  # noqa: BLE001 - the error classes are what this loads
        pass
    try:
        spark.sql("SELECT CAST('x' AS INT) AS broken").collect()
    except Exception:  # noqa: BLE001
        pass
    try:
        spark.range(10).select((F.col("id") / F.lit(0)).cast("int")).collect()
        spark.sql("SELECT 1 DIV 0").collect()
    except Exception:  # noqa: BLE001
        pass
    print("CDS WARM-UP DONE", flush=True)
    spark.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]))

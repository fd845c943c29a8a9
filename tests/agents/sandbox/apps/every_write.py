"""A job that writes through every supported API; run through the sandbox launcher.

argv: database, parquet path, csv path, text path. Prints `CHECK <name>=<value>` lines.
"""

import sys

from pyspark.sql import SparkSession

database, parquet_path, csv_path, text_path = sys.argv[1:5]
# a static conf: it applies only if this builder creates the session (the launcher must not have)
spark = (SparkSession.builder.config("spark.sql.globalTempDatabase", "healer_global_temp")
         .enableHiveSupport().getOrCreate())
print(f"CHECK global_temp={spark.conf.get('spark.sql.globalTempDatabase')}")

orders = spark.table(f"{database}.orders")
daily = orders.where("amount > 20")  # ids 3..9: 7 rows, customer null for 4 and 7
daily.write.mode("overwrite").saveAsTable(f"{database}.daily")

spark.sql(f"USE {database}")  # unqualified names from here on resolve against it
spark.conf.set("hive.exec.dynamic.partition.mode", "nonstrict")
orders.where("id IN (5, 10)").selectExpr("*", "'d2' AS day").write.insertInto("events")  # production's 2 (cloned) + 2
orders.write.mode("overwrite").parquet(parquet_path)
orders.select("id", "customer").write.mode("overwrite").option("header", True).csv(csv_path)
orders.writeTo("v2_orders").using("parquet").create()
spark.sql("INSERT INTO summary SELECT count(*) AS n FROM orders")  # production's 1 row (cloned) + 1
spark.sql("CREATE TABLE ctas_nulls USING parquet AS SELECT id, amount FROM orders WHERE amount IS NULL")
spark.sql("CREATE OR REPLACE VIEW v_daily AS SELECT customer FROM daily")
spark.sparkContext.parallelize(["a", "b", "c"], 1).saveAsTextFile(text_path)

# reads of its own outputs see what this run wrote
print(f"CHECK daily_rows={spark.table('daily').count()}")
print(f"CHECK daily_sql_rows={spark.sql('WITH d AS (SELECT * FROM daily) SELECT count(*) FROM d').first()[0]}")
print(f"CHECK parquet_rows={spark.read.parquet(parquet_path).count()}")
print(f"CHECK view_rows={spark.table('v_daily').count()}")

# temp views are the session's own: never redirected
orders.createOrReplaceTempView("tmp_orders")
spark.sql("CREATE OR REPLACE TEMP VIEW tmp_small AS SELECT * FROM tmp_orders WHERE id < 3")
print(f"CHECK temp_rows={spark.table('tmp_small').count()}")

spark.stop()
sys.exit(0)

"""A function of pyspark.sql.functions used without its import, inside a helper."""
from pyspark.sql import SparkSession
from pyspark.sql.functions import lit

spark = SparkSession.builder.appName("missing-import").getOrCreate()

shipments = spark.createDataFrame(
    [(1, "DE", 12.5), (2, "FR", 7.0), (3, "DE", 3.25)],
    ["shipment_id", "country", "weight_kg"],
)


def heavy(df, limit):
    flagged = df.withColumn("source", lit("warehouse"))
    return flagged.where(col("weight_kg") > limit).select(col("shipment_id"), "country", "source")


heavy(shipments, 5).show()
spark.stop()

"""A Python UDF that fails on a null value."""
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

spark = SparkSession.builder.appName("udf-null").getOrCreate()

people = spark.createDataFrame([(1, "alice"), (2, None), (3, "carol")], "id INT, name STRING")


@F.udf(returnType=StringType())
def shout(name):
    return name.upper() + "!"


people.select("id", shout("name").alias("greeting")).show()
spark.stop()

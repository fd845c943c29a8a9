"""The driver runs out of heap: a huge in-memory structure built on the driver's JVM."""
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("driver-oom").getOrCreate()

jvm = spark.sparkContext._jvm
# 2**29 longs = 4 GiB, far beyond the driver's heap
buffer = jvm.java.lang.reflect.Array.newInstance(jvm.java.lang.Long.TYPE, 2**29)
print(buffer)
spark.stop()

"""A plain Python error in driver code: a missing key in the job's settings."""
import sys

from pyspark.sql import SparkSession

SETTINGS = {"input_table": "accounts", "output_path": "/tmp/out"}


def load_settings(argv):
    settings = dict(SETTINGS)
    for arg in argv:
        key, _, value = arg.partition("=")
        settings[key] = value
    return settings


def main():
    spark = SparkSession.builder.appName("keyerror").getOrCreate()
    settings = load_settings(sys.argv[1:])
    df = spark.range(5)
    df.write.mode("overwrite").format("noop").save()
    print("writing to", settings["output_dir"])
    spark.stop()


if __name__ == "__main__":
    main()

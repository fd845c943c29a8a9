"""Daily visits per site and browser, but the GROUP BY names only the site (multi-line f-string SQL)."""
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("grouping-missing-agg-sql").getOrCreate()

visits = spark.createDataFrame(
    [(1, "s1", "firefox", 3), (2, "s1", "chrome", 5), (3, "s2", "chrome", 1)],
    ["visit_id", "site_id", "browser", "pages"],
)
sites = spark.createDataFrame([("s1", "Shop"), ("s2", "Blog")], ["site_id", "site_name"])
visits.createOrReplaceTempView("visits")
sites.createOrReplaceTempView("sites")
source = "visits"

per_site = spark.sql("SELECT site_id, COUNT(*) AS n FROM visits GROUP BY site_id")  # fine
report = spark.sql(f"""
    SELECT s.site_name,
           v.browser,
           SUM(v.pages) AS pages  -- pages per site and browser
    FROM {source} v
    JOIN sites s ON v.site_id = s.site_id
    GROUP BY s.site_name
""")
report.show()
spark.stop()

"""Client of the treasury's exchange-rate service.

The service publishes each day's rates; here it is backed by the table the treasury team
maintains (`retail.fx_rates`). Every request is logged in `ops.rates_service_calls`. Like the real
service behind its load balancer, which drops idle pooled connections, the first request for a
batch of orders (and every other one after it) gets its connection reset; the next one succeeds.
"""

from datetime import datetime, timezone

RATES_URL = "https://rates.treasury.internal/api/v1/fx?base=USD"
CALL_LOG = "ops.rates_service_calls"


def fetch_rates(spark, batch_id, rates_table="retail.fx_rates"):
    """Rates (currency, rate_to_usd) for the batch `batch_id` as a DataFrame."""
    spark.sql("CREATE DATABASE IF NOT EXISTS ops")
    spark.sql(f"CREATE TABLE IF NOT EXISTS {CALL_LOG} (batch_id STRING, called_at TIMESTAMP) USING parquet")
    earlier = spark.table(CALL_LOG).where(f"batch_id = '{batch_id}'").count()
    spark.createDataFrame([(batch_id, datetime.now(timezone.utc))], "batch_id string, called_at timestamp") \
        .write.insertInto(CALL_LOG)
    if earlier % 2 == 0:
        raise ConnectionResetError(104, f"Connection reset by peer while reading {RATES_URL}")
    return spark.table(rates_table).select("currency", "rate_to_usd")

"""Customer 360: the nightly build of the CRM team's customer, product and sales marts.

Reads the retail landing tables of SOURCE_DB (customers, products, orders, clickstream events and
the treasury's FX rates), cleans and de-duplicates them, converts every order to US dollars, joins
in the customer and product reference data, derives per-customer order and browsing metrics, and
publishes four tables to TARGET_DB:

    c360_customer_profile        one row per customer: contact details on file, order history,
                                 browsing, RFM scores and the CRM segment
    c360_product_engagement      one row per catalogue product: page views, carts, searches,
                                 orders and revenue, and its rank within its category
    c360_region_daily_sales      one row per shipping region, day and channel, with a running
                                 revenue total over the load
    c360_category_tier_revenue   one row per product category and loyalty tier

    spark-submit customer_360.py SOURCE_DB TARGET_DB [--dry-run]

Every table is built and checked before any is written, so a failed run leaves yesterday's mart in
place rather than half of today's. Data-quality rules of severity "error" stop the run
(DataQualityError, exit status 3); "warn" rules are logged and listed in the run summary. Spark
errors are not caught: the run fails with Spark's own message and traceback.

Money is DECIMAL from the moment it is read: finance reconciles our revenue with the ledger to the
cent, and the four published tables must agree with each other exactly (see reconcile_revenue).

Reading the code: the sections below follow the run.
    Configuration        tables, thresholds, money types; PipelineConfig (one run's arguments)
    Errors, Run context  what stops a run, and what the run summary reports
    Schemas              the input columns we rely on and the published columns, with comments
    Readers              existence, lineage and shape of the inputs
    Column helpers       normalisation, price bands, scores, page parsing (pure expressions)
    De-duplication       which copy of a repeated key survives, per input
    Cleansing            one function per input
    Data quality         row rules, evaluated in one pass per table
    Enrichment, Window metrics, Builders   the four tables
    Output checks        grain, row counts and revenue reconciliation before anything is written
    Writers, Orchestration

Owner: CRM data engineering (#crm-data). Runbook: "Customer 360" on the data platform wiki.

Change log (most recent first)
    2024-06  product pages without a locale prefix (/p/<id>) count as product pages (WEB-2210)
    2024-05  region daily sales gain cross-border orders and a running total (MKT-412)
    2024-03  product engagement counts add-to-cart and search events, not only views (MKT-377)
    2024-01  RFM scores use fixed thresholds instead of quintiles: quintiles moved with every load
             and the CRM campaigns could not target a stable segment (CRM-88)
    2023-11  first version, replacing the SQL notebooks
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

LOG = logging.getLogger("customer_360")


# =====================================================================================================
# Configuration
# =====================================================================================================

APP_NAME = "customer-360"

# Logical input names -> table names inside SOURCE_DB. The landing zone keeps the upstream teams'
# names; everything below this section uses the logical names only.
SOURCE_TABLES = {
    "customers": "customers",
    "products": "products",
    "orders": "orders",
    "fx_rates": "fx_rates",
    "clickstream": "clickstream_events",
}

# Published tables, inside TARGET_DB, in the order they are written.
OUTPUT_TABLES = {
    "customer_profile": "c360_customer_profile",
    "product_engagement": "c360_product_engagement",
    "region_daily_sales": "c360_region_daily_sales",
    "category_tier_revenue": "c360_category_tier_revenue",
}

# The landing job stamps every table of one load with the same batch id; we copy the ids into the
# published tables' properties so an analyst can tell which load a mart was built from.
BATCH_PROPERTY = "batch_id"
LINEAGE_PROPERTY_PREFIX = "c360.source."

# The nightly volumes are small (tens of thousands of orders). Spark's default of 200 shuffle
# partitions made every stage schedule 200 near-empty tasks and tripled the run time.
SHUFFLE_PARTITIONS = 8

REPORTING_CURRENCY = "USD"

# Money types. Amounts of one order fit MONEY; sums over a table fit MONEY_TOTAL; the running
# total of region_daily_sales gets two more digits of head room.
MONEY = T.DecimalType(12, 2)
MONEY_TOTAL = T.DecimalType(16, 2)
RUNNING_TOTAL = T.DecimalType(18, 2)
LIST_PRICE = T.DecimalType(10, 2)
FX_RATE = T.DecimalType(12, 6)

# Regions as the CRM knows them. The shop's older exports used other spellings; unknown values
# are kept as UNKNOWN rather than dropped, so revenue still adds up.
REGIONS = ("EMEA", "NA", "APAC", "LATAM")
REGION_ALIASES = {
    "EU": "EMEA",
    "EUROPE": "EMEA",
    "US": "NA",
    "USA": "NA",
    "NORTH AMERICA": "NA",
    "ASIA": "APAC",
    "ASIA PACIFIC": "APAC",
    "LATIN AMERICA": "LATAM",
    "SOUTH AMERICA": "LATAM",
}
UNKNOWN_REGION = "UNKNOWN"

CHANNELS = ("web", "store")
LOYALTY_TIERS = ("gold", "silver", "bronze")
DEFAULT_TIER = "bronze"  # the CRM treats a customer without a tier as entry tier
UNKNOWN_CATEGORY = "unknown"

# Price bands of the catalogue: (band, list price upper bound in USD, exclusive), cheapest first.
PRICE_BANDS = (("budget", 25), ("mid", 100))
TOP_PRICE_BAND = "premium"
UNPRICED_BAND = "unpriced"

# Contact details. The pattern is deliberately loose: the CRM's mail service does the real
# validation, we only keep obvious junk ("n/a", "none@", "-") out of the profile.
EMAIL_PATTERN = r"^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$"
PHONE_MIN_DIGITS = 8  # shorter numbers are extensions or typing errors

# Browsing. A session ends after 30 minutes without an event (web analytics' definition).
EVENT_TYPES = ("page_view", "add_to_cart", "search")
SESSION_GAP_SECONDS = 30 * 60
# Product detail pages: /<locale>/p/<product id> (/en/p/1042); since WEB-2210 the router also
# serves them without the locale (/p/1042).
PRODUCT_PAGE_PATTERN = r"^(/[a-z]{2})?/p/[0-9]+$"

# RFM scores (CRM-88): fixed thresholds, best first, so a segment means the same thing every night.
# A customer meeting the first threshold scores 5, the second 4, ..., none of them 1.
RECENCY_DAYS = (1, 2, 4, 6)  # days since the last order, at most
FREQUENCY_ORDERS = (15, 12, 9, 6)  # orders in the load, at least
MONETARY_USD = (2500, 1800, 1200, 600)  # revenue in the load, at least
NEW_CUSTOMER_DAYS = 90

# Data-quality thresholds (shares of rows). See the rule sets further down for what each guards.
MAX_MISSING_EMAIL_SHARE = 0.15
MAX_UNKNOWN_REGION_SHARE = 0.01
MAX_DUPLICATE_SHARE = 0.01
MAX_NOT_BILLABLE_SHARE = 0.005
MAX_UNKNOWN_EVENT_SHARE = 0.01
MIN_PAGE_RESOLUTION = 0.98

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_settings() -> None:
    """The constants above are edited by hand in reviews; a threshold list in the wrong order turns
    every score into 5 without an error, so the order is checked before anything runs."""
    problems = []
    if list(RECENCY_DAYS) != sorted(RECENCY_DAYS):
        problems.append(f"RECENCY_DAYS must be ascending (fewest days scores best): {RECENCY_DAYS}")
    for name, thresholds in (("FREQUENCY_ORDERS", FREQUENCY_ORDERS), ("MONETARY_USD", MONETARY_USD)):
        if list(thresholds) != sorted(thresholds, reverse=True):
            problems.append(f"{name} must be descending (the best score's threshold first): {thresholds}")
    bounds = [bound for _, bound in PRICE_BANDS]
    if bounds != sorted(bounds):
        problems.append(f"PRICE_BANDS must be cheapest first: {PRICE_BANDS}")
    if not 0.0 < MIN_PAGE_RESOLUTION <= 1.0:
        problems.append(f"MIN_PAGE_RESOLUTION must be in (0, 1]: {MIN_PAGE_RESOLUTION}")
    unknown_aliases = sorted(set(REGION_ALIASES.values()) - set(REGIONS))
    if unknown_aliases:
        problems.append(f"REGION_ALIASES map to regions not in REGIONS: {unknown_aliases}")
    if DEFAULT_TIER not in LOYALTY_TIERS:
        problems.append(f"DEFAULT_TIER {DEFAULT_TIER!r} is not one of {LOYALTY_TIERS}")
    if problems:
        raise ValueError("inconsistent settings: " + "; ".join(problems))


@dataclass(frozen=True)
class PipelineConfig:
    """What one run reads and writes. Database names end up in SQL text (SHOW TBLPROPERTIES,
    ALTER TABLE), so only plain identifiers are accepted."""

    source_db: str
    target_db: str
    dry_run: bool = False
    explain: bool = False
    allow_schema_change: bool = False
    shuffle_partitions: int = SHUFFLE_PARTITIONS

    def __post_init__(self) -> None:
        for name, value in (("source database", self.source_db), ("target database", self.target_db)):
            if not _IDENTIFIER.match(value):
                raise ValueError(f"{name} {value!r} is not a plain identifier (letters, digits, '_')")
        if self.shuffle_partitions < 1:
            raise ValueError(f"shuffle partitions must be at least 1, got {self.shuffle_partitions}")

    def source(self, logical: str) -> str:
        """The qualified name of input `logical` (a key of SOURCE_TABLES)."""
        return f"{self.source_db}.{SOURCE_TABLES[logical]}"

    def output(self, logical: str) -> str:
        """The qualified name of output `logical` (a key of OUTPUT_TABLES)."""
        return f"{self.target_db}.{OUTPUT_TABLES[logical]}"


# =====================================================================================================
# Errors
# =====================================================================================================


class PipelineError(Exception):
    """A run cannot go on; the message says what to look at."""


class MissingInputError(PipelineError):
    def __init__(self, tables: Sequence[str]) -> None:
        super().__init__(
            f"input table(s) {', '.join(tables)} do not exist; has the landing job run for this load?"
        )
        self.tables = list(tables)


class SchemaMismatchError(PipelineError):
    def __init__(self, table: str, missing: Sequence[str], wrong_types: Sequence[str]) -> None:
        problems = []
        if missing:
            problems.append(f"missing columns {', '.join(missing)}")
        if wrong_types:
            problems.append("; ".join(wrong_types))
        super().__init__(f"{table} does not have the columns this job reads: {'; '.join(problems)}")
        self.table = table
        self.missing = list(missing)
        self.wrong_types = list(wrong_types)


class DataQualityError(PipelineError):
    """One or more rules of severity "error" failed; nothing has been written."""

    def __init__(self, failures: Sequence[str]) -> None:
        super().__init__("data quality check(s) failed:\n  " + "\n  ".join(failures))
        self.failures = list(failures)


# =====================================================================================================
# Run context: timings, counts and warnings for the run summary
# =====================================================================================================


@dataclass
class RunContext:
    """What the run has learnt so far. The summary is logged at the end of every run, failed or not,
    and is the first thing the on-call engineer reads."""

    run_id: str
    started_at: datetime
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    lineage: dict[str, str] = field(default_factory=dict)
    as_of: date | None = None

    @classmethod
    def start(cls) -> RunContext:
        now = datetime.now(timezone.utc)
        return cls(run_id=f"c360-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}", started_at=now)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Times a stage of the run. A stage that raises keeps its time in the summary too."""
        LOG.info("stage %s: started", name)
        begin = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = time.monotonic() - begin
        LOG.info("stage %s: done in %.1f s", name, self.timings[name])

    def count(self, name: str, value: int) -> None:
        self.counts[name] = value
        LOG.info("%s: %d", name, value)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        LOG.warning("%s", message)

    def summary(self) -> str:
        elapsed = (datetime.now(timezone.utc) - self.started_at).total_seconds()
        lines = [f"run {self.run_id}: {elapsed:.0f} s, as of {self.as_of or 'not determined'}"]
        lines += [f"  stage {name}: {seconds:.1f} s" for name, seconds in self.timings.items()]
        lines += [f"  {name}: {value}" for name, value in sorted(self.counts.items())]
        lines += [f"  source {name}: batch {batch}" for name, batch in sorted(self.lineage.items())]
        lines += [f"  WARNING {message}" for message in self.warnings]
        return "\n".join(lines)


# =====================================================================================================
# Schemas
# =====================================================================================================
# Inputs: the columns this job reads and the types it expects. Extra columns are ignored (upstream
# adds columns without telling us, and that must not break the build); a missing column or a type
# that cannot be widened safely stops the run before any Spark job is started.


def _field(name: str, data_type: T.DataType, comment: str, nullable: bool = True) -> T.StructField:
    return T.StructField(name, data_type, nullable, metadata={"comment": comment})


INPUT_SCHEMAS: dict[str, T.StructType] = {
    "customers": T.StructType([
        _field("customer_id", T.LongType(), "shop customer number", nullable=False),
        _field("name", T.StringType(), "full name as typed at sign-up"),
        _field("email", T.StringType(), "e-mail address, optional"),
        _field("phone", T.StringType(), "phone number in any format, optional"),
        _field("region", T.StringType(), "home region"),
        _field("tier", T.StringType(), "loyalty tier"),
        _field("signup_date", T.DateType(), "day the account was opened"),
    ]),
    "products": T.StructType([
        _field("product_id", T.LongType(), "catalogue number", nullable=False),
        _field("category", T.StringType(), "merchandising category"),
        _field("product_name", T.StringType(), "display name"),
        _field("list_price", T.DoubleType(), "list price in USD"),
    ]),
    "orders": T.StructType([
        _field("order_id", T.LongType(), "order number", nullable=False),
        _field("customer_id", T.LongType(), "customer who placed the order"),
        _field("product_id", T.LongType(), "product ordered (one product per order line)"),
        _field("channel", T.StringType(), "web or store"),
        _field("quantity", T.IntegerType(), "units ordered"),
        _field("unit_price", T.DoubleType(), "price per unit in the order currency"),
        _field("amount", T.DoubleType(), "order total in the order currency"),
        _field("currency", T.StringType(), "ISO currency code of the order"),
        _field("order_ts", T.TimestampType(), "time the order was placed"),
        _field("region", T.StringType(), "shipping region"),
    ]),
    "fx_rates": T.StructType([
        _field("currency", T.StringType(), "ISO currency code", nullable=False),
        _field("rate_to_usd", T.DoubleType(), "USD per unit of the currency"),
    ]),
    "clickstream": T.StructType([
        _field("event_id", T.LongType(), "tag manager event id", nullable=False),
        _field("visitor_id", T.LongType(), "signed-in customer id, or an anonymous id above them"),
        _field("event_type", T.StringType(), "page_view, add_to_cart or search"),
        _field("page", T.StringType(), "path of the page the event happened on"),
        _field("event_ts", T.TimestampType(), "time of the event"),
    ]),
}

# Casts from the type found to the type expected that lose nothing.
_SAFE_WIDENINGS = {
    ("tinyint", "smallint"),
    ("tinyint", "int"),
    ("tinyint", "bigint"),
    ("smallint", "int"),
    ("smallint", "bigint"),
    ("int", "bigint"),
    ("int", "double"),
    ("float", "double"),
    ("date", "timestamp"),
}

# Outputs: the published columns, in order, with the comments the catalogue shows to analysts.
# Builders may produce wider types (a SUM of DECIMAL(12,2) is DECIMAL(22,2)); conform_output casts
# to these, so the tables' types do not change when a builder does.
OUTPUT_SCHEMAS: dict[str, T.StructType] = {
    "customer_profile": T.StructType([
        _field("customer_id", T.LongType(), "shop customer number", nullable=False),
        _field("customer_name", T.StringType(), "name, whitespace and capitals normalised"),
        _field("email_domain", T.StringType(), "domain of a usable e-mail address"),
        _field("has_email", T.BooleanType(), "a usable e-mail address is on file"),
        _field("has_phone", T.BooleanType(), "a usable phone number is on file"),
        _field("contact_channel", T.StringType(), "how campaigns reach the customer: email, sms or none"),
        _field("home_region", T.StringType(), "home region (EMEA, NA, APAC, LATAM or UNKNOWN)"),
        _field("tier", T.StringType(), "loyalty tier"),
        _field("signup_date", T.DateType(), "day the account was opened"),
        _field("tenure_days", T.IntegerType(), "days from sign-up to the as-of date"),
        _field("orders", T.LongType(), "orders in the load"),
        _field("units", T.LongType(), "units ordered in the load"),
        _field("revenue_usd", MONEY_TOTAL, "revenue in the load, USD"),
        _field("avg_order_usd", MONEY_TOTAL, "revenue per order, USD; NULL without orders"),
        _field("first_order_date", T.DateType(), "day of the first order in the load"),
        _field("last_order_date", T.DateType(), "day of the last order in the load"),
        _field("days_since_last_order", T.IntegerType(), "days from the last order to the as-of date"),
        _field("longest_gap_days", T.IntegerType(), "longest gap between two consecutive orders"),
        _field("web_order_share", T.DoubleType(), "share of the orders placed on the web"),
        _field("favourite_category", T.StringType(), "category with the most revenue"),
        _field("page_views", T.LongType(), "product and other pages viewed while signed in"),
        _field("sessions", T.LongType(), "browsing sessions while signed in"),
        _field("recency_score", T.IntegerType(), "RFM recency score, 1-5 (CRM-88)"),
        _field("frequency_score", T.IntegerType(), "RFM frequency score, 1-5"),
        _field("monetary_score", T.IntegerType(), "RFM monetary score, 1-5"),
        _field("segment", T.StringType(), "CRM segment"),
        _field("as_of_date", T.DateType(), "business date of the build"),
    ]),
    "product_engagement": T.StructType([
        _field("product_id", T.LongType(), "catalogue number", nullable=False),
        _field("product_name", T.StringType(), "display name"),
        _field("category", T.StringType(), "merchandising category"),
        _field("price_band", T.StringType(), "budget, mid or premium"),
        _field("list_price", LIST_PRICE, "list price, USD"),
        _field("page_views", T.LongType(), "views of the product page"),
        _field("add_to_carts", T.LongType(), "add-to-cart events on the product page"),
        _field("searches", T.LongType(), "searches started from the product page"),
        _field("unique_visitors", T.LongType(), "distinct visitors with any event on the page"),
        _field("orders", T.LongType(), "orders of the product"),
        _field("units", T.LongType(), "units ordered"),
        _field("revenue_usd", MONEY_TOTAL, "revenue, USD"),
        _field("cart_rate", T.DoubleType(), "add-to-carts per page view"),
        _field("view_to_order_rate", T.DoubleType(), "orders per page view"),
        _field("category_revenue_rank", T.IntegerType(), "rank by revenue within the category, 1 = top"),
        _field("category_revenue_share", T.DoubleType(), "share of the category's revenue"),
    ]),
    "region_daily_sales": T.StructType([
        _field("region", T.StringType(), "shipping region", nullable=False),
        _field("order_date", T.DateType(), "day of the orders", nullable=False),
        _field("channel", T.StringType(), "web or store", nullable=False),
        _field("orders", T.LongType(), "orders"),
        _field("customers", T.LongType(), "distinct customers"),
        _field("units", T.LongType(), "units ordered"),
        _field("revenue_usd", MONEY_TOTAL, "revenue, USD"),
        _field("avg_basket_usd", MONEY_TOTAL, "revenue per order, USD"),
        _field("cross_border_orders", T.LongType(), "orders shipped outside the customer's home region"),
        _field("cumulative_revenue_usd", RUNNING_TOTAL, "revenue of the region and channel up to the day"),
    ]),
    "category_tier_revenue": T.StructType([
        _field("category", T.StringType(), "merchandising category", nullable=False),
        _field("tier", T.StringType(), "loyalty tier of the buyer", nullable=False),
        _field("customers", T.LongType(), "distinct buyers"),
        _field("orders", T.LongType(), "orders"),
        _field("revenue_usd", MONEY_TOTAL, "revenue, USD"),
        _field("avg_revenue_per_customer", MONEY_TOTAL, "revenue per buyer, USD"),
        _field("category_revenue_share", T.DoubleType(), "share of the category's revenue"),
    ]),
}

# The grain of each output: these columns identify a row.
OUTPUT_KEYS: dict[str, tuple[str, ...]] = {
    "customer_profile": ("customer_id",),
    "product_engagement": ("product_id",),
    "region_daily_sales": ("region", "order_date", "channel"),
    "category_tier_revenue": ("category", "tier"),
}


# =====================================================================================================
# Spark session and readers
# =====================================================================================================


def create_session(cfg: PipelineConfig) -> SparkSession:
    """The session of the run. ANSI mode stays on (the platform default): a value Spark cannot
    compute must fail the run, not become a NULL nobody notices in the mart."""
    spark = (
        SparkSession.builder.appName(APP_NAME)
        .config("spark.sql.shuffle.partitions", str(cfg.shuffle_partitions))
        .config("spark.sql.adaptive.enabled", "true")
        .getOrCreate()
    )
    return spark


def require_tables(spark: SparkSession, tables: Sequence[str]) -> None:
    """Every table exists; otherwise one error naming all the missing ones."""
    missing = [table for table in tables if not spark.catalog.tableExists(table)]
    if missing:
        raise MissingInputError(missing)


def table_properties(spark: SparkSession, table: str) -> dict[str, str]:
    return {row["key"]: row["value"] for row in spark.sql(f"SHOW TBLPROPERTIES {table}").collect()}


def source_lineage(spark: SparkSession, cfg: PipelineConfig, ctx: RunContext) -> dict[str, str]:
    """The landing batch id of every input. Inputs from different loads are not an error (FX rates
    are published on their own schedule) but they are worth a line in the summary."""
    lineage = {}
    for logical in SOURCE_TABLES:
        lineage[logical] = table_properties(spark, cfg.source(logical)).get(BATCH_PROPERTY, "unknown")
    batches = sorted(set(lineage.values()) - {"unknown"})
    if len(batches) > 1:
        ctx.warn(f"inputs come from {len(batches)} different landing batches: {lineage}")
    return lineage


def conform_to_schema(df: DataFrame, schema: T.StructType, table: str) -> DataFrame:
    """`df` reduced to the columns of `schema`, in its order, widened where that is safe.

    Raises SchemaMismatchError listing every missing column and every type that cannot be widened,
    so one failed run shows all of upstream's changes at once."""
    found = {f.name.lower(): f for f in df.schema.fields}
    missing, wrong_types, columns = [], [], []
    for expected in schema.fields:
        actual = found.get(expected.name.lower())
        if actual is None:
            missing.append(expected.name)
        elif actual.dataType == expected.dataType:
            columns.append(F.col(actual.name).alias(expected.name))
        elif (actual.dataType.simpleString(), expected.dataType.simpleString()) in _SAFE_WIDENINGS:
            columns.append(F.col(actual.name).cast(expected.dataType).alias(expected.name))
        else:
            wrong_types.append(
                f"{expected.name} is {actual.dataType.simpleString()}, "
                f"expected {expected.dataType.simpleString()}"
            )
    if missing or wrong_types:
        raise SchemaMismatchError(table, missing, wrong_types)
    ignored = sorted(set(found) - {f.name.lower() for f in schema.fields})
    if ignored:
        LOG.info("%s: not reading columns %s", table, ", ".join(ignored))
    return df.select(*columns)


def read_source(spark: SparkSession, cfg: PipelineConfig, logical: str) -> DataFrame:
    table = cfg.source(logical)
    return conform_to_schema(spark.table(table), INPUT_SCHEMAS[logical], table)


def read_inputs(spark: SparkSession, cfg: PipelineConfig) -> dict[str, DataFrame]:
    """Every input, conformed. Schema problems of all inputs are reported together."""
    frames, errors = {}, []
    for logical in SOURCE_TABLES:
        try:
            frames[logical] = read_source(spark, cfg, logical)
        except SchemaMismatchError as exc:
            errors.append(str(exc))
    if errors:
        raise PipelineError("the inputs changed shape:\n  " + "\n  ".join(errors))
    return frames


# =====================================================================================================
# Column helpers
# =====================================================================================================
# Small expressions shared by the cleansing functions and the builders. Each returns a Column and
# never triggers a Spark job.


def normalise_name(name: Column) -> Column:
    """Runs of whitespace collapsed, ends trimmed, words capitalised ("ada  KHAN " -> "Ada Khan")."""
    return F.initcap(F.trim(F.regexp_replace(name, r"\s+", " ")))


def normalise_email(email: Column) -> Column:
    """Lower-cased and trimmed; NULL when it does not look like an address."""
    cleaned = F.lower(F.trim(email))
    return F.when(cleaned.rlike(EMAIL_PATTERN), cleaned)


def normalise_phone(phone: Column) -> Column:
    """"+" and the digits of the number (E.164-like); NULL when too short to be a number.

    The sign-up form accepts any format ("+1-555-0100", "(555) 0100", "555 0100"); the country
    code is not added when it is missing, the SMS provider does that from the home region."""
    digits = F.regexp_replace(phone, r"[^0-9]", "")
    return F.when(F.length(digits) >= PHONE_MIN_DIGITS, F.concat(F.lit("+"), digits))


def normalise_region(region: Column) -> Column:
    """One of REGIONS, or UNKNOWN_REGION. Old spellings are mapped through REGION_ALIASES."""
    cleaned = F.upper(F.trim(region))
    canonical = F.when(cleaned.isin(*REGIONS), cleaned)
    for alias, name in sorted(REGION_ALIASES.items()):
        canonical = canonical.when(cleaned == alias, F.lit(name))
    return canonical.otherwise(F.lit(UNKNOWN_REGION))


def normalise_tier(tier: Column) -> Column:
    """One of LOYALTY_TIERS; missing or unknown tiers become DEFAULT_TIER."""
    cleaned = F.lower(F.trim(tier))
    return F.when(cleaned.isin(*LOYALTY_TIERS), cleaned).otherwise(F.lit(DEFAULT_TIER))


def price_band(list_price: Column) -> Column:
    """The catalogue's price band of a list price (PRICE_BANDS)."""
    band = F.when(list_price.isNull(), F.lit(UNPRICED_BAND))
    for name, upper_bound in PRICE_BANDS:
        band = band.when(list_price < upper_bound, F.lit(name))
    return band.otherwise(F.lit(TOP_PRICE_BAND))


def threshold_score(value: Column, thresholds: Sequence[float], higher_is_better: bool = True) -> Column:
    """5 for a value meeting the first threshold, 4 for the second, ..., 1 when it meets none.

    With higher_is_better=False a threshold is met by values at most the threshold (recency: fewer
    days since the last order is better)."""
    if len(thresholds) != 4:
        raise ValueError(f"a score needs 4 thresholds (scores 5 to 2), got {list(thresholds)}")
    score = None
    for points, limit in zip(range(5, 1, -1), thresholds, strict=True):
        met = value >= limit if higher_is_better else value <= limit
        score = F.when(met, F.lit(points)) if score is None else score.when(met, F.lit(points))
    return score.otherwise(F.lit(1))


def product_id_from_page(page: Column) -> Column:
    """The catalogue id of the product a product-detail page shows; NULL for any other page.

    Split on "/", a product page gives ['', 'en', 'p', '1042']: the id is the fourth piece."""
    parts = F.split(page, "/")
    return F.when(page.rlike(PRODUCT_PAGE_PATTERN), parts[3].cast("long"))


def money(amount: Column) -> Column:
    """An amount as MONEY. Sources deliver DOUBLE; the cast rounds to the cent once, here."""
    return amount.cast(MONEY)


# =====================================================================================================
# De-duplication
# =====================================================================================================


def latest_per_key(df: DataFrame, keys: Sequence[str], order_by: Sequence[Column]) -> DataFrame:
    """One row per key: the first row in `order_by` order. The caller's ordering must break ties
    (add the columns that tell duplicates apart) or the surviving row changes between runs."""
    ranked = Window.partitionBy(*keys).orderBy(*order_by)
    return df.withColumn("_dedup_rank", F.row_number().over(ranked)).where("_dedup_rank = 1").drop("_dedup_rank")


def dedup_customers(customers: DataFrame) -> DataFrame:
    """Customers re-registering keep their number; the CRM export then holds both records. The newer
    sign-up wins, and of two records of one day the one with contact details."""
    return latest_per_key(
        customers,
        ["customer_id"],
        [
            F.col("signup_date").desc_nulls_last(),
            F.col("email").desc_nulls_last(),
            F.col("phone").desc_nulls_last(),
            F.col("customer_name").asc_nulls_last(),
        ],
    )


def dedup_products(products: DataFrame) -> DataFrame:
    """A product appears twice in the catalogue export when its price changed during the day; the
    higher price is the one in force (intra-day changes are increases by merchandising rules)."""
    return latest_per_key(
        products,
        ["product_id"],
        [F.col("list_price").desc_nulls_last(), F.col("product_name").asc_nulls_last()],
    )


def dedup_orders(orders: DataFrame) -> DataFrame:
    """The shop re-sends an order when its export times out; the copies are identical except, at
    times, for the timestamp (the later one is the commit time)."""
    return latest_per_key(orders, ["order_id"], [F.col("order_ts").desc(), F.col("amount").desc()])


def dedup_events(events: DataFrame) -> DataFrame:
    """The tag manager fires some events twice with the same id; the copies are identical."""
    return events.dropDuplicates(["event_id"])


# =====================================================================================================
# Cleansing
# =====================================================================================================
# One function per input: standard names, normalised values, money as DECIMAL. They keep every row;
# what is dropped, and why, is decided after the data-quality pass (see prepare_inputs).


def clean_customers(customers: DataFrame) -> DataFrame:
    return customers.select(
        "customer_id",
        normalise_name(F.col("name")).alias("customer_name"),
        normalise_email(F.col("email")).alias("email"),
        normalise_phone(F.col("phone")).alias("phone"),
        normalise_region(F.col("region")).alias("home_region"),
        normalise_tier(F.col("tier")).alias("tier"),
        "signup_date",
    )


def clean_products(products: DataFrame) -> DataFrame:
    list_price = F.col("list_price").cast(LIST_PRICE)
    return products.select(
        "product_id",
        F.trim("product_name").alias("product_name"),
        F.coalesce(F.lower(F.trim("category")), F.lit(UNKNOWN_CATEGORY)).alias("category"),
        list_price.alias("list_price"),
        price_band(list_price).alias("price_band"),
    )


def clean_orders(orders: DataFrame) -> DataFrame:
    return orders.select(
        "order_id",
        "customer_id",
        "product_id",
        F.lower(F.trim("channel")).alias("channel"),
        "quantity",
        money(F.col("unit_price")).alias("unit_price"),
        money(F.col("amount")).alias("amount"),
        F.upper(F.trim("currency")).alias("currency"),
        "order_ts",
        F.to_date("order_ts").alias("order_date"),
        normalise_region(F.col("region")).alias("ship_region"),
    )


def is_billable(orders_quantity: Column, amount: Column, order_ts: Column) -> Column:
    """Orders that count as revenue. Test orders from the stores have quantity 0, and refunds come
    as negative amounts through the finance feed, not through this table."""
    return order_ts.isNotNull() & (orders_quantity > 0) & amount.isNotNull() & (amount >= 0)


def clean_fx_rates(rates: DataFrame) -> DataFrame:
    return rates.select(
        F.upper(F.trim("currency")).alias("currency"),
        F.col("rate_to_usd").cast(FX_RATE).alias("rate_to_usd"),
    )


def clean_clickstream(events: DataFrame) -> DataFrame:
    return events.select(
        "event_id",
        "visitor_id",
        F.lower(F.trim("event_type")).alias("event_type"),
        F.trim("page").alias("page"),
        "event_ts",
    )


# =====================================================================================================
# Data quality
# =====================================================================================================
# A rule names the rows that violate it; a table passes when the share of violating rows is at most
# the rule's max_share. All rules of a table are evaluated in one aggregation (one Spark job per
# table), together with the measures the run needs anyway (row counts, revenue totals).


@dataclass(frozen=True)
class RowRule:
    name: str
    violation: Column
    max_share: float = 0.0
    severity: str = "error"  # "error" stops the run, "warn" goes to the summary

    def __post_init__(self) -> None:
        if self.severity not in ("error", "warn"):
            raise ValueError(f"rule {self.name}: severity must be 'error' or 'warn', not {self.severity!r}")
        if not 0.0 <= self.max_share <= 1.0:
            raise ValueError(f"rule {self.name}: max_share must be between 0 and 1, not {self.max_share}")


@dataclass(frozen=True)
class RuleResult:
    table: str
    rule: str
    severity: str
    violations: int
    rows: int
    max_share: float

    @property
    def share(self) -> float:
        return self.violations / self.rows if self.rows else 0.0

    @property
    def passed(self) -> bool:
        return self.share <= self.max_share

    def describe(self) -> str:
        return (
            f"{self.table}: {self.rule}: {self.violations} of {self.rows} rows ({self.share:.2%}; "
            f"at most {self.max_share:.2%} allowed)"
        )


@dataclass(frozen=True)
class TableReport:
    table: str
    rows: int
    results: tuple[RuleResult, ...]
    measures: Mapping[str, object]


def evaluate_rules(
    df: DataFrame,
    table: str,
    rules: Sequence[RowRule],
    *,
    keys: Sequence[str] = (),
    measures: Mapping[str, Column] | None = None,
) -> TableReport:
    """Evaluates `rules` over `df` in one pass. With `keys`, repeated keys are a rule too
    ("duplicate_keys", a warning: the caller de-duplicates, we only want to hear when the feed
    repeats more than usual)."""
    measures = dict(measures or {})
    aggregates = [F.count(F.lit(1)).alias("_rows")]
    aggregates += [
        F.sum(F.when(rule.violation, 1).otherwise(0)).alias(f"_rule_{i}") for i, rule in enumerate(rules)
    ]
    if keys:
        aggregates.append(F.count_distinct(*[F.col(k) for k in keys]).alias("_distinct_keys"))
    aggregates += [expr.alias(f"_measure_{name}") for name, expr in measures.items()]
    row = df.agg(*aggregates).first()

    rows = row["_rows"]
    results = [
        RuleResult(table, rule.name, rule.severity, row[f"_rule_{i}"] or 0, rows, rule.max_share)
        for i, rule in enumerate(rules)
    ]
    found = {name: row[f"_measure_{name}"] for name in measures}
    if keys:
        results.append(
            RuleResult(table, "duplicate_keys", "warn", rows - row["_distinct_keys"], rows, MAX_DUPLICATE_SHARE)
        )
        found["_distinct_keys"] = row["_distinct_keys"]
    return TableReport(table, rows, tuple(results), found)


def enforce(report: TableReport, ctx: RunContext) -> TableReport:
    """Logs the report; warnings go to the summary, failed error rules stop the run."""
    ctx.count(f"{report.table} rows", report.rows)
    if "_distinct_keys" in report.measures:
        ctx.count(f"{report.table} distinct keys", int(report.measures["_distinct_keys"]))
    failures = []
    for result in report.results:
        if result.passed:
            LOG.info("rule ok   %s", result.describe())
        elif result.severity == "warn":
            ctx.warn(f"rule warn {result.describe()}")
        else:
            LOG.error("rule FAIL %s", result.describe())
            failures.append(result.describe())
    if failures:
        raise DataQualityError(failures)
    return report


def customer_rules() -> list[RowRule]:
    return [
        RowRule("missing_customer_id", F.col("customer_id").isNull()),
        RowRule("missing_email", F.col("email").isNull(), MAX_MISSING_EMAIL_SHARE, "warn"),
        RowRule("unknown_home_region", F.col("home_region") == UNKNOWN_REGION, MAX_UNKNOWN_REGION_SHARE, "warn"),
        RowRule("missing_signup_date", F.col("signup_date").isNull(), 0.0, "warn"),
        RowRule("missing_name", F.col("customer_name").isNull() | (F.col("customer_name") == ""), 0.01, "warn"),
    ]


def product_rules() -> list[RowRule]:
    return [
        RowRule("missing_product_id", F.col("product_id").isNull()),
        # An unpriced product cannot be banded and its revenue share would be meaningless.
        RowRule("missing_list_price", F.col("list_price").isNull()),
        RowRule("non_positive_list_price", F.col("list_price") <= 0),
        RowRule("unknown_category", F.col("category") == UNKNOWN_CATEGORY, 0.01, "warn"),
    ]


def order_rules() -> list[RowRule]:
    billable = is_billable(F.col("quantity"), F.col("amount"), F.col("order_ts"))
    return [
        RowRule("missing_order_id", F.col("order_id").isNull()),
        RowRule("missing_customer", F.col("customer_id").isNull()),
        RowRule("missing_product", F.col("product_id").isNull()),
        RowRule("unknown_channel", ~F.col("channel").isin(*CHANNELS) | F.col("channel").isNull()),
        RowRule("missing_currency", F.col("currency").isNull() | (F.length("currency") != 3)),
        RowRule("not_billable", ~billable, MAX_NOT_BILLABLE_SHARE, "warn"),
        RowRule("unknown_ship_region", F.col("ship_region") == UNKNOWN_REGION, MAX_UNKNOWN_REGION_SHARE, "warn"),
    ]


def fx_rules() -> list[RowRule]:
    return [
        RowRule("non_positive_rate", F.col("rate_to_usd").isNull() | (F.col("rate_to_usd") <= 0)),
        # The treasury's file has carried a USD rate other than 1 once (a spreadsheet fill-down).
        RowRule(
            "reporting_currency_rate",
            (F.col("currency") == REPORTING_CURRENCY) & (F.col("rate_to_usd") != 1),
        ),
    ]


def event_rules() -> list[RowRule]:
    return [
        RowRule("missing_event_id", F.col("event_id").isNull()),
        RowRule("missing_visitor", F.col("visitor_id").isNull(), 0.01, "warn"),
        RowRule("missing_timestamp", F.col("event_ts").isNull(), 0.01, "warn"),
        RowRule("unknown_event_type", ~F.col("event_type").isin(*EVENT_TYPES), MAX_UNKNOWN_EVENT_SHARE, "warn"),
        RowRule("missing_page", F.col("page").isNull() | (F.col("page") == ""), 0.01, "warn"),
    ]


def enriched_order_rules() -> list[RowRule]:
    return [
        # Orders of customers the CRM does not know cannot be put in a profile: the customer export
        # is late or the order feed is from another shop. Either way the profile would not add up.
        RowRule("customer_not_in_crm", ~F.col("customer_known")),
        RowRule("product_not_in_catalogue", ~F.col("product_known")),
        RowRule("no_fx_rate", F.col("amount_usd").isNull()),
    ]


# =====================================================================================================
# Inputs: read, clean, check, de-duplicate
# =====================================================================================================


@dataclass(frozen=True)
class Inputs:
    """The cleaned inputs of one run. Orders are billable and still in their own currency."""

    customers: DataFrame
    products: DataFrame
    orders: DataFrame
    fx_rates: DataFrame
    events: DataFrame


def prepare_inputs(spark: SparkSession, cfg: PipelineConfig, ctx: RunContext) -> Inputs:
    """Reads every input and cleans it; checks each before de-duplicating (so repeated keys are
    counted) and drops the rows that cannot be used."""
    raw = read_inputs(spark, cfg)

    customers = clean_customers(raw["customers"])
    enforce(evaluate_rules(customers, "customers", customer_rules(), keys=["customer_id"]), ctx)
    customers = dedup_customers(customers)

    products = clean_products(raw["products"])
    enforce(evaluate_rules(products, "products", product_rules(), keys=["product_id"]), ctx)
    products = dedup_products(products)

    orders = clean_orders(raw["orders"])
    enforce(evaluate_rules(orders, "orders", order_rules(), keys=["order_id"]), ctx)
    orders = dedup_orders(orders.where(is_billable(F.col("quantity"), F.col("amount"), F.col("order_ts"))))

    fx_rates = clean_fx_rates(raw["fx_rates"])
    enforce(evaluate_rules(fx_rates, "fx_rates", fx_rules(), keys=["currency"]), ctx)
    fx_rates = latest_per_key(fx_rates, ["currency"], [F.col("rate_to_usd").desc()])

    events = clean_clickstream(raw["clickstream"])
    enforce(evaluate_rules(events, "clickstream", event_rules(), keys=["event_id"]), ctx)
    events = dedup_events(events.where(F.col("visitor_id").isNotNull() & F.col("event_ts").isNotNull()))

    return Inputs(customers=customers, products=products, orders=orders, fx_rates=fx_rates, events=events)


# =====================================================================================================
# Enrichment
# =====================================================================================================


def convert_to_reporting_currency(orders: DataFrame, fx_rates: DataFrame) -> DataFrame:
    """Adds amount_usd: the amount at the treasury's rate, rounded half-up to the cent. Orders in a
    currency without a rate get NULL, which the enriched-order rules turn into an error."""
    rates = F.broadcast(fx_rates.select("currency", "rate_to_usd"))
    converted = orders.join(rates, "currency", "left")
    return converted.withColumn("amount_usd", F.round(F.col("amount") * F.col("rate_to_usd"), 2).cast(MONEY))


def enrich_orders(orders: DataFrame, customers: DataFrame, products: DataFrame) -> DataFrame:
    """Orders with the buyer's home region and tier and the product's category and price band.

    Unknown customers and products are kept (flagged customer_known / product_known) so that the
    rules can count them; their attributes fall back to UNKNOWN_REGION, DEFAULT_TIER and
    UNKNOWN_CATEGORY."""
    buyers = customers.select("customer_id", "home_region", "tier", F.lit(True).alias("_customer_known"))
    catalogue = products.select("product_id", "category", "price_band", F.lit(True).alias("_product_known"))
    joined = orders.join(buyers, "customer_id", "left").join(F.broadcast(catalogue), "product_id", "left")
    home_region = F.coalesce(F.col("home_region"), F.lit(UNKNOWN_REGION))
    return joined.select(
        "order_id",
        "customer_id",
        "product_id",
        "channel",
        "quantity",
        "amount",
        "currency",
        "amount_usd",
        "order_ts",
        "order_date",
        "ship_region",
        home_region.alias("home_region"),
        F.coalesce(F.col("tier"), F.lit(DEFAULT_TIER)).alias("tier"),
        F.coalesce(F.col("category"), F.lit(UNKNOWN_CATEGORY)).alias("category"),
        F.coalesce(F.col("price_band"), F.lit(UNPRICED_BAND)).alias("price_band"),
        # Shipping to a region other than home is what the customs team calls cross-border.
        (F.col("ship_region") != home_region).alias("cross_border"),
        F.coalesce(F.col("_customer_known"), F.lit(False)).alias("customer_known"),
        F.coalesce(F.col("_product_known"), F.lit(False)).alias("product_known"),
    )


# =====================================================================================================
# Window metrics
# =====================================================================================================


def customer_order_totals(orders: DataFrame) -> DataFrame:
    """Per customer: orders, units, revenue and web orders of the load."""
    return orders.groupBy("customer_id").agg(
        F.count(F.lit(1)).alias("orders"),
        F.sum("quantity").alias("units"),
        F.sum("amount_usd").alias("revenue_usd"),
        F.sum(F.when(F.col("channel") == "web", 1).otherwise(0)).alias("web_orders"),
    )


def order_history_metrics(orders: DataFrame) -> DataFrame:
    """Per customer: first and last order day and the longest gap, in days, between two
    consecutive orders (NULL with a single order)."""
    in_order = Window.partitionBy("customer_id").orderBy("order_ts", "order_id")
    gaps = orders.select(
        "customer_id",
        "order_date",
        F.datediff(F.col("order_date"), F.lag("order_date").over(in_order)).alias("gap_days"),
    )
    return gaps.groupBy("customer_id").agg(
        F.min("order_date").alias("first_order_date"),
        F.max("order_date").alias("last_order_date"),
        F.max("gap_days").alias("longest_gap_days"),
    )


def favourite_categories(orders: DataFrame) -> DataFrame:
    """Per customer: the category they spent most on; a tie goes to the category first in
    alphabetical order, so the answer does not change between runs."""
    spend = orders.groupBy("customer_id", "category").agg(F.sum("amount_usd").alias("category_revenue_usd"))
    best_first = Window.partitionBy("customer_id").orderBy(
        F.col("category_revenue_usd").desc(), F.col("category").asc()
    )
    return (
        spend.withColumn("_rank", F.row_number().over(best_first))
        .where("_rank = 1")
        .select("customer_id", F.col("category").alias("favourite_category"))
    )


def sessionize(events: DataFrame) -> DataFrame:
    """Marks the first event of each browsing session (new_session = 1): a visitor's first event,
    and every event more than SESSION_GAP_SECONDS after the visitor's previous one."""
    by_visitor = Window.partitionBy("visitor_id").orderBy("event_ts", "event_id")
    seconds = F.unix_timestamp("event_ts")
    gap = seconds - F.lag(seconds).over(by_visitor)
    starts = gap.isNull() | (gap > SESSION_GAP_SECONDS)
    return events.withColumn("new_session", F.when(starts, 1).otherwise(0))


def visitor_activity(sessionized: DataFrame) -> DataFrame:
    """Per visitor: page views and sessions."""
    return sessionized.groupBy("visitor_id").agg(
        F.sum(F.when(F.col("event_type") == "page_view", 1).otherwise(0)).alias("page_views"),
        F.sum("new_session").alias("sessions"),
    )


def contact_channel(has_email: Column, has_phone: Column) -> Column:
    """The channel campaigns use for a customer. E-mail first: an SMS costs the CRM team eight
    cents and an e-mail nothing. Customers with neither are still profiled, for the stores."""
    return (
        F.when(has_email, F.lit("email"))
        .when(has_phone, F.lit("sms"))
        .otherwise(F.lit("none"))
    )


def rfm_segment(orders: Column, recency: Column, frequency: Column, monetary: Column, tenure_days: Column) -> Column:
    """The CRM segment, first match wins. The order matters: a champion is also loyal."""
    return (
        F.when(orders == 0, F.lit("prospect"))
        .when((recency >= 4) & (frequency >= 4) & (monetary >= 4), F.lit("champion"))
        .when(frequency >= 4, F.lit("loyal"))
        .when((recency <= 2) & (frequency >= 3), F.lit("at_risk"))
        .when(tenure_days <= NEW_CUSTOMER_DAYS, F.lit("new"))
        .otherwise(F.lit("regular"))
    )


# =====================================================================================================
# Builders: one function per published table
# =====================================================================================================


def build_customer_profile(customers: DataFrame, orders: DataFrame, events: DataFrame, as_of: date) -> DataFrame:
    """One row per customer of the CRM, with or without orders in the load.

    Browsing counts only signed-in visits: the shop uses the customer id as visitor id once a
    visitor signs in, and anonymous ids are above the customer range."""
    totals = customer_order_totals(orders)
    history = order_history_metrics(orders)
    favourites = favourite_categories(orders)
    browsing = visitor_activity(sessionize(events)).withColumnRenamed("visitor_id", "customer_id")
    as_of_date = F.lit(as_of)

    profile = (
        customers.join(totals, "customer_id", "left")
        .join(history, "customer_id", "left")
        .join(favourites, "customer_id", "left")
        .join(browsing, "customer_id", "left")
        .select(
            "customer_id",
            "customer_name",
            F.substring_index("email", "@", -1).alias("email_domain"),
            F.col("email").isNotNull().alias("has_email"),
            F.col("phone").isNotNull().alias("has_phone"),
            "home_region",
            "tier",
            "signup_date",
            F.datediff(as_of_date, F.col("signup_date")).alias("tenure_days"),
            F.coalesce(F.col("orders"), F.lit(0)).alias("orders"),
            F.coalesce(F.col("units"), F.lit(0)).alias("units"),
            F.coalesce(F.col("revenue_usd"), F.lit(0)).cast(MONEY_TOTAL).alias("revenue_usd"),
            "web_orders",
            "first_order_date",
            "last_order_date",
            F.datediff(as_of_date, F.col("last_order_date")).alias("days_since_last_order"),
            "longest_gap_days",
            "favourite_category",
            F.coalesce(F.col("page_views"), F.lit(0)).alias("page_views"),
            F.coalesce(F.col("sessions"), F.lit(0)).alias("sessions"),
        )
    )

    has_orders = F.col("orders") > 0
    scored = profile.withColumns({
        "avg_order_usd": F.round(F.try_divide(F.col("revenue_usd"), F.col("orders")), 2),
        "web_order_share": F.round(F.try_divide(F.col("web_orders"), F.col("orders")), 4),
        "recency_score": F.when(
            has_orders, threshold_score(F.col("days_since_last_order"), RECENCY_DAYS, higher_is_better=False)
        ),
        "frequency_score": F.when(has_orders, threshold_score(F.col("orders"), FREQUENCY_ORDERS)),
        "monetary_score": F.when(has_orders, threshold_score(F.col("revenue_usd"), MONETARY_USD)),
    })
    return scored.withColumns({
        "segment": rfm_segment(
            F.col("orders"),
            F.col("recency_score"),
            F.col("frequency_score"),
            F.col("monetary_score"),
            F.col("tenure_days"),
        ),
        "contact_channel": contact_channel(F.col("has_email"), F.col("has_phone")),
        "as_of_date": as_of_date,
    })


def product_page_events(events: DataFrame) -> DataFrame:
    """The events on product-detail pages, with the product each page shows."""
    return events.where(F.col("page").rlike(PRODUCT_PAGE_PATTERN)).select(
        "event_id",
        "visitor_id",
        "event_type",
        "event_ts",
        product_id_from_page(F.col("page")).alias("product_id"),
    )


def check_page_resolution(page_events: DataFrame, products: DataFrame, ctx: RunContext) -> None:
    """Product pages must lead to catalogue products. When the web team changed the URLs without
    telling us (WEB-1893), the views of every product silently dropped to zero for a week; since
    then fewer than MIN_PAGE_RESOLUTION of the product-page events resolving stops the run."""
    catalogue = products.select("product_id", F.lit(True).alias("_in_catalogue"))
    resolved = page_events.join(F.broadcast(catalogue), "product_id", "left")
    rule = RowRule("page_not_in_catalogue", F.col("_in_catalogue").isNull(), 1.0 - MIN_PAGE_RESOLUTION)
    enforce(evaluate_rules(resolved, "product_page_events", [rule]), ctx)


def build_product_engagement(products: DataFrame, orders: DataFrame, events: DataFrame, ctx: RunContext) -> DataFrame:
    """One row per catalogue product: browsing on its page, its orders, and how it ranks within
    its category by revenue (rank 1 = top; equal revenue, equal rank)."""
    page_events = product_page_events(events)
    check_page_resolution(page_events, products, ctx)

    activity = page_events.where(F.col("product_id").isNotNull()).groupBy("product_id").agg(
        F.sum(F.when(F.col("event_type") == "page_view", 1).otherwise(0)).alias("page_views"),
        F.sum(F.when(F.col("event_type") == "add_to_cart", 1).otherwise(0)).alias("add_to_carts"),
        F.sum(F.when(F.col("event_type") == "search", 1).otherwise(0)).alias("searches"),
        F.count_distinct("visitor_id").alias("unique_visitors"),
    )
    sales = orders.groupBy("product_id").agg(
        F.count(F.lit(1)).alias("orders"),
        F.sum("quantity").alias("units"),
        F.sum("amount_usd").alias("revenue_usd"),
    )
    engagement = products.join(activity, "product_id", "left").join(sales, "product_id", "left").select(
        "product_id",
        "product_name",
        "category",
        "price_band",
        "list_price",
        *[
            F.coalesce(F.col(c), F.lit(0)).alias(c)
            for c in ("page_views", "add_to_carts", "searches", "unique_visitors", "orders", "units")
        ],
        F.coalesce(F.col("revenue_usd"), F.lit(0)).cast(MONEY_TOTAL).alias("revenue_usd"),
    )

    category = Window.partitionBy("category")
    by_revenue = category.orderBy(F.col("revenue_usd").desc())
    return engagement.withColumns({
        "cart_rate": F.round(F.try_divide(F.col("add_to_carts"), F.col("page_views")), 4),
        "view_to_order_rate": F.round(F.try_divide(F.col("orders"), F.col("page_views")), 4),
        "category_revenue_rank": F.rank().over(by_revenue),
        "category_revenue_share": F.round(
            F.try_divide(
                F.col("revenue_usd").cast("double"), F.sum("revenue_usd").over(category).cast("double")
            ),
            4,
        ),
    })


def build_region_daily_sales(orders: DataFrame) -> DataFrame:
    """One row per shipping region, day and channel that had orders, with the running revenue of
    the region and channel over the days of the load."""
    daily = orders.groupBy(F.col("ship_region").alias("region"), "order_date", "channel").agg(
        F.count(F.lit(1)).alias("orders"),
        F.count_distinct("customer_id").alias("customers"),
        F.sum("quantity").alias("units"),
        F.sum("amount_usd").cast(MONEY_TOTAL).alias("revenue_usd"),
        F.sum(F.when(F.col("cross_border"), 1).otherwise(0)).alias("cross_border_orders"),
    )
    to_date = (
        Window.partitionBy("region", "channel")
        .orderBy("order_date")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    return daily.withColumns({
        "avg_basket_usd": F.round(F.try_divide(F.col("revenue_usd"), F.col("orders")), 2),
        "cumulative_revenue_usd": F.sum("revenue_usd").over(to_date),
    })


def build_category_tier_revenue(orders: DataFrame) -> DataFrame:
    """One row per product category and loyalty tier of the buyer: how much each tier spends in
    each category, and the tier's share of the category."""
    by_tier = orders.groupBy("category", "tier").agg(
        F.count_distinct("customer_id").alias("customers"),
        F.count(F.lit(1)).alias("orders"),
        F.sum("amount_usd").cast(MONEY_TOTAL).alias("revenue_usd"),
    )
    category = Window.partitionBy("category")
    return by_tier.withColumns({
        "avg_revenue_per_customer": F.round(F.try_divide(F.col("revenue_usd"), F.col("customers")), 2),
        "category_revenue_share": F.round(
            F.try_divide(
                F.col("revenue_usd").cast("double"), F.sum("revenue_usd").over(category).cast("double")
            ),
            4,
        ),
    })


# =====================================================================================================
# Output checks
# =====================================================================================================


def conform_output(df: DataFrame, logical: str) -> DataFrame:
    """The builder's frame as it will be published: the columns of OUTPUT_SCHEMAS[logical], in order,
    cast to the published types, with the column comments. A missing column is a bug in the builder."""
    schema = OUTPUT_SCHEMAS[logical]
    missing = [f.name for f in schema.fields if f.name not in df.columns]
    if missing:
        raise PipelineError(f"the builder of {logical} does not produce the columns {', '.join(missing)}")
    return df.select(*[F.col(f.name).cast(f.dataType).alias(f.name, metadata=f.metadata) for f in schema.fields])


@dataclass(frozen=True)
class GrainReport:
    table: str
    rows: int
    distinct_keys: int
    revenue_usd: Decimal


def check_grain(df: DataFrame, logical: str) -> GrainReport:
    """One Spark job per output: its rows, its distinct keys (a NULL key is not counted) and its
    revenue total. Rows sharing a key, or a NULL key, stop the run: the CRM loads these tables by
    key and would silently keep one of the rows."""
    keys = OUTPUT_KEYS[logical]
    row = df.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count_distinct(*[F.col(k) for k in keys]).alias("distinct_keys"),
        F.sum("revenue_usd").alias("revenue_usd"),
    ).first()
    report = GrainReport(logical, row["rows"], row["distinct_keys"], row["revenue_usd"] or Decimal("0.00"))
    if report.rows != report.distinct_keys:
        raise DataQualityError([
            f"{logical}: {report.rows - report.distinct_keys} of {report.rows} rows repeat a key or have "
            f"a NULL key ({', '.join(keys)})"
        ])
    return report


def reconcile_revenue(reports: Mapping[str, GrainReport], orders_revenue: Decimal, ctx: RunContext) -> None:
    """Every published table carries all of the load's revenue: each total equals the enriched
    orders' total to the cent. A difference means a join lost or repeated orders."""
    failures = [
        f"{name}: revenue {report.revenue_usd} differs from the orders' {orders_revenue} "
        f"by {report.revenue_usd - orders_revenue}"
        for name, report in reports.items()
        if report.revenue_usd != orders_revenue
    ]
    if failures:
        raise DataQualityError(failures)
    ctx.count("revenue_usd (cents)", int(orders_revenue * 100))


def expected_row_counts(reports: Mapping[str, GrainReport], ctx: RunContext) -> None:
    """The profile has a row per customer and the engagement table a row per product (their
    distinct keys, counted before de-duplication): fewer rows mean a builder filtered where it
    should have joined, more that a join repeated rows."""
    expectations = {
        "customer_profile": ctx.counts.get("customers distinct keys"),
        "product_engagement": ctx.counts.get("products distinct keys"),
    }
    failures = [
        f"{name}: {reports[name].rows} rows, expected {expected} (one per key of the input)"
        for name, expected in expectations.items()
        if expected is not None and reports[name].rows != expected
    ]
    if failures:
        raise DataQualityError(failures)


# =====================================================================================================
# Writers
# =====================================================================================================


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def set_table_properties(spark: SparkSession, table: str, properties: Mapping[str, str]) -> None:
    assignments = ", ".join(f"{_sql_string(k)} = {_sql_string(v)}" for k, v in sorted(properties.items()))
    spark.sql(f"ALTER TABLE {table} SET TBLPROPERTIES ({assignments})")


def publication_properties(ctx: RunContext) -> dict[str, str]:
    """What every published table records about the run that wrote it."""
    properties = {
        "c360.run_id": ctx.run_id,
        "c360.as_of_date": ctx.as_of.isoformat() if ctx.as_of else "",
        "c360.written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    properties.update({f"{LINEAGE_PROPERTY_PREFIX}{name}": batch for name, batch in ctx.lineage.items()})
    return properties


def write_output(spark: SparkSession, df: DataFrame, table: str, properties: Mapping[str, str]) -> None:
    """Replaces the table with `df` and stamps it with the run's properties."""
    df.write.mode("overwrite").saveAsTable(table)
    set_table_properties(spark, table, properties)
    LOG.info("wrote %s", table)


def schema_changes(published: T.StructType, new: T.StructType) -> list[str]:
    """What a consumer of a published table would notice: columns added, dropped or retyped
    (comments and nullability are not part of the contract)."""
    old = {f.name.lower(): f.dataType.simpleString() for f in published.fields}
    now = {f.name.lower(): f.dataType.simpleString() for f in new.fields}
    changes = [f"column {c} added" for c in now if c not in old]
    changes += [f"column {c} dropped" for c in old if c not in now]
    changes += [f"column {c} changes from {old[c]} to {now[c]}" for c in now if c in old and old[c] != now[c]]
    return changes


def check_published_schemas(spark: SparkSession, outputs: Mapping[str, DataFrame], cfg: PipelineConfig) -> None:
    """The CRM's nightly loader maps our columns by name and type and rejects a whole table when one
    changes. A schema change is announced to the CRM team and deployed with --allow-schema-change
    on the first run after the release; any other run refuses to change a published schema."""
    if cfg.allow_schema_change:
        LOG.warning("schema changes allowed for this run (--allow-schema-change)")
        return
    problems = []
    for name, df in outputs.items():
        table = cfg.output(name)
        if not spark.catalog.tableExists(table):
            continue  # first publication: nothing to compare with
        changes = schema_changes(spark.table(table).schema, df.schema)
        if changes:
            problems.append(f"{table}: {'; '.join(changes)}")
    if problems:
        raise PipelineError(
            "the published schema would change; tell the CRM team, then rerun with --allow-schema-change:\n  "
            + "\n  ".join(problems)
        )


def publish(spark: SparkSession, outputs: Mapping[str, DataFrame], cfg: PipelineConfig, ctx: RunContext) -> None:
    """Writes the outputs in OUTPUT_TABLES order. The catalogue has no multi-table transaction, so
    everything that can fail has been checked before the first write."""
    if cfg.dry_run:
        LOG.info("dry run: not writing %s", ", ".join(cfg.output(name) for name in outputs))
        return
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {cfg.target_db}")
    check_published_schemas(spark, outputs, cfg)
    properties = publication_properties(ctx)
    for name in OUTPUT_TABLES:
        write_output(spark, outputs[name], cfg.output(name), properties)


# =====================================================================================================
# Orchestration
# =====================================================================================================


def build_outputs(inputs: Inputs, orders: DataFrame, ctx: RunContext) -> dict[str, DataFrame]:
    """Every output, conformed to its published schema (nothing is computed yet)."""
    assert ctx.as_of is not None, "the business date is set by the enrichment stage"
    built = {}
    with ctx.stage("customer profile"):
        built["customer_profile"] = build_customer_profile(inputs.customers, orders, inputs.events, ctx.as_of)
    with ctx.stage("product engagement"):
        built["product_engagement"] = build_product_engagement(inputs.products, orders, inputs.events, ctx)
    with ctx.stage("sales aggregates"):
        built["region_daily_sales"] = build_region_daily_sales(orders)
        built["category_tier_revenue"] = build_category_tier_revenue(orders)
    return {name: conform_output(df, name) for name, df in built.items()}


def explain_outputs(outputs: Mapping[str, DataFrame]) -> None:
    """Logs the physical plan of every output (--explain), for the performance reviews: the plans
    show whether the small dimensions are broadcast and how many shuffles each table costs."""
    for name, df in outputs.items():
        LOG.info("physical plan of %s follows", name)
        df.explain(mode="formatted")  # prints to stdout, i.e. into our log


def run_pipeline(spark: SparkSession, cfg: PipelineConfig, ctx: RunContext) -> dict[str, GrainReport]:
    """The whole build; returns what was checked (and, unless a dry run, published) per output."""
    with ctx.stage("inputs"):
        require_tables(spark, [cfg.source(name) for name in SOURCE_TABLES])
        ctx.lineage = source_lineage(spark, cfg, ctx)
        inputs = prepare_inputs(spark, cfg, ctx)

    with ctx.stage("enrichment"):
        orders = enrich_orders(
            convert_to_reporting_currency(inputs.orders, inputs.fx_rates), inputs.customers, inputs.products
        ).cache()
        report = enforce(
            evaluate_rules(
                orders,
                "orders_enriched",
                enriched_order_rules(),
                measures={"revenue_usd": F.sum("amount_usd"), "last_order_date": F.max("order_date")},
            ),
            ctx,
        )
        if report.rows == 0:
            raise DataQualityError(["orders_enriched: the load has no billable orders"])
        # The business date: the day after the last order. Not today's date, so that a rerun of an
        # old load scores recency as that night's run did.
        ctx.as_of = report.measures["last_order_date"] + timedelta(days=1)
        LOG.info("as of %s", ctx.as_of)

    outputs = build_outputs(inputs, orders, ctx)
    if cfg.explain:
        explain_outputs(outputs)

    with ctx.stage("output checks"):
        reports = {name: check_grain(df, name) for name, df in outputs.items()}
        for name, grain in reports.items():
            ctx.count(f"{name} rows", grain.rows)
        expected_row_counts(reports, ctx)
        reconcile_revenue(reports, report.measures["revenue_usd"], ctx)

    with ctx.stage("publish"):
        publish(spark, outputs, cfg, ctx)
    orders.unpersist()
    return reports


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="customer_360.py",
        description="Build and publish the Customer 360 marts from one retail load.",
    )
    parser.add_argument("source_db", help="database of the retail landing tables (e.g. retail)")
    parser.add_argument("target_db", help="database the marts are published to (e.g. mart)")
    parser.add_argument("--dry-run", action="store_true", help="build and check every table, write none")
    parser.add_argument("--explain", action="store_true", help="log the physical plan of every output")
    parser.add_argument(
        "--allow-schema-change",
        action="store_true",
        help="publish even when a table's columns change (once per announced release)",
    )
    parser.add_argument(
        "--shuffle-partitions",
        type=int,
        default=SHUFFLE_PARTITIONS,
        help=f"spark.sql.shuffle.partitions for the run (default {SHUFFLE_PARTITIONS})",
    )
    return parser.parse_args(argv)


def configure_logging() -> None:
    """Our log on stdout (CDE shows the driver's stdout first); Spark's own stays on stderr."""
    logging.basicConfig(
        stream=sys.stdout,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging()
    try:
        check_settings()
        cfg = PipelineConfig(
            source_db=args.source_db,
            target_db=args.target_db,
            dry_run=args.dry_run,
            explain=args.explain,
            allow_schema_change=args.allow_schema_change,
            shuffle_partitions=args.shuffle_partitions,
        )
    except ValueError as exc:
        LOG.error("%s", exc)
        return 2
    ctx = RunContext.start()
    LOG.info("run %s: %s -> %s%s", ctx.run_id, cfg.source_db, cfg.target_db, " (dry run)" if cfg.dry_run else "")
    spark = create_session(cfg)
    try:
        run_pipeline(spark, cfg, ctx)
    except (DataQualityError, MissingInputError) as exc:
        LOG.error("run %s stopped, nothing written: %s", ctx.run_id, exc)
        return 3
    finally:
        LOG.info("%s", ctx.summary())
        spark.stop()
    LOG.info("run %s: published %s", ctx.run_id, ", ".join(cfg.output(name) for name in OUTPUT_TABLES))
    return 0


if __name__ == "__main__":
    sys.exit(main())

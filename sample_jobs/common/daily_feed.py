"""Calendar and volumes of a day-partitioned feed, for the generators of the silent-failure scenarios
(pure Python: the generators import it from their resource, the tests import it directly).

A generator writes the whole history of a feed in one run: day 1 .. day N, one partition a day, the
last day with the upstream change the scenario is about. The ordinary days vary the way real feeds
do, by a uniform +-`noise` around the mean volume, so a detector has to learn a band, not a
constant. No weekly pattern: with two weeks of history a weekend dip would be two points, too few
to tell from an anomaly.

    spark-submit x_datagen.py --days 15 --first-date 2024-06-03 --rows 4000 [--seed S]
"""

import argparse
import datetime
import random

NOISE = 0.12  # each ordinary day's volume is the mean +-12 %
MIN_ROWS = 100


def feed_dates(first_date, days):
    """The dates of days 1..`days`, from `first_date` (a date or an ISO string)."""
    if isinstance(first_date, str):
        first_date = datetime.date.fromisoformat(first_date)
    if days < 1:
        raise ValueError(f"days must be positive, got {days}")
    return [first_date + datetime.timedelta(days=i) for i in range(days)]


def daily_volumes(rows, days, rng, noise=NOISE):
    """Rows of each day: `rows` +-`noise` (uniform), at least 1 each; reproducible for a seeded `rng`."""
    if rows < 1 or days < 1 or not 0 <= noise < 1:
        raise ValueError(f"rows and days must be positive and noise in [0, 1), got {rows}, {days}, {noise}")
    return [max(1, round(rows * (1 + rng.uniform(-noise, noise)))) for _ in range(days)]


def day_bounds(volumes):
    """[(first id, last id + 1)] of each day when ids run on from 1 across the days."""
    bounds, start = [], 1
    for n in volumes:
        bounds.append((start, start + n))
        start += n
    return bounds


def feed_arguments(description, default_rows):
    """The generators' common command line, parsed: --days, --first-date, --rows (a day's mean), --seed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--days", type=int, default=15, help="days written; the last one has the upstream change")
    parser.add_argument("--first-date", default="2024-06-03", help="the date of day 1 (YYYY-MM-DD)")
    parser.add_argument("--rows", type=int, default=default_rows, help="mean rows a day")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: a new one per run)")
    args = parser.parse_args()
    if args.days < 2:
        parser.error("--days must be at least 2 (ordinary days, then the changed one)")
    if args.rows < MIN_ROWS:
        parser.error(f"--rows must be at least {MIN_ROWS}")
    try:
        args.dates = feed_dates(args.first_date, args.days)
    except ValueError as exc:
        parser.error(f"--first-date: {exc}")
    args.seed = args.seed if args.seed is not None else random.randrange(1, 2**31)
    args.volumes = daily_volumes(args.rows, args.days, random.Random(args.seed))
    return args

"""Times as the healer writes them: UTC, ISO 8601, always with the `Z`."""

from __future__ import annotations

from datetime import datetime, timezone

UTC_STAMP = "%Y-%m-%dT%H:%M:%SZ"  # what records, the dashboard and reports show
UTC_PRECISE = "%Y-%m-%dT%H:%M:%S.%fZ"  # stage timings: microseconds, for durations in order


def utc_stamp(moment: datetime | None = None) -> str:
    """`moment` (default now) to the second; a naive `moment` is taken as UTC."""
    moment = moment or datetime.now(timezone.utc)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime(UTC_STAMP)


def utc_now() -> str:
    """Now, to the microsecond."""
    return datetime.now(timezone.utc).strftime(UTC_PRECISE)

"""Timestamps as CDE writes them: RFC 3339, UTC, whole seconds (`2023-11-29T00:59:11Z`)."""

from __future__ import annotations

from datetime import datetime, timezone

# What CDE shows in `ended` while a run has not ended (Go's zero time).
ZERO_TIME = "0001-01-01T00:00:00Z"


def now() -> str:
    return rfc3339(datetime.now(timezone.utc))


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

"""Recovery metrics over closed incidents (pure): per UTC day and over a window of days.

- closed: incidents that reached a final state that day (healed, escalated, rejected or error).
- auto-resolution: the share of the closed ones the healer healed.
- time to recover (MTTR's samples): for a healed incident, seconds from the failed run's end (the
  incident's opening when the run's end is unknown) to the incident's end; median and 90th
  percentile (linear between the closest ranks, as numpy's default) over the healed ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone


@dataclass(frozen=True)
class ClosedIncident:
    incident_id: str
    job: str
    state: str  # healed | escalated | rejected | error
    failed_at: datetime | None
    opened_at: datetime
    ended_at: datetime

    @property
    def recovery_s(self) -> float | None:
        """Seconds from the failure to the heal; None unless healed."""
        if self.state != "healed":
            return None
        return max(0.0, (self.ended_at - (self.failed_at or self.opened_at)).total_seconds())


@dataclass(frozen=True)
class DayMetrics:
    day: date | None  # the UTC day; None: the totals over the window
    closed: int
    healed: int
    escalated: int
    rejected: int
    errors: int
    auto_resolution: float | None  # healed / closed; None when nothing closed
    mttr_median_s: float | None  # None when nothing was healed
    mttr_p90_s: float | None


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of non-empty `values`, linear between the closest ranks."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(incidents: Iterable[ClosedIncident], day: date | None = None) -> DayMetrics:
    """The metrics of `incidents` (all of one day, or of a window: `day` None)."""
    found = list(incidents)
    states = [i.state for i in found]
    recoveries = [s for i in found if (s := i.recovery_s) is not None]
    closed = len(states)
    healed = states.count("healed")
    return DayMetrics(
        day=day, closed=closed, healed=healed, escalated=states.count("escalated"),
        rejected=states.count("rejected"), errors=states.count("error"),
        auto_resolution=healed / closed if closed else None,
        mttr_median_s=percentile(recoveries, 50) if recoveries else None,
        mttr_p90_s=percentile(recoveries, 90) if recoveries else None)


def window_start(days: int, now: datetime) -> datetime:
    """Midnight UTC of the first of the `days` days that end with `now`'s day."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    today = now.astimezone(timezone.utc).date()
    first = today - timedelta(days=days - 1)
    return datetime(first.year, first.month, first.day, tzinfo=timezone.utc)


def by_day(incidents: Iterable[ClosedIncident], days: int, now: datetime) -> list[DayMetrics]:
    """One row per UTC day of the window (oldest first, days without incidents included)."""
    start = window_start(days, now).date()
    grouped: dict[date, list[ClosedIncident]] = {start + timedelta(days=n): [] for n in range(days)}
    for incident in incidents:
        day = incident.ended_at.astimezone(timezone.utc).date()
        if day in grouped:
            grouped[day].append(incident)
    return [summarize(found, day) for day, found in grouped.items()]

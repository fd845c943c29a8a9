"""What the dashboard may do: read incident state, and send commands to the healer.

The dashboard never runs healing steps itself. It reads incident records (written by the healer
after every stage) and the watcher's health, and it sends commands (heal now, approve, reject)
that the healer carries out on its own thread (heal now, approve, reject, and a person's choice on a
flagged anomaly). Questions (`ask`) are answered from the run history and change nothing.

The recovery metrics (MTTR, auto-resolution, escalations per day) come from the healer's run history
(`agents.history.RunHistory`, shared with the healer: its engine serves both threads).

A poll reads only what changed since the last one: the incident list is kept here, one summary per
incident from the record index, refreshed by asking the index for the rows written since the last
poll; the full record is read only for the incident shown, and again only when its file changed.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from agents.record import IncidentRecord, RecordStore
from agents.record_index import IncidentSummary
from agents.watch_status import WatchStatus

if TYPE_CHECKING:
    from agents.history import DayMetrics, RunHistory
    from agents.ops import Answer


@dataclass(frozen=True)
class StatusStrip:
    """Shown at the top of the page. Holds no secret: the model token and password never get here."""

    cde_url: str
    user: str
    model: str  # "rules only" when no model is configured
    mode: str  # auto | approve
    watched_jobs: list[str] = field(default_factory=list)  # empty: all jobs
    watcher: WatchStatus = field(default_factory=WatchStatus)  # a copy, taken when the strip was made
    # with environments: the watched one, where its fixes are proven and how they are promoted ("" without)
    environment: str = ""


@dataclass(frozen=True)
class FailedRunRow:
    """A failed run of a watched job, for the "Heal now" picker."""

    job: str
    run_id: int
    ended: str | None
    has_incident: bool


class HealerCommands(Protocol):
    def heal_now(self, job: str, run_id: int | None = None) -> str: ...
    def approve(self, incident_id: str) -> str: ...
    def reject(self, incident_id: str, reason: str = "") -> str: ...
    def decide_anomaly(self, incident_id: str, decision: str) -> str: ...  # heal | dismiss | expected
    def ask(self, question: str) -> Answer: ...  # read only: answers from the run history
    def failed_runs(self) -> list[FailedRunRow]: ...
    def status(self) -> StatusStrip: ...


SHOWN_CACHED = 16  # full records kept for the incidents pages show (each page shows one)


class DashboardService:
    """The dashboard's one dependency: records on disk plus the healer's command interface.

    Polls of several pages run at once (Gradio's threads): the caches are shared under a lock.
    `loads` counts the records read from their files, `rows_read` the index rows fetched."""

    def __init__(self, data_dir: str | Path, commands: HealerCommands, history: RunHistory | None = None) -> None:
        self.records = RecordStore(data_dir)
        self.commands = commands
        self.history = history  # the healer's run history (read only here); None: no metrics
        self.loads = 0
        self.rows_read = 0
        self._lock = threading.Lock()
        self._rows: dict[str, IncidentSummary] = {}
        self._newest_first: list[IncidentSummary] = []
        self._seq = 0  # the last index row seen
        self._removed: int | None = None  # the index's count of rows dropped, when last seen
        self._shown: OrderedDict[str, tuple[tuple[int, int], IncidentRecord]] = OrderedDict()

    def incidents(self) -> list[IncidentSummary]:
        """Every incident's summary, newest first: only the rows written since the last call are fetched."""
        with self._lock:
            _seq, removed = self.records.index.version()
            if removed != self._removed:  # rows were dropped (a record file removed): start over
                self._rows, self._seq, self._removed = {}, 0, removed
                self._newest_first = []
            changed = self.records.summaries(since_seq=self._seq)
            if changed:
                self.rows_read += len(changed)
                self._rows.update((row.incident_id, row) for row in changed)
                self._seq = max(self._seq, *(row.seq for row in changed))
                self._newest_first = sorted(self._rows.values(), key=lambda r: (r.opened_at, r.incident_id),
                                            reverse=True)
            return self._newest_first

    def shown_record(self, incident_id: str) -> IncidentRecord | None:
        """The record a page shows, read from its file only when the file changed since it was last read."""
        path = self.records.path(incident_id)
        try:
            stat = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        key = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._shown.get(incident_id)
            if cached is not None and cached[0] == key:
                self._shown.move_to_end(incident_id)
                return cached[1]
        record = self.records.load(incident_id)  # outside the lock: a big record takes a while
        with self._lock:
            self.loads += 1
            if record is not None:
                self._shown[incident_id] = (key, record)
                self._shown.move_to_end(incident_id)
                while len(self._shown) > SHOWN_CACHED:
                    self._shown.popitem(last=False)
        return record

    def metrics(self, days: int) -> list[DayMetrics]:
        """Per UTC day of the last `days`, oldest first: closed, healed, escalated, auto-resolution, MTTR."""
        return self.history.metrics(days) if self.history is not None else []

    def totals(self, days: int) -> DayMetrics | None:
        """The same over the last `days` as a whole; None without a history."""
        return self.history.totals(days) if self.history is not None else None

    def incident(self, incident_id: str) -> IncidentRecord | None:
        """The record as it is on disk now (commands decide on it)."""
        return self.records.load(incident_id)

    def record_path(self, incident_id: str) -> Path | None:
        path = self.records.path(incident_id)
        return path if path.exists() else None

"""What the dashboard may do: read incident state, and send commands to the healer.

The dashboard never runs healing steps itself. It reads incident records (written by the healer
after every stage) and the watcher's health, and it sends commands (heal now, approve, reject)
that the healer carries out on its own thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from agents.record import IncidentRecord, RecordStore
from agents.watch_status import WatchStatus


@dataclass(frozen=True)
class StatusStrip:
    """Shown at the top of the page. Holds no secret: the model token and password never get here."""

    cde_url: str
    user: str
    model: str  # "rules only" when no model is configured
    mode: str  # auto | approve
    watched_jobs: list[str] = field(default_factory=list)  # empty: all jobs
    watcher: WatchStatus = field(default_factory=WatchStatus)  # a copy, taken when the strip was made


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
    def failed_runs(self) -> list[FailedRunRow]: ...
    def status(self) -> StatusStrip: ...


class DashboardService:
    """The dashboard's one dependency: records on disk plus the healer's command interface."""

    def __init__(self, data_dir: str | Path, commands: HealerCommands) -> None:
        self.records = RecordStore(data_dir)
        self.commands = commands

    def incidents(self) -> list[IncidentRecord]:
        return self.records.all()

    def incident(self, incident_id: str) -> IncidentRecord | None:
        return self.records.load(incident_id)

    def record_path(self, incident_id: str) -> Path | None:
        path = self.records.path(incident_id)
        return path if path.exists() else None

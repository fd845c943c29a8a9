"""How the watcher is doing: what the healer updates each monitor cycle and the dashboard shows."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class WatchStatus:
    alive: bool = False  # a watch loop is running
    cycles: int = 0  # monitor cycles finished
    last_poll: str | None = None  # UTC stamp (agents.times) of the last finished cycle
    last_error: str = ""  # why the last cycle failed; empty when it did not

"""What every stage node shares: the incident record loaded, timed and saved around the node.

A node is written as ``fn(state, deps, record) -> Command``; `as_node` turns it into a LangGraph
node that loads the record, marks the stage in it, times it, and saves it after the node ran, so
the record is current after every stage and a crash loses at most the stage that was running.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from langgraph.errors import GraphInterrupt

from agents.errors import HealerError
from agents.record import Attempt, IncidentRecord, StageTiming, utc_now
from agents.state import Deps, HealState

CRASH_EXIT_CODE = 75
StageFn = Callable[[HealState, Deps, IncidentRecord], Any]

# The record's state while each stage runs (approval sets its own, only when it pauses).
STAGE_STATES = {
    "monitor": "open",
    "log_fetch": "fetching",
    "diagnose": "diagnosing",
    "patch": "patching",
    "redeploy": "redeploying",
    "verify": "verifying",
}


def as_node(name: str, fn: StageFn, deps: Deps) -> Callable[[HealState], Any]:
    def node(state: HealState) -> Any:
        record = deps.records.load(state["incident_id"])
        if record is None:
            raise HealerError(f"incident {state['incident_id']} has no record")
        if name in STAGE_STATES and not record.is_terminal:
            record.state = STAGE_STATES[name]  # type: ignore[assignment]
        timing = StageTiming(stage=name, attempt=state.get("attempt", 0), started=utc_now())
        record.stages.append(timing)
        deps.records.save(record)
        began = time.monotonic()
        try:
            result = fn(state, deps, record)
        except GraphInterrupt:
            timing.note = "paused for approval"
            _finish(timing, began)
            deps.records.save(record)
            raise
        except Exception as exc:
            timing.note = f"failed: {type(exc).__name__}: {exc}"
            _finish(timing, began)
            deps.records.save(record)
            raise
        _finish(timing, began)
        deps.records.save(record)
        crash_point(deps, name)
        return result

    node.__name__ = name
    return node


def crash_point(deps: Deps, point: str) -> None:
    """Test hook (HEALER_CRASH_AFTER): die at a named point, the way a killed process would."""
    if deps.settings.crash_after == point:
        os._exit(CRASH_EXIT_CODE)


def _finish(timing: StageTiming, began: float) -> None:
    timing.ended = utc_now()
    timing.duration_s = round(time.monotonic() - began, 3)


def current_attempt(record: IncidentRecord, number: int) -> Attempt:
    """The record's entry for attempt `number`, created when missing (so a re-run stage reuses it)."""
    for attempt in record.attempts:
        if attempt.number == number:
            return attempt
    attempt = Attempt(number=number)
    record.attempts.append(attempt)
    record.attempts.sort(key=lambda a: a.number)
    return attempt

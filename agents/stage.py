"""What every stage shares: the node wrapper, and the helpers more than one stage reads.

A node is written as ``fn(state, deps, record) -> Command``; `as_node` turns it into a LangGraph
node that loads the record, marks the stage in it, times it, and saves it after the node ran, so
the record is current after every stage and a crash loses at most the stage that was running.
A stage that raises `EndIncident` (not `InvalidInput`) goes to `escalate` with the message.

Stages import this module, never each other: what two stages share lives here (or in
`agents/runs.py` for CDE runs), so the stages stand side by side.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langgraph.errors import GraphInterrupt
from langgraph.types import Command, interrupt

from agents.errors import EndIncident, InvalidInput
from agents.record import Attempt, Deployment, Evidence, IncidentRecord, Patch, StageTiming
from agents.state import Deps, HealState
from agents.times import utc_now

if TYPE_CHECKING:
    from agents.config import Settings

CRASH_EXIT_CODE = 75
StageFn = Callable[[HealState, Deps, IncidentRecord], Any]

def as_node(name: str, fn: StageFn, deps: Deps, record_state: str | None) -> Callable[[HealState], Any]:
    def node(state: HealState) -> Any:
        record = deps.records.load(state["incident_id"])
        if record is None:
            raise InvalidInput(f"incident {state['incident_id']} has no record")
        if record_state is not None and not record.is_terminal:
            record.state = record_state  # type: ignore[assignment]
        timing = StageTiming(stage=name, attempt=state.get("attempt", 0), started=utc_now(),
                             environment=stage_environment(name, state, deps))
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
        except EndIncident as exc:
            if isinstance(exc, InvalidInput):
                raise  # the healer ends the incident as "error"
            timing.note = f"failed: {exc}"
            _finish(timing, began)
            deps.records.save(record)
            return Command(goto="escalate", update={"reason": str(exc)})
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


@dataclass(frozen=True)
class Decision:
    """A person's answer to a pause: approved or not, by whom, and why (for a rejection)."""

    approved: bool
    by: str
    reason: str


def ask_person(deps: Deps, record: IncidentRecord, reason: str, question: dict[str, Any]) -> Decision:
    """Pauses the incident for a person (HEAL_MODE or HEAL_PROMOTION `approve`): the record shows it
    waiting, with `reason`, from this moment (the dashboard's buttons); the LangGraph `interrupt` keeps the
    checkpoint waiting, across restarts, for `Command(resume={"approved": bool, "by": str, "reason": str})`.
    On resume the stage runs again from its start and this returns the answer."""
    record.state = "awaiting_approval"
    record.reason = reason
    deps.records.save(record)
    answer = interrupt({"incident_id": record.incident_id, **question})
    answer = answer if isinstance(answer, dict) else {"approved": bool(answer)}
    return Decision(approved=bool(answer.get("approved")), by=str(answer.get("by") or "a reviewer"),
                    reason=str(answer.get("reason") or "no reason given"))


def stage_environment(name: str, state: HealState, deps: Deps) -> str:
    """Where a stage acts, for the record's timeline when fixes are proven in another environment
    ("" without environments, and for the stages that only think)."""
    if not deps.promotes:
        return ""
    return {"log_fetch": state.get("analyzed_in") or deps.home, "preflight": deps.proving, "compare": deps.proving,
            "redeploy": deploy_environment(state, deps), "verify": deploy_environment(state, deps),
            "promote": f"{deps.proving} → {deps.home}", "monitor": deps.home}.get(name, "")


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


def deploy_environment(state: HealState, deps: Deps) -> str:
    """Where redeploy and verify act now: after a promotion the incident's own environment, before it
    the one where fixes are proven (the same one without environments)."""
    return state.get("deploy_in") or deps.proving


def deployment(attempt: Attempt, environment: str, deps: Deps) -> Attempt | Deployment:
    """What holds the fix run's facts in `environment`: the attempt itself in the incident's own, its
    `proof` where fixes are proven before promotion (the two have the same fields)."""
    if environment == deps.home:
        return attempt
    if attempt.proof is None or attempt.proof.environment != environment:
        attempt.proof = Deployment(environment=environment)
    return attempt.proof


def current_evidence(state: HealState, record: IncidentRecord) -> Evidence:
    """The failure the current attempt answers: the last fix run's, else the original run's."""
    attempt = current_attempt(record, state["attempt"])
    return attempt.evidence or record.evidence or Evidence()


def next_attempt(state: HealState, settings: Settings, attempt: Attempt, *, analyzed_run: int, feedback: str,
                 base_spark: dict[str, Any] | None = None, analyzed_in: str = "") -> Command:
    """After a failed attempt: the next one, reading `analyzed_run`'s logs (in the environment
    `analyzed_in`; "": the incident's own) and told `feedback`, or, when `max_attempts` are used up,
    escalation with the last attempt's verdict as the reason. The next fix is proven before it is
    promoted again (with environments)."""
    if attempt.number >= settings.max_attempts:
        return Command(goto="escalate", update={
            "reason": f"{settings.max_attempts} attempts used up; the last one: {attempt.verdict}"})
    update: dict[str, Any] = {
        "attempt": attempt.number + 1,
        "analyzed_run_id": analyzed_run,
        "analyzed_in": analyzed_in,
        "deploy_in": "",
        "feedback": feedback,
        # the next patch starts from the code last tried (the checkpoint's copy; the record's is redacted)
        "base_code": state.get("fixed_code") if state.get("fixed_code") is not None else state.get("base_code"),
    }
    if base_spark is not None:
        update["base_spark"] = base_spark
    return Command(goto="log_fetch", update=update)


def apply_spark_changes(spark: dict[str, Any], patch: Patch) -> dict[str, Any]:
    """The job's spark section with the patch's settings and conf applied (a new dict)."""
    result = copy.deepcopy(spark)
    result.update(patch.spark_changes)
    if patch.conf_changes:
        result["conf"] = {**(result.get("conf") or {}), **patch.conf_changes}
    return result

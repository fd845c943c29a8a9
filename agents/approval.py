"""approval: pause before redeploy until a human approves or rejects — every fix in `HEAL_MODE=approve`,
and in `auto` a fix the data could not prove (no last good output to compare with) and a rule's fix
whose applicability `HEAL_AUTO_APPLY` leaves out (e.g. `changes-results`).

The pause is a LangGraph `interrupt`: the incident's checkpoint waits, across restarts, for
`Command(resume={"approved": bool, "by": str, "reason": str})`.
"""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END
from langgraph.types import Command

from agents.config import Settings
from agents.record import IncidentRecord, Patch
from agents.stage import ask_person, current_attempt
from agents.state import Deps, HealState


def approval(state: HealState, deps: Deps, record: IncidentRecord) -> Command[Literal["redeploy", "__end__"]]:
    attempt = current_attempt(record, state["attempt"])
    if not needs_approval(deps.settings, attempt.patch, attempt.unproven):
        return Command(goto="redeploy")
    decision = ask_person(deps, record, attempt.unproven, {
        "attempt": attempt.number, "patch_kind": attempt.patch.kind if attempt.patch else None})
    if decision.approved:
        attempt.verdict = f"approved by {decision.by}"
        return Command(goto="redeploy")
    attempt.verdict = f"rejected by {decision.by}"
    record.state = "rejected"
    record.reason = f"the fix for attempt {attempt.number} was rejected by {decision.by}: {decision.reason}"
    return Command(goto=END, update={"outcome": "rejected", "reason": record.reason})


def needs_approval(settings: Settings, patch: Patch | None, unproven: str = "") -> bool:
    """Approve mode pauses every fix; auto mode pauses a fix the data could not prove (`unproven`: no
    output had a last good one to compare with) and a rule's fix whose applicability it does not
    apply on its own (HEAL_AUTO_APPLY)."""
    if settings.heal_mode == "approve" or unproven:
        return True
    return patch is not None and patch.applicability is not None and patch.applicability not in settings.auto_apply


def escalate(state: HealState, deps: Deps, record: IncidentRecord) -> Command[Literal["__end__"]]:
    """Hands the incident to a human, with the reason our code decided on."""
    record.state = "escalated"
    record.reason = state.get("reason") or "the healer could not fix this failure"
    return Command(goto=END, update={"outcome": "escalated", "reason": record.reason})

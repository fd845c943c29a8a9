"""The recovery action of an attempt: the state a policy sees, built from the incident and the run
history, and the policy's decision under the safety rules (`agents/policy/decision.py`), kept on the
attempt's record. Patch calls `choose` once per attempt, after diagnosis.
"""

from __future__ import annotations

import dataclasses
import logging

from sqlalchemy.exc import SQLAlchemyError

from agents.history.rows import static_action
from agents.policy.decision import Decision, PolicyState, decide_safely
from agents.record import Attempt, Diagnosis, IncidentRecord, PolicyChoice
from agents.state import Deps

log = logging.getLogger("healer")


def action_of(attempt: Attempt) -> str:
    """The action an earlier attempt took: its policy's choice, or what the static order did before
    choices were recorded."""
    return attempt.policy.action if attempt.policy is not None else static_action(attempt)


def policy_state(record: IncidentRecord, attempt: Attempt, diagnosis: Diagnosis, rule_fix: str | None,
                 deps: Deps) -> PolicyState:
    """What the policy knows now. The job's past comes from the run history; when the history cannot be
    read the state says "no history" (0 failures, nothing worked) rather than stopping the heal."""
    settings = deps.settings
    earlier = [a for a in record.attempts if a.number < attempt.number]
    reruns = sum(1 for a in earlier if a.patch is not None and a.patch.kind == "rerun")
    recent, worked, escalated = 0, None, False
    if deps.history is not None:
        try:
            past = deps.history.job_history(record.job)
            recent, worked, escalated = past.recent_failures, past.last_worked, past.last_escalated
        except SQLAlchemyError as exc:
            log.warning("incident %s: the run history could not be read (%s); choosing without it",
                        record.incident_id, type(exc).__name__)
    evidence = attempt.evidence or record.evidence
    return PolicyState(
        category=diagnosis.category, condition=evidence.error_class if evidence else None,
        attempt=attempt.number, attempts_left=max(settings.max_attempts - attempt.number, 0),
        rule_fix=rule_fix, model=deps.llm is not None, reruns_left=max(settings.max_reruns - reruns, 0),
        recent_failures=recent, last_worked=worked, last_escalated=escalated,
        tried=tuple(action_of(a) for a in earlier))


def choose(state: PolicyState, deps: Deps, attempt: Attempt) -> Decision:
    """The policy's decision, safety rules applied, written on the attempt."""
    decision = decide_safely(deps.policy, state)
    attempt.policy = PolicyChoice(action=decision.action.value, policy=decision.policy, reason=decision.reason,
                                  q_values=dict(decision.q_values), overridden=decision.overridden,
                                  state=state_dict(state))
    return decision


def state_dict(state: PolicyState) -> dict:
    """A state as plain JSON (records, the run history's experience)."""
    values = dataclasses.asdict(state)
    values["tried"] = list(state.tried)
    return values


def state_of(values: dict) -> PolicyState:
    """`state_dict`'s inverse; unknown keys (a newer record) are ignored."""
    names = {f.name for f in dataclasses.fields(PolicyState)}
    known = {k: v for k, v in values.items() if k in names}
    known["tried"] = tuple(known.get("tried") or ())
    return PolicyState(**known)

"""The recovery decision: what the healer knows about a failure (state), what it may do (actions),
and what it chose and why (decision). One interface for the real healer and the fleet simulator
(`bench/fleet`), so a policy trained or evaluated in the simulator is the policy the healer runs.

Safety comes before any policy: `allowed_actions` is the set our code permits in a state (data
failures only escalate, a rule's fix only where a rule has one, the model only where one is
configured, re-runs only under HEAL_MAX_RERUNS, nothing but escalation once attempts are used up),
and `decide_safely` replaces a choice outside it with the static order's, saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class Action(StrEnum):
    RERUN = "rerun"  # the same job again, unchanged, at once
    RERUN_BACKOFF = "rerun-backoff"  # the same job again after HEAL_RERUN_BACKOFF_S, doubled per earlier re-run
    RAISE_RESOURCES = "raise-resources"  # driver and executor memory doubled, within the guard's caps
    RULE_FIX = "rule-fix"  # the matching catalog rule's deterministic fix (whatever its kind)
    MODEL_PATCH = "model-patch"  # the model's patch, its HEAL_CANDIDATES candidates tried in the sandbox
    ESCALATE = "escalate"  # to a human, now


ACTIONS: tuple[Action, ...] = tuple(Action)
RERUNS = (Action.RERUN, Action.RERUN_BACKOFF)


@dataclass(frozen=True)
class PolicyState:
    """What is known when an attempt's action is chosen: after diagnosis, before any patch."""

    category: str  # the diagnosis' category: code | config | transient | data | unknown
    condition: str | None  # Spark's error condition (error class) the evidence names, if any
    attempt: int  # this attempt's number, from 1
    attempts_left: int  # attempts after this one (HEAL_MAX_ATTEMPTS − attempt)
    rule_fix: str | None  # the kind of fix the matching rule offers: code | config | rerun; None: none
    model: bool  # a model is configured
    reruns_left: int  # unchanged re-runs still allowed in this incident (HEAL_MAX_RERUNS − done)
    recent_failures: int  # failed runs among the job's last HISTORY_WINDOW finished runs (run history)
    last_worked: str | None  # the Action that healed the job's last healed incident, if any
    last_escalated: bool  # the job's last finished incident was escalated
    tried: tuple[str, ...] = ()  # the Actions of this incident's earlier attempts, in order


HISTORY_WINDOW = 10  # runs of a job that `recent_failures` counts over


@dataclass(frozen=True)
class Decision:
    action: Action
    policy: str  # static | learned
    reason: str  # in words, for the record and the dashboard
    q_values: dict[str, float] = field(default_factory=dict)  # a learned policy's estimates, by action
    overridden: str = ""  # the safety rule that replaced the policy's own choice, when one did


class Policy(Protocol):
    name: str

    def decide(self, state: PolicyState) -> Decision: ...


def allowed_actions(state: PolicyState) -> tuple[Action, ...]:
    """The actions our code permits in `state`, whatever a policy prefers. Escalation always is."""
    if state.category == "data":
        return (Action.ESCALATE,)  # missing or bad data: no change of ours heals it
    allowed: list[Action] = []
    if state.reruns_left > 0:
        allowed += RERUNS
    allowed.append(Action.RAISE_RESOURCES)
    if state.rule_fix is not None:
        allowed.append(Action.RULE_FIX)
    if state.model:
        allowed.append(Action.MODEL_PATCH)
    allowed.append(Action.ESCALATE)
    return tuple(allowed)


def static_action(state: PolicyState) -> tuple[Action, str]:
    """The fixed order the healer has always followed: the rule's fix, else the model's, else a human."""
    if state.category == "data":
        return Action.ESCALATE, "a data failure: escalated (no change of ours heals missing or bad data)"
    if state.rule_fix is not None and (state.rule_fix != "rerun" or state.reruns_left > 0):
        return Action.RULE_FIX, f"the matching rule's fix ({state.rule_fix}) comes first"
    if state.rule_fix == "rerun":  # the rule's re-run is used up
        if state.model:
            return Action.MODEL_PATCH, "the rule's fix is a re-run and the re-runs are used up: the model proposes one"
        return Action.ESCALATE, "the rule's fix is a re-run, the re-runs are used up, and no model is configured"
    if state.model:
        return Action.MODEL_PATCH, "no rule fix applies: the model proposes one"
    return Action.ESCALATE, "no rule fix applies and no model is configured"


class StaticPolicy:
    name = "static"

    def decide(self, state: PolicyState) -> Decision:
        action, reason = static_action(state)
        return Decision(action=action, policy=self.name, reason=reason)


def decide_safely(policy: Policy, state: PolicyState) -> Decision:
    """The policy's decision, unless our safety rules forbid it: then the static order's, saying why."""
    decision = policy.decide(state)
    allowed = allowed_actions(state)
    if decision.action in allowed:
        return decision
    action, reason = static_action(state)
    if action not in allowed:
        action, reason = Action.ESCALATE, "no permitted action left"
    why = _forbidden(decision.action, state)
    return Decision(action=action, policy=decision.policy, reason=reason, q_values=decision.q_values,
                    overridden=f"{decision.policy} policy chose {decision.action.value}, not permitted: {why}")


def _forbidden(action: Action, state: PolicyState) -> str:
    if state.category == "data":
        return "data failures are escalated"
    if action in RERUNS:
        return "no re-runs left (HEAL_MAX_RERUNS)"
    if action is Action.RULE_FIX:
        return "no rule has a fix for this failure"
    if action is Action.MODEL_PATCH:
        return "no model is configured"
    return "not allowed here"

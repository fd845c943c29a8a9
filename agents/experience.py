"""What a finished incident teaches a recovery policy: one (state, action, reward, next state) step per
attempt whose action a policy chose, priced by `agents.policy.reward` exactly as the fleet simulator
prices its steps. The healer stores them in the run history and, with `HEAL_POLICY=learned`, updates
the policy's Q-values with them (`agents/healer.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.history.rows import cluster_seconds, model_cost
from agents.policy.reward import DEFAULT_WEIGHTS, Outcome, RewardWeights, reward
from agents.record import IncidentRecord

LEARNED_FROM = ("healed", "escalated", "rejected")  # how an incident must end to teach anything


@dataclass(frozen=True)
class Step:
    attempt: int
    state: dict  # `agents.choice.state_dict` of the PolicyState the action was chosen in
    action: str
    reward: float
    next_state: dict | None  # the next attempt's state; None: the incident ended after this step


def steps(record: IncidentRecord, weights: RewardWeights = DEFAULT_WEIGHTS) -> list[Step]:
    """The incident's steps, when it ended healed, escalated or rejected (a rejected fix is a human's
    call after the healer's attempts, priced like an escalation); none otherwise. Attempts without a
    policy choice (diagnosis escalated first, or made before choices were recorded) teach nothing."""
    if record.state not in LEARNED_FROM:
        return []
    chosen = [a for a in record.attempts if a.policy is not None and a.policy.state]
    found: list[Step] = []
    for i, attempt in enumerate(chosen):
        last = i == len(chosen) - 1
        tokens, seconds = model_cost(record, attempt.number)
        ran = sum(1 for a in record.attempts if a.number <= attempt.number and a.fix_job is not None)
        outcome = Outcome(
            action=attempt.policy.action,  # type: ignore[union-attr]
            healed=last and record.state == "healed",
            escalated=last and record.state != "healed",
            attempts_spent=ran if last and record.state != "healed" else 0,
            cluster_minutes=cluster_seconds(attempt) / 60.0, model_seconds=seconds, model_tokens=tokens)
        found.append(Step(attempt=attempt.number, state=dict(attempt.policy.state),  # type: ignore[union-attr]
                          action=attempt.policy.action, reward=round(reward(outcome, weights), 4),  # type: ignore[union-attr]
                          next_state=None if last else dict(chosen[i + 1].policy.state)))  # type: ignore[union-attr]
    return found

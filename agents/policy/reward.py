"""The reward of one recovery step: the one function the fleet simulator trains with and the healer's
online updates learn from, so the policy learns in production what it learned in simulation.

A step is one attempt's action and what followed it, up to the next decision or the incident's end:

- **+ heal** for a verified heal (the fix's data compared with the last good output);
- **− per cluster-minute** of every Spark run the step started (pre-flights, checks on the sandbox,
  fix runs, measurements, and the run of a human's fix after an escalation);
- **− per model-second** and **− per model token** of the model's calls;
- **− false heal** (large) when the step was declared healed but its output is wrong;
- **− escalation**: a human's time, whenever the incident is escalated (chosen, or the attempts used
  up); **− per wasted attempt** on top, for every attempt the incident spent before escalating.
  Escalating at once costs only the first; three failed attempts and then a human cost the most.

`Outcome` is what the caller measured; `RewardWeights` the prices (the simulator reads them from its
parameters file, the artefact keeps the ones the policy was trained with).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class RewardWeights:
    heal: float = 10.0  # a verified heal
    cluster_minute: float = 0.05  # per minute of Spark runs (a 20-minute job's fix run: −1)
    model_second: float = 0.01  # per second waiting on the model
    model_token: float = 0.0001  # per token sent or received (1,000 tokens: −0.1)
    false_heal: float = 50.0  # a wrong fix declared healed
    escalation: float = 3.0  # a human's time
    wasted_attempt: float = 1.0  # per attempt spent before an escalation

    def __post_init__(self) -> None:
        negative = [f.name for f in fields(self) if getattr(self, f.name) < 0]
        if negative:
            raise ValueError(f"reward weights are magnitudes, never negative: {', '.join(negative)}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RewardWeights:
        """The weights of a mapping (a parameters file, an artefact); unknown names are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown reward weights: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**{name: float(value) for name, value in values.items()})

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


DEFAULT_WEIGHTS = RewardWeights()


@dataclass(frozen=True)
class Outcome:
    """What one step cost and how it ended."""

    action: str  # the Action taken (its value)
    healed: bool = False  # the step ended in a verified heal
    false_heal: bool = False  # ... that was wrong (verification missed it)
    escalated: bool = False  # the incident was escalated after this step (chosen, or attempts used up)
    attempts_spent: int = 0  # fix attempts the incident spent before that escalation (0: escalated at once)
    cluster_minutes: float = 0.0
    model_seconds: float = 0.0
    model_tokens: int = 0

    def __post_init__(self) -> None:
        if self.healed and self.escalated:
            raise ValueError("a step ends healed or escalated, not both")
        if self.false_heal and not self.healed:
            raise ValueError("a false heal is a step declared healed")
        if min(self.attempts_spent, self.cluster_minutes, self.model_seconds, self.model_tokens) < 0:
            raise ValueError("attempts, minutes, seconds and tokens are never negative")


def reward(outcome: Outcome, weights: RewardWeights = DEFAULT_WEIGHTS) -> float:
    """The step's reward (see the module's docstring)."""
    value = -(weights.cluster_minute * outcome.cluster_minutes + weights.model_second * outcome.model_seconds
              + weights.model_token * outcome.model_tokens)
    if outcome.false_heal:
        value -= weights.false_heal
    elif outcome.healed:
        value += weights.heal
    if outcome.escalated:
        value -= weights.escalation + weights.wasted_attempt * outcome.attempts_spent
    return value

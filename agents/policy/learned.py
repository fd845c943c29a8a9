"""The learned recovery policy: tabular Q-learning over a discretized `PolicyState`.

**State key** (`state_key`): the failure's category, the kind of fix its rule offers, the error
condition's family (its first part, when no rule has a fix: with a rule the fix kind says more), the
attempt and the attempts left, whether re-runs are left, the job's recent failures (bucketed), what
healed its last incident, whether its last incident was escalated, the action this incident tried
last, and whether a model is configured. Everything `allowed_actions` looks at is in the key, so the
safety mask is the same for every state of a key.

**Choice** (`LearnedPolicy.decide`): the action of highest Q among those learned in the state's key
with at least `min_visits` visits, explained in words with its Q-value and the job history that
shaped it. It keeps the static order, saying so, in a key never seen in training, where the static
action was tried fewer than `min_visits` times (no comparison was made), and where no action beats
the static one by at least `margin` (a difference within the estimates' noise). The policy does not
mask its own choice: `decide_safely` does, so a table that prefers a forbidden action (an artefact
edited by hand, a key whose mask changed) is overridden and the record says why.

**Exploration** is ε-greedy among the *permitted* actions, bounded by `MAX_EPSILON` and 0 unless a
caller asks (the simulator's training does; production does not).

**Learning** (`LearnedPolicy.update`): Q(s, a) += α (r + γ max Q(s', ·) − Q(s, a)), with α the
larger of `learning_rate` and 1/visits (a running mean until the visits reach 1/learning_rate), γ
`discount` (1: an incident is at most HEAL_MAX_ATTEMPTS steps, and the reward's costs say what time
is worth), and no bootstrap when the incident ended (next state None). The reward is
`agents.policy.reward.reward`, the same in the simulator and in production.
"""

from __future__ import annotations

import random
from functools import lru_cache

from agents.policy.decision import (
    ACTIONS,
    HISTORY_WINDOW,
    Action,
    Decision,
    PolicyState,
    allowed_actions,
    static_action,
)

KEY_VERSION = 1  # bump when state_key changes: artefacts of another version are refused
MAX_EPSILON = 0.3  # exploration is never above this
MIN_VISITS = 5  # visits of a (state, action) before production trusts its Q-value
MARGIN = 0.5  # production leaves the static order only for an action whose Q beats the static one's by this
LEARNING_RATE = 0.005  # the step size's floor: a running mean over the first 200 visits
DISCOUNT = 1.0

Table = dict[str, dict[str, list[float]]]  # key → action value → [Q, visits]
_BY_VALUE = {a.value: a for a in ACTIONS}
_ORDER = {a.value: i for i, a in enumerate(ACTIONS)}


def failures_bucket(recent_failures: int) -> str:
    """0 or 1 (this failure alone), 2-3, 4 or more."""
    return "0-1" if recent_failures <= 1 else "2-3" if recent_failures <= 3 else "4+"


def condition_family(condition: str | None) -> str:
    """`UNRESOLVED_COLUMN.WITH_SUGGESTION` → `UNRESOLVED_COLUMN`; None → `none`."""
    return condition.split(".", 1)[0] if condition else "none"


@lru_cache(maxsize=8192)
def state_key(state: PolicyState) -> str:
    """The discretized state (see the module's docstring), e.g.
    ``transient|rerun|-|a2/1|r1|f0-1|w:raise-resources|e0|t:rerun|m1``."""
    family = "-" if state.rule_fix else condition_family(state.condition)
    return "|".join((
        state.category,
        state.rule_fix or "none",
        family,
        f"a{state.attempt}/{state.attempts_left}",
        "r1" if state.reruns_left > 0 else "r0",
        f"f{failures_bucket(state.recent_failures)}",
        f"w:{state.last_worked or '-'}",
        "e1" if state.last_escalated else "e0",
        f"t:{state.tried[-1] if state.tried else '-'}",
        "m1" if state.model else "m0",
    ))


class LearnedPolicy:
    """A Q-table as a `Policy` (see the module's docstring)."""

    name = "learned"

    def __init__(self, table: Table | None = None, *, epsilon: float = 0.0, learning_rate: float = LEARNING_RATE,
                 discount: float = DISCOUNT, min_visits: int = MIN_VISITS, margin: float = MARGIN,
                 seed: int | None = None) -> None:
        if not 0.0 <= epsilon <= MAX_EPSILON:
            raise ValueError(f"exploration ε must be within 0 and {MAX_EPSILON}, not {epsilon}")
        if not 0.0 < learning_rate <= 1.0:
            raise ValueError(f"the learning rate must be in (0, 1], not {learning_rate}")
        if not 0.0 <= discount <= 1.0:
            raise ValueError(f"the discount must be in [0, 1], not {discount}")
        if min_visits < 1:
            raise ValueError(f"min_visits must be at least 1, not {min_visits}")
        if margin < 0:
            raise ValueError(f"the margin must not be negative, not {margin}")
        self.table: Table = table if table is not None else {}
        self.epsilon = epsilon
        self.learning_rate = learning_rate
        self.discount = discount
        self.min_visits = min_visits
        self.margin = margin
        self._rng = random.Random(seed)

    def q_values(self, state: PolicyState) -> dict[str, float]:
        """The learned estimates of the state's key with at least `min_visits` visits, by action."""
        return self._trusted(self.table.get(state_key(state)))

    def visits(self, state: PolicyState) -> int:
        return int(sum(visits for _, visits in self.table.get(state_key(state), {}).values()))

    def _trusted(self, entries: dict[str, list[float]] | None) -> dict[str, float]:
        if not entries:
            return {}
        return {action: q for action, (q, visits) in entries.items() if visits >= self.min_visits}

    def decide(self, state: PolicyState) -> Decision:
        entries = self.table.get(state_key(state))
        q_values = self._trusted(entries)
        if self.epsilon > 0.0 and self._rng.random() < self.epsilon:
            permitted = allowed_actions(state)
            action = permitted[self._rng.randrange(len(permitted))]
            return Decision(action=action, policy=self.name,
                            reason=f"exploring (ε={self.epsilon:g}): {action.value}, at random among the "
                                   f"{len(permitted)} permitted actions")
        static, why = static_action(state)
        if static.value not in q_values:  # never leave the static order on a comparison not made
            seen = int(sum(visits for _, visits in entries.values())) if entries else 0
            unseen = ("a state never seen in training" if seen == 0 else
                      f"a state whose static choice ({static.value}) was tried fewer than {self.min_visits} times "
                      "in training")
            return Decision(action=static, policy=self.name, reason=f"{unseen}: the static order: {why}")
        best = second = None
        for action, q in q_values.items():  # the highest Q; on a tie, the first in ACTIONS' order
            if best is None or (q, -_ORDER[action]) > (q_values[best], -_ORDER[best]):
                best, second = action, best
            elif second is None or (q, -_ORDER[action]) > (q_values[second], -_ORDER[second]):
                second = action
        assert best is not None
        if best != static.value and q_values[best] - q_values[static.value] < self.margin:
            return Decision(action=static, policy=self.name, q_values=_rounded(q_values), reason=(
                f"Q({best})={q_values[best]:+.1f} beats Q({static.value})={q_values[static.value]:+.1f} by less "
                f"than the margin {self.margin:g}: the static order: {why}"))
        reason = f"Q({best})={q_values[best]:+.1f} best of {len(q_values)}"
        if second is not None:
            reason += f" (next: Q({second})={q_values[second]:+.1f})"
        context = _context(state)
        return Decision(action=_BY_VALUE[best], policy=self.name, q_values=_rounded(q_values),
                        reason=reason + (f"; {context}" if context else ""))

    def value(self, state: PolicyState) -> float:
        """max Q of the permitted actions learned in the state's key (0 when none is)."""
        entries = self.table.get(state_key(state), {})
        permitted = {a.value for a in allowed_actions(state)}
        known = [q for action, (q, visits) in entries.items() if action in permitted and visits > 0]
        return max(known) if known else 0.0

    def update(self, state: PolicyState, action: Action | str, reward: float, next_state: PolicyState | None) -> float:
        """One Q-learning step from an observed (state, action, reward, next state); next_state None
        when the incident ended (healed or escalated). Returns the new Q(state, action)."""
        name = action.value if isinstance(action, Action) else Action(action).value
        entry = self.table.setdefault(state_key(state), {}).setdefault(name, [0.0, 0])
        entry[1] += 1
        alpha = max(self.learning_rate, 1.0 / entry[1])
        target = reward + (self.discount * self.value(next_state) if next_state is not None else 0.0)
        entry[0] += alpha * (target - entry[0])
        return entry[0]

    def explore(self, epsilon: float) -> None:
        """Sets the exploration rate (training; bounded by MAX_EPSILON)."""
        if not 0.0 <= epsilon <= MAX_EPSILON:
            raise ValueError(f"exploration ε must be within 0 and {MAX_EPSILON}, not {epsilon}")
        self.epsilon = epsilon



def _rounded(q_values: dict[str, float]) -> dict[str, float]:
    return {action: round(q, 3) for action, q in q_values.items()}


def _context(state: PolicyState) -> str:
    """The job history and the incident's course that the state key carried into the choice."""
    bits = []
    if state.last_worked:
        bits.append(f"this job's last heal was {state.last_worked}")
    if state.last_escalated:
        bits.append("its last incident was escalated")
    if state.recent_failures > 1:
        bits.append(f"{state.recent_failures} of its last {HISTORY_WINDOW} runs failed")
    if state.tried:
        bits.append(f"this incident already tried {', '.join(state.tried)}")
    return "; ".join(bits)

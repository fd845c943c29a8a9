"""The learned policy: its state key, its choices and their reasons, the safety rules over it, and
Q-learning on small problems whose answer is known."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from agents.policy.decision import Action, PolicyState, StaticPolicy, allowed_actions, decide_safely
from agents.policy.learned import MAX_EPSILON, LearnedPolicy, state_key
from agents.policy.reward import Outcome, reward

TRANSIENT = PolicyState(category="transient", condition=None, attempt=1, attempts_left=2, rule_fix="rerun",
                        model=True, reruns_left=2, recent_failures=1, last_worked=None, last_escalated=False)
DATA = PolicyState(category="data", condition="PATH_NOT_FOUND", attempt=1, attempts_left=2, rule_fix=None,
                   model=True, reruns_left=2, recent_failures=1, last_worked=None, last_escalated=False)


def _table(state: PolicyState, **q: float) -> dict:
    return {state_key(state): {action.replace("_", "-"): [value, 50] for action, value in q.items()}}


def test_the_state_key_keeps_what_the_safety_mask_reads() -> None:
    keys = {state_key(s) for s in (TRANSIENT, replace(TRANSIENT, reruns_left=0), replace(TRANSIENT, model=False),
                                    replace(TRANSIENT, rule_fix=None), replace(TRANSIENT, category="data"))}
    assert len(keys) == 5
    assert state_key(replace(TRANSIENT, condition="X.Y")) == state_key(TRANSIENT)  # a rule's fix kind says more
    no_rule = replace(TRANSIENT, category="code", rule_fix=None)
    assert state_key(replace(no_rule, condition="UNRESOLVED_COLUMN.WITH_SUGGESTION")) == \
        state_key(replace(no_rule, condition="UNRESOLVED_COLUMN.WITHOUT_SUGGESTION")) != state_key(no_rule)
    assert state_key(replace(TRANSIENT, recent_failures=2)) == state_key(replace(TRANSIENT, recent_failures=3))
    assert state_key(replace(TRANSIENT, tried=("rerun",))) != state_key(replace(TRANSIENT, tried=("raise-resources",)))


def test_the_best_learned_action_is_chosen_with_its_q_values_and_reasons() -> None:
    state = replace(TRANSIENT, last_worked="raise-resources", recent_failures=3)
    policy = LearnedPolicy(_table(state, raise_resources=3.1, rule_fix=1.0, rerun=0.5, escalate=-3.0))
    decision = policy.decide(state)
    assert decision.action is Action.RAISE_RESOURCES and decision.policy == "learned"
    assert decision.q_values == {"raise-resources": 3.1, "rule-fix": 1.0, "rerun": 0.5, "escalate": -3.0}
    assert decision.reason.startswith("Q(raise-resources)=+3.1 best of 4 (next: Q(rule-fix)=+1.0)")
    assert "this job's last heal was raise-resources" in decision.reason
    assert "3 of its last 10 runs failed" in decision.reason
    assert decide_safely(policy, state) == decision  # permitted: nothing overrides it


def test_a_state_never_seen_falls_back_to_the_static_order_saying_so() -> None:
    policy = LearnedPolicy(_table(TRANSIENT, raise_resources=3.0, rule_fix=1.0))
    other = replace(TRANSIENT, category="code", rule_fix="code")
    decision = policy.decide(other)
    assert decision.action is Action.RULE_FIX and decision.q_values == {}
    assert decision.reason.startswith("a state never seen in training: the static order: the matching rule's fix")


def test_rarely_tried_or_barely_better_actions_leave_the_static_order_alone() -> None:
    table = _table(TRANSIENT, raise_resources=3.0, rule_fix=1.0)
    table[state_key(TRANSIENT)]["rule-fix"][1] = 2  # the static action tried twice: no comparison made
    decision = LearnedPolicy(table).decide(TRANSIENT)
    assert decision.action is Action.RULE_FIX and "tried fewer than 5 times" in decision.reason
    close = LearnedPolicy(_table(TRANSIENT, raise_resources=1.3, rule_fix=1.0), margin=0.5).decide(TRANSIENT)
    assert close.action is Action.RULE_FIX and "by less than the margin 0.5" in close.reason
    assert LearnedPolicy(_table(TRANSIENT, raise_resources=1.3, rule_fix=1.0), margin=0.0).decide(
        TRANSIENT).action is Action.RAISE_RESOURCES


def test_a_table_that_prefers_a_forbidden_action_is_overridden() -> None:
    no_model = replace(TRANSIENT, model=False, reruns_left=0)
    policy = LearnedPolicy(_table(no_model, model_patch=9.0, rerun=8.0, rule_fix=1.0, escalate=-3.0))
    assert policy.decide(no_model).action is Action.MODEL_PATCH  # the table's own preference
    decision = decide_safely(policy, no_model)
    assert decision.action in allowed_actions(no_model)
    assert decision.action is Action.ESCALATE  # static: the rule's re-runs are used up and there is no model
    assert decision.overridden == "learned policy chose model-patch, not permitted: no model is configured"
    assert decision.q_values["model-patch"] == 9.0


def test_data_failures_escalate_whatever_the_table_says() -> None:
    policy = LearnedPolicy(_table(DATA, rerun=9.0, rule_fix=8.0, escalate=-3.0))
    decision = decide_safely(policy, DATA)
    assert decision.action is Action.ESCALATE
    assert decision.overridden == "learned policy chose rerun, not permitted: data failures are escalated"


def test_exploration_is_off_by_default_bounded_and_only_among_permitted_actions() -> None:
    table = _table(TRANSIENT, rerun=2.0, rule_fix=1.0)
    assert LearnedPolicy().epsilon == 0.0
    greedy = LearnedPolicy(table, seed=3)
    assert {greedy.decide(TRANSIENT).action for _ in range(300)} == {Action.RERUN}
    with pytest.raises(ValueError, match="within 0 and"):
        LearnedPolicy(epsilon=MAX_EPSILON + 0.01)
    with pytest.raises(ValueError, match="within 0 and"):
        greedy.explore(1.0)
    exploring = LearnedPolicy(table, epsilon=MAX_EPSILON, seed=3)
    chosen = [exploring.decide(TRANSIENT) for _ in range(300)]
    assert {d.action for d in chosen} == set(allowed_actions(TRANSIENT))
    assert any(d.reason.startswith("exploring (ε=0.3)") for d in chosen)
    assert {exploring.decide(DATA).action for _ in range(100)} == {Action.ESCALATE}
    no_model = replace(TRANSIENT, model=False)
    assert Action.MODEL_PATCH not in {exploring.decide(no_model).action for _ in range(300)}


def test_update_bootstraps_from_the_next_state_and_not_after_the_end() -> None:
    later = replace(TRANSIENT, attempt=2, attempts_left=1, tried=("rerun",))
    policy = LearnedPolicy(learning_rate=0.5, discount=1.0)
    assert policy.update(later, Action.RAISE_RESOURCES, 8.0, None) == 8.0  # first visit: the target itself
    assert policy.update(TRANSIENT, Action.RERUN, -1.0, later) == 7.0  # −1 + max Q(later) = −1 + 8
    assert policy.update(later, "raise-resources", 4.0, None) == 6.0  # α = max(0.5, 1/2): halfway to 4
    discounted = LearnedPolicy(learning_rate=0.5, discount=0.5, table={})
    discounted.update(later, Action.RAISE_RESOURCES, 8.0, None)
    assert discounted.update(TRANSIENT, Action.RERUN, 0.0, later) == 4.0
    assert policy.table[state_key(later)]["raise-resources"][1] == 2  # visits counted


def _never_clears(policy: LearnedPolicy, rng: random.Random, clears: float) -> float:
    """A job's transient incident, by hand: a re-run clears with `clears`; more memory always works."""
    state, total = TRANSIENT, 0.0
    for attempt in (1, 2, 3):
        action = decide_safely(policy, state).action
        if action is Action.ESCALATE:
            outcome = Outcome(action.value, escalated=True, attempts_spent=attempt - 1)
        else:
            raised = action is Action.RAISE_RESOURCES
            healed = raised or (action in (Action.RERUN, Action.RERUN_BACKOFF, Action.RULE_FIX)
                                and rng.random() < clears)
            last = attempt == 3 and not healed
            outcome = Outcome(action.value, healed=healed, escalated=last, attempts_spent=attempt,
                              cluster_minutes=30.0 if raised else 20.0, model_seconds=0.0)
        value = reward(outcome)
        total += value
        if outcome.healed or outcome.escalated:
            policy.update(state, action, value, None)
            return total
        reruns = state.reruns_left - (action in (Action.RERUN, Action.RERUN_BACKOFF, Action.RULE_FIX))
        following = replace(state, attempt=attempt + 1, attempts_left=2 - attempt, reruns_left=reruns,
                            tried=(*state.tried, action.value))
        policy.update(state, action, value, following)
        state = following
    raise AssertionError("an incident ends by its third attempt")


RERUNS = {Action.RERUN, Action.RERUN_BACKOFF, Action.RULE_FIX}  # the rule's fix of a transient is a re-run


@pytest.mark.parametrize(("clears", "learned"), [(0.0, {Action.RAISE_RESOURCES}), (1.0, RERUNS)])
def test_q_learning_learns_what_works_for_a_job(clears: float, learned: set[Action]) -> None:
    """Transients that never clear on a re-run: more memory at once; ones that always do: a re-run,
    cheaper than more memory, whatever exploration tried."""
    policy = LearnedPolicy(epsilon=0.3, seed=5, min_visits=1, margin=0.0)
    rng = random.Random(9)
    for _ in range(600):
        _never_clears(policy, rng, clears)
    policy.explore(0.0)
    assert decide_safely(policy, TRANSIENT).action in learned
    assert decide_safely(StaticPolicy(), TRANSIENT).action is Action.RULE_FIX  # the static order never learns

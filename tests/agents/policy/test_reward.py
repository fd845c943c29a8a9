"""The one reward: its signs and its order of preference."""

from __future__ import annotations

import pytest

from agents.policy.reward import DEFAULT_WEIGHTS, Outcome, RewardWeights, reward


def test_a_verified_heal_is_worth_more_than_its_costs() -> None:
    assert reward(Outcome("rule-fix", healed=True)) == DEFAULT_WEIGHTS.heal > 0
    cheap = reward(Outcome("rule-fix", healed=True, cluster_minutes=10, model_seconds=5, model_tokens=800))
    dear = reward(Outcome("model-patch", healed=True, cluster_minutes=60, model_seconds=90, model_tokens=4000))
    assert 0 < dear < cheap < DEFAULT_WEIGHTS.heal


def test_each_cost_is_a_penalty() -> None:
    for costs in ({"cluster_minutes": 1.0}, {"model_seconds": 1.0}, {"model_tokens": 1}):
        assert reward(Outcome("rerun", **costs)) < 0
    assert reward(Outcome("rerun", cluster_minutes=20)) == pytest.approx(-20 * DEFAULT_WEIGHTS.cluster_minute)


def test_a_false_heal_is_far_worse_than_an_escalation() -> None:
    false_heal = reward(Outcome("model-patch", healed=True, false_heal=True))
    assert false_heal == -DEFAULT_WEIGHTS.false_heal
    assert false_heal < reward(Outcome("model-patch", escalated=True, attempts_spent=3)) < 0


def test_escalating_at_once_costs_a_little_and_after_wasted_attempts_more() -> None:
    at_once = reward(Outcome("escalate", escalated=True, attempts_spent=0))
    after_one = reward(Outcome("escalate", escalated=True, attempts_spent=1))
    after_three = reward(Outcome("model-patch", escalated=True, attempts_spent=3))
    assert 0 > at_once == -DEFAULT_WEIGHTS.escalation > after_one > after_three
    assert after_one - after_three == pytest.approx(2 * DEFAULT_WEIGHTS.wasted_attempt)


def test_outcomes_and_weights_that_make_no_sense_are_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        Outcome("rerun", healed=True, escalated=True)
    with pytest.raises(ValueError, match="declared healed"):
        Outcome("rerun", false_heal=True)
    with pytest.raises(ValueError, match="never negative"):
        Outcome("rerun", cluster_minutes=-1)
    with pytest.raises(ValueError, match="magnitudes"):
        RewardWeights(heal=-1)
    with pytest.raises(ValueError, match="unknown reward weights: bonus"):
        RewardWeights.from_dict({"bonus": 1})
    assert RewardWeights.from_dict({"heal": 5}).heal == 5.0

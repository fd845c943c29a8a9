"""The policy artefact: a round trip, every way a file can be wrong, and the artefact we ship."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from agents.policy.artefact import (
    DEFAULT_PATH,
    FORMAT_VERSION,
    PolicyArtefactError,
    load,
    load_policy,
    policy_id,
    save,
)
from agents.policy.decision import Action, PolicyState, allowed_actions, decide_safely
from agents.policy.learned import KEY_VERSION, LearnedPolicy, state_key

STATE = PolicyState(category="transient", condition=None, attempt=1, attempts_left=2, rule_fix="rerun",
                    model=True, reruns_left=2, recent_failures=1, last_worked="raise-resources",
                    last_escalated=False)


def _policy() -> LearnedPolicy:
    return LearnedPolicy({state_key(STATE): {"raise-resources": [3.25, 40], "rule-fix": [1.5, 60]}},
                         learning_rate=0.02, discount=1.0, min_visits=5, margin=0.5)


def test_a_round_trip_keeps_the_table_its_settings_and_its_training(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    written = save(path, _policy(), {"episodes": 3, "seeds": [1, 2, 3]},
                   created=datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc))
    loaded = load(path)
    assert loaded.policy_id == written.policy_id == policy_id(_policy()) and loaded.policy_id.startswith("sha256:")
    assert loaded.created == "2026-12-01T12:00:00Z" and loaded.training == {"episodes": 3, "seeds": [1, 2, 3]}
    policy = loaded.policy
    assert policy.table == _policy().table and policy.epsilon == 0.0
    assert (policy.learning_rate, policy.discount, policy.min_visits, policy.margin) == (0.02, 1.0, 5, 0.5)
    assert policy.decide(STATE).action is Action.RAISE_RESOURCES
    document = json.loads(path.read_text())
    assert (document["format_version"], document["key_version"]) == (FORMAT_VERSION, KEY_VERSION)
    changed = _policy()
    changed.update(STATE, Action.RULE_FIX, 10.0, None)
    assert policy_id(changed) != loaded.policy_id  # the id is the content's


def test_a_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(PolicyArtefactError, match="no such file.*--write-policy") as caught:
        load(tmp_path / "absent.json")
    assert caught.value.path == tmp_path / "absent.json"


@pytest.mark.parametrize(("edit", "problem"), [
    (lambda text, doc: text[: len(text) // 2], "not JSON"),
    (lambda text, doc: json.dumps([1, 2]), "not a recovery-policy artefact"),
    (lambda text, doc: json.dumps(doc | {"format": "something-else"}), "not a recovery-policy artefact"),
    (lambda text, doc: json.dumps(doc | {"format_version": FORMAT_VERSION + 1}), "format version"),
    (lambda text, doc: json.dumps(doc | {"key_version": KEY_VERSION + 1}), "state key version"),
    (lambda text, doc: json.dumps(doc | {"q_table": {k: {a: [v[0] + 1, v[1]] for a, v in e.items()}
                                                     for k, e in doc["q_table"].items()}}), "does not match its Q-table"),
    (lambda text, doc: json.dumps(doc | {"q_table": {"k": {"jump": [1.0, 2]}}}), "unknown action 'jump'"),
    (lambda text, doc: json.dumps(doc | {"q_table": {"k": {"rerun": ["x", 2]}}}), r"must be \[Q, visits\]"),
    (lambda text, doc: json.dumps(doc | {"learning": {"discount": 1.0}}), "bad learning settings"),
])
def test_a_corrupt_or_foreign_file_is_refused_with_the_reason(tmp_path: Path, edit, problem: str) -> None:
    path = tmp_path / "policy.json"
    save(path, _policy())
    path.write_text(edit(path.read_text(), json.loads(path.read_text())))
    with pytest.raises(PolicyArtefactError, match=problem):
        load(path)


def test_the_shipped_policy_loads_and_its_choices_pass_the_safety_rules() -> None:
    artefact = load(DEFAULT_PATH)
    training = artefact.training
    assert training["episodes"] >= 100 and training["evaluation_fleet"]["jobs"] >= 500
    assert training["evaluation_fleet"]["days"] >= 30 and all(training["evaluation"]["done_when"].values())
    assert set(training["training_seeds"]).isdisjoint({training["evaluation_seed"]})
    policy = load_policy()
    assert policy.epsilon == 0.0 and len(policy.table) > 100
    chosen = set()
    for category, rule_fix in (("transient", "rerun"), ("config", "config"), ("code", "code"), ("code", None),
                               ("unknown", None), ("data", None)):
        for attempt in (1, 2, 3):
            for last_worked in (None, "rule-fix", "raise-resources", "model-patch"):
                for last_escalated in (False, True):
                    state = PolicyState(category=category, condition=None, attempt=attempt,
                                        attempts_left=3 - attempt, rule_fix=rule_fix, model=True,
                                        reruns_left=max(0, 3 - attempt), recent_failures=1,
                                        last_worked=last_worked, last_escalated=last_escalated,
                                        tried=("rule-fix",) * (attempt - 1))
                    decision = decide_safely(policy, state)
                    assert decision.action in allowed_actions(state) and not decision.overridden, decision
                    chosen.add(decision.action)
                    if category == "data":
                        assert decision.action is Action.ESCALATE
    assert Action.RAISE_RESOURCES in chosen and Action.ESCALATE in chosen  # it does more than the static order

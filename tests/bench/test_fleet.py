"""`python -m bench fleet`: the simulator's determinism and fairness, the state it builds for each
decision, its parameters file, and a quick run of the whole command (table, JSON, Markdown, plots)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agents.policy.artefact import load
from agents.policy.decision import HISTORY_WINDOW, Action, Decision, PolicyState, StaticPolicy, decide_safely
from bench.__main__ import main
from bench.errors import BenchUsageError
from bench.fleet.params import load_params
from bench.fleet.sim import LOOKS, fleet_seed, simulate
from bench.fleet.train import train

SMALL = {"jobs": 80, "days": 10}


@dataclass
class Recording:
    """A policy that records every state it is asked about and answers with `inner`'s choice (or
    always `forced`, to see the safety rules act on a rogue policy)."""

    inner: StaticPolicy = field(default_factory=StaticPolicy)
    forced: Action | None = None
    states: list[PolicyState] = field(default_factory=list)
    name: str = "recording"

    def decide(self, state: PolicyState) -> Decision:
        self.states.append(state)
        if self.forced is not None:
            return Decision(action=self.forced, policy=self.name, reason="forced")
        return self.inner.decide(state)


def _params():
    return load_params().with_size(**SMALL)


def test_a_seed_gives_the_same_fleet_and_outcomes_and_another_seed_others() -> None:
    params = _params()
    first, again = simulate(params, StaticPolicy(), 5), simulate(params, StaticPolicy(), 5)
    assert first.incidents == again.incidents and (first.slo_met, first.scheduled) == (again.slo_met, again.scheduled)
    assert len(first.incidents) > 20
    assert simulate(params, StaticPolicy(), 6).incidents != first.incidents


def test_both_policies_meet_the_same_jobs_and_failures() -> None:
    params = _params()
    static = simulate(params, StaticPolicy(), 5)
    escalating = simulate(params, Recording(forced=Action.ESCALATE), 5)
    assert static.scheduled == escalating.scheduled
    firsts = []
    for run in (static, escalating):  # each job's first failure comes before any policy acted on it
        first: dict[int, tuple[str, float]] = {}
        for incident in run.incidents:
            first.setdefault(incident.job, (incident.failure_class, incident.opened))
        firsts.append(first)
    assert firsts[0] == firsts[1] and len(firsts[0]) > 20
    later = [(i.job, i.failure_class) for i in static.incidents], [(i.job, i.failure_class) for i in escalating.incidents]
    assert later[0] != later[1]  # after that, what each policy did matters


def test_training_and_evaluation_fleets_never_share_a_seed() -> None:
    train_seeds = {fleet_seed(1, "train", episode) for episode in range(500)}
    assert len(train_seeds) == 500 and fleet_seed(1, "eval") not in train_seeds
    assert fleet_seed(1, "eval") != fleet_seed(2, "eval")


def test_each_decision_sees_the_state_the_healer_would_build() -> None:
    params = _params()
    recording = Recording()
    run = simulate(params, recording, 5)
    states = recording.states
    assert len(states) == sum(i.decisions for i in run.incidents)
    categories = {category for category, _ in LOOKS.values()}
    for state in states:
        assert state.category in categories and state.model is params.healer.model_configured
        assert 1 <= state.attempt <= params.healer.max_attempts
        assert state.attempts_left == params.healer.max_attempts - state.attempt
        assert len(state.tried) == state.attempt - 1
        assert 1 <= state.recent_failures <= HISTORY_WINDOW  # the failed run itself counts
        reruns = sum(a in ("rerun", "rerun-backoff") or (a == "rule-fix" and state.rule_fix == "rerun")
                     for a in state.tried)
        assert state.reruns_left == params.healer.max_reruns - reruns
    assert any(s.last_worked == "rule-fix" for s in states) and any(s.last_escalated for s in states)
    assert any(s.recent_failures > 1 for s in states)


def test_a_rogue_policy_is_overridden_by_the_safety_rules() -> None:
    run = simulate(_params(), Recording(forced=Action.RERUN), 5)
    data = [i for i in run.incidents if i.failure_class == "missing-data"]
    assert data and all(i.actions == ("escalate",) for i in data)
    assert sum(i.overridden for i in run.incidents) >= len(data)
    for incident in run.incidents:  # never more re-runs than HEAL_MAX_RERUNS
        assert sum(a in ("rerun", "rerun-backoff") for a in incident.actions) <= 2
    assert all(i.outcome != "false-heal" for i in run.incidents)


def test_a_policy_that_knows_the_jobs_does_better_than_the_static_order() -> None:
    """The world rewards what history shows: a short training already beats the static order on reward."""
    params = load_params().with_size(jobs=120, days=14, episodes=25, training_jobs=120, training_days=14)
    trained = train(params, 3, static_reference=True)
    late = slice(-8, None)
    assert sum(trained.rewards[late]) > sum(trained.static_rewards[late])
    assert trained.policy.epsilon == 0.0 and trained.policy.min_visits == params.training.min_visits


def test_a_parameters_file_overrides_the_defaults_and_bad_ones_are_usage_errors(tmp_path: Path) -> None:
    path = tmp_path / "params.json"
    path.write_text(json.dumps({"fleet": {"jobs": 42}, "healer": {"max_attempts": 2}, "_note": "ignored"}))
    params = load_params(path)
    assert (params.jobs, params.healer.max_attempts, params.days) == (42, 2, 30)
    for bad, message in (({"fleet": {"size": 3}}, "unknown parameter fleet.size"),
                         ({"fleet": {"class_mix": {"transient": 0.9}}}, "fleet.class_mix: the shares add up to"),
                         ({"human": {"response_sigma": "high"}}, "human.response_sigma must be a number"),
                         ({"behaviour": {"wrong_fix": {"miss_rate": {"unknown": 2}}}}, "miss_rate.unknown")):
        path.write_text(json.dumps(bad))
        with pytest.raises(BenchUsageError, match=message):
            load_params(path)
    with pytest.raises(BenchUsageError, match="does not exist"):
        load_params(tmp_path / "absent.json")


def test_training_exploration_stays_within_its_bound(tmp_path: Path) -> None:
    path = tmp_path / "params.json"
    path.write_text(json.dumps({"training": {"epsilon_start": 0.9, "episodes": 1}}))
    with pytest.raises(BenchUsageError, match="exploration is bounded by 0.3"):
        train(load_params(path), 1)


def test_the_quick_command_prints_the_table_and_writes_reports_plots_and_policy(tmp_path: Path, capsys) -> None:
    policy = tmp_path / "policy.json"
    assert main(["fleet", "--quick", "--seed", "4", "--out", str(tmp_path), "--write-policy", str(policy)]) == 0
    out = capsys.readouterr().out
    for row in ("MTTR median (min)", "MTTR p90 (min)", "auto-resolved", "escalated", "false heals",
                "cluster-minutes per incident", "model tokens per incident", "SLO attainment", "incidents"):
        assert row in out
    assert "static" in out and "learned" in out and "done-when" in out
    [report] = tmp_path.glob("fleet-*.json")
    figures = json.loads(report.read_text())
    assert figures["static"]["incidents"] == figures["learned"]["incidents"] > 0
    assert figures["static"]["false_heals"] == 0 and 0 < figures["static"]["slo_attainment"] <= 1
    assert len(figures["training"]["rewards"]) == 6 and len(figures["daily_mttr_min"]["static"]) == 7
    assert report.with_suffix(".md").read_text().count("| MTTR") == 3
    for plot in ("training", "mttr"):
        assert Path(figures["plots"][plot]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    artefact = load(policy)
    assert artefact.policy_id == figures["policy"]["id"] and artefact.training["episodes"] == 6


@pytest.mark.parametrize("argv", [["--jobs", "0"], ["--episodes", "0"], ["--params", "/nonexistent/params.json"]])
def test_bad_input_exits_2(argv: list[str], tmp_path: Path, capsys) -> None:
    assert main(["fleet", "--quick", "--out", str(tmp_path), *argv]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert not list(tmp_path.iterdir())


def test_the_simulator_carries_out_exactly_what_decide_safely_chose() -> None:
    recording = Recording()
    run = simulate(_params(), recording, 7)
    chosen = [decide_safely(StaticPolicy(), state).action.value for state in recording.states]
    assert [a for incident in run.incidents for a in incident.actions] == chosen
    assert simulate(_params(), StaticPolicy(), 7).incidents == run.incidents  # no policy is special-cased

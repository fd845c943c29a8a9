"""The recovery policy in the real healer, on a manual-mode local CDE with its sandbox runs played:
the learned policy's choice is what the attempt does, the record says why, safety rules override a
forbidden choice, and a finished incident teaches the policy (run history experience, Q-values)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.config import Settings
from agents.errors import ConfigError
from agents.healer import Healer
from agents.history import RunHistory
from agents.policy import artefact
from agents.policy.decision import Action, PolicyState
from agents.policy.learned import LearnedPolicy
from agents.record import Attempt, PolicyChoice
from cde_client import CdeClient
from tests.agents.heal.test_proof import fix_runs_succeed
from tests.agents.heal.test_reruns import APP, CODE, LOST
from tests.agents.history.records import T0, at, diagnosis, incident
from tests.fixtures.cde_local import PASSWORD, USER, deploy_failed_run, unique


def _state(**fields) -> PolicyState:
    """The state of a first attempt at a lost-executor failure (rule T101: a re-run), no model."""
    values = dict(category="transient", condition=None, attempt=1, attempts_left=2, rule_fix="rerun", model=False,
                  reruns_left=2, recent_failures=0, last_worked=None, last_escalated=False, tried=())
    values.update(fields)
    return PolicyState(**values)


def _policy_file(path: Path, state: PolicyState, best: Action, worse: Action) -> Path:
    """An artefact whose Q-table, in `state`, rates `best` well above `worse`."""
    policy = LearnedPolicy()
    for _ in range(10):
        policy.update(state, best, 12.0, None)
        policy.update(state, worse, -4.0, None)
    artefact.save(path, policy, training={"episodes": 0, "note": "made by a test"})
    return path


def _settings(cde, data_dir: Path, job: str, **extra: str) -> Settings:
    return Settings.from_env({
        "JOBS_API_URL": cde.jobs_api_url, "WORKLOAD_USER": USER, "WORKLOAD_PASSWORD": PASSWORD,
        "HEALER_DATA_DIR": str(data_dir), "JOB_NAME": job, "HEAL_RUN_POLL_S": "0.1", "HEAL_RUN_TIMEOUT_S": "60",
        "HEAL_MAX_ATTEMPTS": "3", "HEAL_RERUN_BACKOFF_S": "0.2", **extra}, dotenv=None)


def _healed_by_more_memory_before(settings: Settings, job: str) -> None:
    """The job's history: its last incident was healed by raising its memory."""
    earlier = incident(job, 7, state="healed", failed_at=T0, ended_at=at(900), attempts=[Attempt(
        number=1, diagnosis=diagnosis("transient", None), verdict="healed",
        policy=PolicyChoice(action="raise-resources", policy="learned"))])
    with RunHistory.open(settings) as history:
        history.record_incident(earlier)


def _lost_executors(cde, name: str) -> tuple[CdeClient, str, int]:
    """A new job of `name` whose one run failed on lost executors: (a client, the job, the run)."""
    client = CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD)
    job = unique(name)
    return client, job, deploy_failed_run(cde, client, job, {APP: CODE}, LOST, [])


def _learned(cde, tmp_path: Path, job: str, best: Action, worse: Action) -> Healer:
    """A healer whose learned policy prefers `best` to `worse` at the first attempt of `_state()`."""
    file = _policy_file(tmp_path / "policy.json", _state(), best=best, worse=worse)
    return Healer(_settings(cde, tmp_path / "healer", job, HEAL_POLICY="learned", HEAL_POLICY_FILE=str(file)))


def test_the_learned_policy_raises_memory_where_this_job_was_healed_that_way(
        local_cde_manual, sandbox_player, tmp_path):
    cde = local_cde_manual
    client, job, run_id = _lost_executors(cde, "rollup-oom-prone")
    expected = _state(last_worked="raise-resources")
    file = _policy_file(tmp_path / "policy.json", expected, best=Action.RAISE_RESOURCES, worse=Action.RULE_FIX)
    settings = _settings(cde, tmp_path / "healer", job, HEAL_POLICY="learned", HEAL_POLICY_FILE=str(file))
    _healed_by_more_memory_before(settings, job)
    healer = Healer(settings)
    try:
        visits_before = healer.policy.visits(expected)  # type: ignore[attr-defined]
        with fix_runs_succeed(cde, client, job):
            record = healer.heal(job, run_id)
        visits_after = healer.policy.visits(expected)  # type: ignore[attr-defined]
        steps = healer.history.experiences()
        actions = healer.history.actions(record.incident_id)
    finally:
        healer.close()

    assert record.state == "healed", record.reason
    first = record.attempts[0]
    assert first.policy is not None and first.policy.action == "raise-resources" and first.policy.policy == "learned"
    assert first.policy.q_values["raise-resources"] > first.policy.q_values["rule-fix"]
    assert "last heal was raise-resources" in first.policy.reason and not first.policy.overridden
    assert first.policy.state["last_worked"] == "raise-resources" and first.policy.state["rule_fix"] == "rerun"
    # the transient rule's re-run was not what ran: the job's memory was doubled
    assert first.patch.kind == "config" and first.patch.source == "policy"
    assert first.patch.spark_changes == {"driverMemory": "2g", "executorMemory": "2g"}
    fix = client.get_job(first.fix_job)
    assert fix.raw["spark"]["driverMemory"] == "2g" and fix.raw["spark"]["executorMemory"] == "2g"
    # the run history has the action and its cost; the finished incident taught the policy once
    assert [(a.attempt, a.action, a.policy) for a in actions] == [(1, "raise-resources", "learned")]
    assert actions[0].cluster_s >= 0
    mine = [s for s in steps if s.incident_id == record.incident_id]
    assert [(s.attempt, s.action, s.next_state) for s in mine] == [(1, "raise-resources", None)]
    assert mine[0].reward > 0  # a verified heal
    assert visits_after == visits_before + 1


def test_without_a_model_a_learned_choice_of_the_model_is_overridden_by_the_static_order(
        local_cde_manual, sandbox_player, tmp_path):
    cde = local_cde_manual
    client, job, run_id = _lost_executors(cde, "rollup-no-model")
    healer = _learned(cde, tmp_path, job, best=Action.MODEL_PATCH, worse=Action.RULE_FIX)
    try:
        with fix_runs_succeed(cde, client, job):
            record = healer.heal(job, run_id)
    finally:
        healer.close()

    first = record.attempts[0]
    assert first.policy.action == "rule-fix" and first.patch.kind == "rerun" and first.patch.source == "rule"
    assert "learned policy chose model-patch, not permitted: no model is configured" in first.policy.overridden
    assert record.state == "healed", record.reason


def test_the_learned_policy_may_escalate_at_once_and_says_why(local_cde_manual, sandbox_player, tmp_path):
    cde = local_cde_manual
    _client, job, run_id = _lost_executors(cde, "rollup-hopeless")
    healer = _learned(cde, tmp_path, job, best=Action.ESCALATE, worse=Action.RULE_FIX)
    try:
        record = healer.heal(job, run_id)
        steps = [s for s in healer.history.experiences() if s.incident_id == record.incident_id]
    finally:
        healer.close()

    assert record.state == "escalated"
    assert record.reason.startswith("the learned policy escalated at attempt 1: Q(escalate)=")
    assert record.attempts[0].fix_job is None  # nothing ran
    assert [(s.action, s.next_state) for s in steps] == [("escalate", None)]
    assert steps[0].reward < 0


def test_the_static_policy_records_its_choice_and_learns_nothing_into_a_table(local_cde_manual, sandbox_player,
                                                                              tmp_path):
    cde = local_cde_manual
    client, job, run_id = _lost_executors(cde, "rollup-static")
    healer = Healer(_settings(cde, tmp_path / "healer", job))
    try:
        with fix_runs_succeed(cde, client, job):
            record = healer.heal(job, run_id)
        steps = [s for s in healer.history.experiences() if s.incident_id == record.incident_id]
        again = healer.heal(job, run_id)  # a finished incident: nothing more to learn
        steps_again = [s for s in healer.history.experiences() if s.incident_id == record.incident_id]
    finally:
        healer.close()

    assert record.state == "healed" and again.state == "healed"
    choice = record.attempts[0].policy
    assert (choice.action, choice.policy, choice.q_values) == ("rule-fix", "static", {})
    assert [(s.action, s.reward > 0) for s in steps] == [("rule-fix", True)]  # kept for training all the same
    assert [s.id for s in steps_again] == [s.id for s in steps]


def test_online_experience_survives_a_restart(local_cde_manual, sandbox_player, tmp_path):
    """A restarted healer's learned policy is its artefact plus the experience stored since."""
    cde = local_cde_manual
    client, job, run_id = _lost_executors(cde, "rollup-restart")
    state = _state()
    file = _policy_file(tmp_path / "policy.json", state, best=Action.RULE_FIX, worse=Action.RAISE_RESOURCES)
    trained = artefact.load(file).policy.visits(state)
    settings = _settings(cde, tmp_path / "healer", job, HEAL_POLICY="learned", HEAL_POLICY_FILE=str(file))
    healer = Healer(settings)
    try:
        with fix_runs_succeed(cde, client, job):
            record = healer.heal(job, run_id)
    finally:
        healer.close()
    assert record.state == "healed" and record.attempts[0].policy.action == "rule-fix"

    restarted = Healer(settings)
    try:
        assert restarted.policy.visits(state) == trained + 1  # type: ignore[attr-defined]
    finally:
        restarted.close()
    static = Healer(_settings(cde, tmp_path / "healer", job, HEAL_POLICY_LEARN="false", HEAL_POLICY="learned",
                              HEAL_POLICY_FILE=str(file)))
    try:
        assert static.policy.visits(state) == trained  # type: ignore[attr-defined]
    finally:
        static.close()


def test_a_bad_policy_file_stops_the_healer_at_start(tmp_path):
    bad = tmp_path / "policy.json"
    bad.write_text("{not json")
    settings = Settings.from_env({"JOBS_API_URL": "http://127.0.0.1:9/dex/api/v1", "CDE_TOKEN": "t",
                                  "HEALER_DATA_DIR": str(tmp_path / "healer"), "HEAL_POLICY": "learned",
                                  "HEAL_POLICY_FILE": str(bad)}, dotenv=None)
    with pytest.raises(ConfigError, match="HEAL_POLICY_FILE.*not JSON"):
        Healer(settings).close()


def test_the_shipped_policy_loads_by_default(tmp_path):
    settings = Settings.from_env({"JOBS_API_URL": "http://127.0.0.1:9/dex/api/v1", "CDE_TOKEN": "t",
                                  "HEALER_DATA_DIR": str(tmp_path), "HEAL_POLICY": "learned"}, dotenv=None)
    healer = Healer(settings)
    try:
        assert isinstance(healer.policy, LearnedPolicy) and healer.policy.epsilon == 0.0
        assert len(healer.policy.table) > 100
    finally:
        healer.close()

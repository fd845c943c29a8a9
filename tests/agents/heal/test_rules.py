"""The rules-only path (no model configured) on real Spark: a transient failure re-run, missing data
escalated. (A configuration remedy on real Spark: tests/bench/test_heal_bench.py; a heal through the
local CDE's faults: tests/agents/heal/test_proof.py.)"""

from __future__ import annotations


def heal_rules_only(heal_lab, tmp_path, job: str, run_id: int, **env):
    healer = heal_lab.healer(tmp_path, **env)
    try:
        return healer.heal(job, run_id)
    finally:
        healer.close()


def test_transient_failure_is_rerun(heal_lab, tmp_path):
    run_id = heal_lab.fresh_failure("transient_rerun")
    job = heal_lab.client.get_run(run_id).job
    record = heal_rules_only(heal_lab, tmp_path, job, run_id)
    assert record.state == "healed", record.reason
    attempt = record.attempts[0]
    assert attempt.diagnosis.category == "transient" and attempt.patch.kind == "rerun"
    assert attempt.diff == "" and attempt.check_passed is True
    assert heal_lab.client.get_job(attempt.fix_job).spark == heal_lab.client.get_job(job).spark


def test_missing_data_is_escalated_without_deploying(heal_lab, tmp_path):
    run_id = heal_lab.fresh_failure("missing_input")
    job = heal_lab.client.get_run(run_id).job
    record = heal_rules_only(heal_lab, tmp_path, job, run_id)
    assert record.state == "escalated"
    assert record.attempts[0].diagnosis.category == "data"
    assert "not healable" in record.reason
    assert heal_lab.fix_jobs(job) == []

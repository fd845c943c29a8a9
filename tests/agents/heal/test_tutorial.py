"""The tutorial's scenario healed end to end, against the local CDE on real Spark.

Through the scripted model (it still goes through langchain-openai and HTTP), and on the rules
alone (on the played lab: its runs are played, its fix the known-good file). The fix must be a new job with the original's full configuration, its run must succeed,
and the output check must pass; the original job is left exactly as it was.
"""

from __future__ import annotations

from agents.comparison import dropped_by_the_job
from agents.record import TERMINAL_STATES
from tests.fixtures.heal import TUTORIAL_DIAGNOSIS as DIAGNOSIS
from tests.fixtures.heal import TUTORIAL_FIXED_APP as FIXED_APP
from tests.fixtures.heal import TUTORIAL_JOB as JOB
from tests.fixtures.heal import TUTORIAL_PATCH as PATCH

SERVER_FIELDS = {"created", "modified", "lastUsed"}



def _definition(job) -> dict:
    return {k: v for k, v in job.raw.items() if k not in SERVER_FIELDS}


def _assert_fix_copies_original(lab, original, fix_name: str, fix_resource: str) -> None:
    fix = lab.client.get_job(fix_name)
    assert fix.spark == original.spark, "the fix job must keep args, conf, driver/executor settings, python env"
    assert [m.dir_prefix for m in fix.mounts] == [m.dir_prefix for m in original.mounts]
    assert [m.resource_name for m in fix.mounts] == [fix_resource]
    original_files = {f.path for f in lab.client.get_resource("failing-pipeline").files}
    fix_files = {f.path for f in lab.client.get_resource(fix_resource).files}
    assert fix_files == original_files  # datagen.py travels along with the fixed sparkApp.py
    assert lab.client.download_file(fix_resource, "datagen.py") == lab.client.download_file(
        "failing-pipeline", "datagen.py")


def _assert_proven_by_data(attempt) -> None:
    """The fix ran in a sandbox first, its outputs compared with the last good ones, the user's check
    passed on the sandbox, and the production run's outputs compared the same way."""
    preflight = attempt.preflight
    assert preflight.status == "succeeded" and preflight.run_id < attempt.fix_run_id
    written = {o.name for o in preflight.report.outputs}
    assert "default.dynamic_incremental_target_table_large_overlap" in written, written
    assert all(o.sandbox.startswith(preflight.database + ".") for o in preflight.report.outputs)
    kept = [o for o in preflight.report.outputs if not dropped_by_the_job(o)]  # not the staging table
    assert len(kept) == 2 and all(o.baseline is not None for o in kept)  # the last good run's outputs
    assert attempt.comparison_passed is True and all(r.ok for r in attempt.comparison)
    assert {r.output for r in attempt.comparison if r.metric == "rows"} == {o.name for o in kept}
    assert preflight.check_passed is True and any(r.metric == "check" and r.ok for r in attempt.comparison)
    assert attempt.production_comparison and all(r.ok for r in attempt.production_comparison)


def test_tutorial_healed_through_the_model(heal_lab, scripted_llm, tmp_path):
    run_id = heal_lab.fresh_failure("tutorial")
    original = heal_lab.client.get_job(JOB)
    original_code = heal_lab.client.download_file("failing-pipeline", "sparkApp.py")
    scripted_llm.add(DIAGNOSIS).add(PATCH)
    healer = heal_lab.healer(tmp_path, scripted_llm, HEAL_DETERMINISTIC_FIXES="false")
    try:
        record = healer.heal(JOB, run_id)
    finally:
        healer.close()

    assert record.state == "healed", record.reason
    assert record.model == "scripted"
    # failure detected and distilled
    assert record.failed_run.id == run_id and record.failed_run.status == "failed"
    assert record.evidence is not None and record.evidence.error_class.startswith("UNRESOLVED_COLUMN")
    assert "account_id" in record.evidence.suggestions
    assert "customer_id" in record.driver_log
    # the diagnosis cites the evidence
    attempt = record.attempts[0]
    assert attempt.diagnosis.source == "model" and attempt.diagnosis.category == "code"
    assert any("UNRESOLVED_COLUMN" in line for line in attempt.diagnosis.evidence)
    # the patch replaces customer_id with account_id
    assert "SELECT customer_id" in record.original.code
    assert "SELECT account_id" in attempt.fixed_code and "customer_id" not in attempt.fixed_code
    assert "-    SELECT customer_id" in attempt.diff and "+    SELECT account_id" in attempt.diff
    assert all(v.ok for v in attempt.guard)
    # a new job with the original's full configuration, a successful run, a passing check
    assert attempt.fix_job == f"{JOB}-fix-1" or attempt.fix_job.startswith(f"{JOB}-fix-")
    _assert_fix_copies_original(heal_lab, original, attempt.fix_job, attempt.fix_resource)
    assert heal_lab.client.get_run(attempt.fix_run_id).status == "succeeded"
    assert attempt.check_job == f"{JOB}-check" and attempt.check_passed is True
    assert heal_lab.client.get_run(attempt.check_run_id).status == "succeeded"
    _assert_proven_by_data(attempt)
    # the original job and code are untouched
    assert _definition(heal_lab.client.get_job(JOB)) == _definition(original)
    assert heal_lab.client.download_file("failing-pipeline", "sparkApp.py") == original_code
    # the record is complete
    assert [c.stage for c in record.llm_calls] == ["diagnose", "patch"]
    # usage as the endpoint counted it (the scripted server counts what it was sent and wrote)
    assert all(c.prompt_tokens and c.completion_tokens and c.latency_s > 0 for c in record.llm_calls)
    assert "customer_id" in record.llm_calls[0].prompt[-1]["content"]  # the distilled evidence went in
    stages = [s.stage for s in record.stages]
    assert stages == ["monitor", "log_fetch", "diagnose", "patch", "preflight", "compare", "approval", "redeploy",
                      "verify"]
    assert all(s.duration_s is not None for s in record.stages)
    assert record.state in TERMINAL_STATES
    saved = (tmp_path / "incidents" / f"{record.incident_id}.json").read_text()
    assert "sk-test-secret-token-5678" not in saved and "heal-password-1234" not in saved

    # healing the same run again creates nothing new
    fixes_before = heal_lab.fix_jobs(JOB)
    healer = heal_lab.healer(tmp_path, scripted_llm)
    try:
        again = healer.heal(JOB, run_id)
    finally:
        healer.close()
    assert again.state == "healed" and again.attempts[0].fix_job == attempt.fix_job
    assert heal_lab.fix_jobs(JOB) == fixes_before
    assert scripted_llm.remaining == 0 and len(scripted_llm.requests) == 2


def test_tutorial_healed_on_rules_alone(played_lab, tmp_path):
    """The rules' path differs from the model's in its diagnosis and patch only: on the played lab (the
    real failure log, the runs played), its fix must be the known-good file, which the scenario tests
    run on real Spark."""
    run_id = played_lab.fresh_failure("tutorial")
    healer = played_lab.healer(tmp_path)  # no LLM_* variables: rules only
    try:
        record = healer.heal(JOB, run_id)
    finally:
        healer.close()
    assert record.state == "healed", record.reason
    assert record.model is None and record.llm_calls == []
    attempt = record.attempts[0]
    assert attempt.diagnosis.source == "rule" and attempt.diagnosis.rule == "unresolved-column"
    assert attempt.patch.source == "rule"
    assert attempt.fixed_code == FIXED_APP
    assert attempt.preflight.status == "succeeded" and attempt.comparison_passed is True
    assert attempt.check_passed is True

"""The healing loop with the scripted model, on a failure no deterministic rule can fix.

`divide_by_zero`: Spark 4's ANSI mode fails a KPI job on campaign-days without sessions. Covered:
a wrong first patch whose run fails, then a right one; the attempt limit escalating; guard
rejections fed back to the model; malformed answers asked again; the endpoint down or slow.
"""

from __future__ import annotations

import pytest

from tests.paths import FIXES_DIR, REPO

SCENARIO, JOB, APP = "divide_by_zero", "campaign-kpis", "campaign_kpis.py"
BROKEN = (REPO / "sample_jobs" / SCENARIO / APP).read_text()
FIXED = (FIXES_DIR / SCENARIO / APP).read_text()
CONVERSION = 'F.round(F.col("conversions") / F.col("sessions"), 4)'
COST = 'F.round(F.col("spend") / F.col("sessions"), 4)'
HALF_FIXED = BROKEN.replace(CONVERSION, 'F.round(F.try_divide("conversions", "sessions"), 4)')

DIAGNOSIS = {"category": "code", "confidence": 0.9,
             "root_cause": "Division by sessions, which is 0 on some campaign-days; ANSI mode fails the job.",
             "evidence": ["[DIVIDE_BY_ZERO] Division by zero."]}


def code_patch(code: str, why: str = "Divide with try_divide so that zero sessions give null.") -> dict:
    return {"kind": "code", "explanation": why, "code": code, "spark_changes": {}, "conf_changes": {}}


@pytest.fixture(scope="module")
def failed_run(heal_lab) -> int:
    """One failed run shared by the module: each test heals it with its own healer and records."""
    return heal_lab.fresh_failure(SCENARIO)


def heal(heal_lab, tmp_path, llm, run_id, **env):
    healer = heal_lab.healer(tmp_path, llm, HEAL_DETERMINISTIC_FIXES="false", **env)
    try:
        return healer.heal(JOB, run_id)
    finally:
        healer.close()


def runs_per_fix_job(heal_lab, record) -> list[int]:
    return [len(heal_lab.runs_of(a.fix_job)) for a in record.attempts if a.fix_job]


def test_wrong_patch_then_right_one_heals(heal_lab, scripted_llm, tmp_path, failed_run):
    scripted_llm.add("I think the sessions column is sometimes zero.")  # no JSON: asked again
    scripted_llm.add(DIAGNOSIS).add(code_patch(HALF_FIXED, "Guard the conversion rate division."))
    scripted_llm.add(DIAGNOSIS).add(code_patch(FIXED))
    record = heal(heal_lab, tmp_path, scripted_llm, failed_run)

    assert record.state == "healed", record.reason
    first, second = record.attempts
    # the half fix failed in its sandbox: production never ran it
    assert first.preflight.status == "failed" and first.verdict == "pre-flight failed"
    assert first.fix_run_id is None and first.check_passed is None
    assert second.evidence is not None and second.evidence.error_class == "DIVIDE_BY_ZERO"
    assert second.fix_run_status == "succeeded" and second.check_passed is True
    assert first.fix_job != second.fix_job
    assert runs_per_fix_job(heal_lab, record) == [0, 1]
    # the second round saw why the first failed
    patch_prompts = [c.prompt[-1]["content"] for c in record.llm_calls if c.stage == "patch"]
    assert "ended failed" in patch_prompts[1] and f"run {first.preflight.run_id}" in patch_prompts[1]
    # the malformed first answer was recorded and asked again
    diagnose_calls = [c for c in record.llm_calls if c.stage == "diagnose"]
    assert len(diagnose_calls) >= 3 and diagnose_calls[0].error
    # the final diff goes from the original to the final code
    assert second.diff.count("+    F.round(F.try_divide") == 2


def test_attempt_limit_escalates(heal_lab, scripted_llm, tmp_path, failed_run):
    still_broken = HALF_FIXED.replace(COST, 'F.round(F.col("spend") / F.col("sessions"), 2)')
    scripted_llm.add(DIAGNOSIS).add(code_patch(HALF_FIXED, "Guard the conversion rate division."))
    scripted_llm.add(DIAGNOSIS).add(code_patch(still_broken, "Round the cost to cents."))
    record = heal(heal_lab, tmp_path, scripted_llm, failed_run, HEAL_MAX_ATTEMPTS="2")

    assert record.state == "escalated"
    assert "2 attempts used up" in record.reason
    assert [a.preflight.status for a in record.attempts] == ["failed", "failed"]
    assert [a.fix_run_status for a in record.attempts] == [None, None]  # neither reached production
    assert runs_per_fix_job(heal_lab, record) == [0, 0]
    assert scripted_llm.remaining == 0  # our code stopped; the model was not asked again


def test_guard_rejections_are_fed_back_and_bounded(heal_lab, scripted_llm, tmp_path, failed_run):
    shell = FIXED.replace("import sys\n", "import subprocess\nimport sys\n") + '\nsubprocess.run(["hdfs", "dfs", "-ls"])\n'
    drop = FIXED.replace("spark.stop()", 'spark.sql(f"DROP TABLE {output_table}")\nspark.stop()')
    unparsable = FIXED.replace("spark.stop()", "spark.stop(")
    scripted_llm.add(DIAGNOSIS)
    for code in (shell, drop, unparsable, BROKEN):
        scripted_llm.add(code_patch(code))
    jobs_before = heal_lab.fix_jobs(JOB)
    record = heal(heal_lab, tmp_path, scripted_llm, failed_run, HEAL_MAX_PATCH_TRIES="4")

    assert record.state == "escalated" and "no acceptable patch" in record.reason
    assert heal_lab.fix_jobs(JOB) == jobs_before  # nothing deployed
    rejected = {v.rule for v in record.attempts[0].guard if not v.ok}
    assert {"allowed-python", "allowed-sql", "parses", "not-a-no-op"} <= rejected
    patch_prompts = [c.prompt[-1]["content"] for c in record.llm_calls if c.stage == "patch"]
    assert len(patch_prompts) == 4
    assert "subprocess" in patch_prompts[1] and "DROP" in patch_prompts[2]


def test_answers_that_never_fit_the_schema_escalate(heal_lab, scripted_llm, tmp_path, failed_run):
    scripted_llm.add(DIAGNOSIS)
    scripted_llm.add('{"kind": "code", "explanation": "fix", "code": "import sys\\nfrom pyspark')  # truncated
    scripted_llm.add({"patch": "use try_divide"})  # wrong schema
    scripted_llm.add("Here is the fix: use try_divide.")  # no JSON
    jobs_before = heal_lab.fix_jobs(JOB)
    record = heal(heal_lab, tmp_path, scripted_llm, failed_run, LLM_MAX_STRUCTURED_RETRIES="2")

    assert record.state == "escalated" and "could not propose a patch" in record.reason
    assert heal_lab.fix_jobs(JOB) == jobs_before
    assert sum(1 for c in record.llm_calls if c.stage == "patch" and c.error) == 3


def test_model_endpoint_down_escalates_without_deploying(heal_lab, scripted_llm, tmp_path, failed_run):
    scripted_llm.stop()
    jobs_before = heal_lab.fix_jobs(JOB)
    record = heal(heal_lab, tmp_path, scripted_llm, failed_run, LLM_MAX_RETRIES="0")
    assert record.state == "escalated" and "could not diagnose" in record.reason
    assert heal_lab.fix_jobs(JOB) == jobs_before
    assert "sk-test-secret-token-5678" not in record.model_dump_json()


def test_model_endpoint_timing_out_escalates_without_deploying(heal_lab, scripted_llm, tmp_path, failed_run):
    scripted_llm.add(DIAGNOSIS, delay_s=5)
    jobs_before = heal_lab.fix_jobs(JOB)
    record = heal(heal_lab, tmp_path, scripted_llm, failed_run, LLM_MAX_RETRIES="0", LLM_TIMEOUT_S="1")
    assert record.state == "escalated" and "could not diagnose" in record.reason
    assert heal_lab.fix_jobs(JOB) == jobs_before

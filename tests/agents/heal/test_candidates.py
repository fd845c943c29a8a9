"""The model's patch as edits, several candidates per attempt, and requests for more of the file,
through the whole healer on a manual-mode local CDE (sandbox runs played: tests/fixtures/sandbox_runs.py)
with the scripted model."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from agents.config import Settings
from agents.healer import Healer
from cde_client import CdeClient
from tests.agents.heal.test_proof import ARGS, succeed_fix_runs
from tests.fixtures.cde_local import ORDERS_APP as APP
from tests.fixtures.cde_local import ORDERS_CODE as CODE
from tests.fixtures.cde_local import ORDERS_LOG as LOG
from tests.fixtures.cde_local import PASSWORD, USER, deploy_failed_run, unique
from tests.fixtures.sandbox_runs import GOOD, stats

DIAGNOSIS = {"category": "code", "confidence": 0.8, "evidence": ["UNRESOLVED_COLUMN"],
             "root_cause": "The report groups by `customer`, which the table calls `customer_id`."}
FAILING = 'orders.groupBy("customer").count().write.mode("overwrite").saveAsTable(sys.argv[2])'


def edit(new_group: str) -> dict:
    return {"original": FAILING, "replacement": FAILING.replace('"customer"', new_group)}


def answer(explanation: str, *edits: dict, **fields) -> dict:
    return {"kind": "code", "explanation": explanation, "edits": list(edits), **fields}


def heal(cde, client: CdeClient, llm, data_dir: Path, job: str, **extra: str):
    run_id = deploy_failed_run(cde, client, job, {APP: CODE}, LOG, ARGS)
    stop = threading.Event()
    cluster = threading.Thread(target=succeed_fix_runs, args=(cde, client, job, stop), daemon=True)
    cluster.start()
    healer = Healer(Settings.from_env({
        "JOBS_API_URL": cde.jobs_api_url, "WORKLOAD_USER": USER, "WORKLOAD_PASSWORD": PASSWORD,
        "HEALER_DATA_DIR": str(data_dir), "JOB_NAME": job, "HEAL_RUN_POLL_S": "0.1", "HEAL_RUN_TIMEOUT_S": "60",
        "HEAL_MAX_ATTEMPTS": "1", "HEAL_DETERMINISTIC_FIXES": "false", "LLM_ENDPOINT_BASE_URL": llm.base_url,
        "LLM_MODEL_ID": "scripted", "LLM_TIMEOUT_S": "10", **extra}, dotenv=None))
    try:
        return healer.heal(job, run_id)
    finally:
        healer.close()
        stop.set()
        cluster.join(5)


def patch_prompts(llm) -> list[str]:
    return [r.body["messages"][-1]["content"] for r in llm.requests if "PatchAnswer" in json.dumps(r.body)]


def test_candidates_are_tried_in_the_sandbox_until_one_passes_and_only_it_is_deployed(
        local_cde_manual, sandbox_player, scripted_llm, tmp_path):
    cde = local_cde_manual
    client = CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD)
    job = unique("orders-cand")
    sandbox_player.script(f"{job}-fix-1-preflight", status="failed", log="Traceback\nValueError: boom\n")
    sandbox_player.script(f"{job}-fix-1-c2", outputs=[{**GOOD, "stats": stats(3)}])  # 3 rows, 120 before
    scripted_llm.add(DIAGNOSIS).add(answer(
        "Group by the column the table has.", edit('"customer_id"'),
        alternatives=[{"explanation": "Group by the amount.", "edits": [edit('"amount"')]},
                      {"explanation": "Group by the id as a column.", "edits": [edit('orders["customer_id"]')]},
                      {"explanation": "One too many.", "edits": [edit('"id"')]}]))
    try:
        record = heal(cde, client, scripted_llm, tmp_path, job)
        attempt = record.attempts[0]
        assert record.state == "healed", record.reason
        assert len(record.attempts) == 1 and scripted_llm.remaining == 0  # one attempt, one patch call
        assert [(c.number, c.accepted) for c in attempt.candidates] == [(1, True), (2, True), (3, True)]  # limit 3
        verdicts = [c.verdict for c in attempt.candidates]
        assert verdicts[0] == "pre-flight failed"
        assert verdicts[1].startswith("data comparison failed: the fix writes 3 rows")
        assert verdicts[2] == "passed" and attempt.candidate == 3
        assert [c.preflight.job for c in attempt.candidates] == [
            f"{job}-fix-1-preflight", f"{job}-fix-1-c2-preflight", f"{job}-fix-1-c3-preflight"]
        assert len({c.preflight.database for c in attempt.candidates}) == 3
        # the deployed fix is the third candidate, under the attempt's one fix name
        assert attempt.fix_job == f"{job}-fix-1" and attempt.fix_resource == f"{job}-fix-1-c3"
        assert attempt.patch.explanation == "Group by the id as a column."
        deployed = client.download_file(attempt.fix_resource, APP).decode()
        assert 'groupBy(orders["customer_id"])' in deployed and deployed.count("\n") == CODE.count("\n")
        assert client.get_job(attempt.fix_job).mounts[0].resource_name == attempt.fix_resource
        assert [r.id for r in client.list_runs(filters=[f"job[eq]{job}-fix-1"])] == [attempt.fix_run_id]
        # the prompt asked for edits and alternatives; the answer's edits were applied by our code
        assert "`alternatives`" in patch_prompts(scripted_llm)[0]
        added = [line for line in attempt.diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
        assert attempt.patch.edits and added == ['+orders.groupBy(orders["customer_id"]).count().write.mode("overwrite")'
                                                 '.saveAsTable(sys.argv[2])']
    finally:
        client.close()


def test_edits_that_do_not_apply_are_explained_to_the_model_which_tries_again(
        local_cde_manual, sandbox_player, scripted_llm, tmp_path):
    cde = local_cde_manual
    client = CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD)
    job = unique("orders-edit")
    missing = {"original": 'orders.groupBy("client").count()', "replacement": 'orders.groupBy("customer_id").count()'}
    twice = {"original": "", "start_line": 99, "replacement": "x = 1"}
    scripted_llm.add(DIAGNOSIS).add(answer("Fix the column.", missing, twice))
    scripted_llm.add(answer("Fix the column.", edit('"customer_id"')))
    try:
        record = heal(cde, client, scripted_llm, tmp_path, job, HEAL_CANDIDATES="1")
    finally:
        client.close()
    assert record.state == "healed", record.reason
    retry = patch_prompts(scripted_llm)[1]
    assert "Earlier proposals were rejected" in retry and "the edits do not apply" in retry
    assert "edit 1: its original lines are not in the file" in retry and "edit 2:" in retry
    assert "`alternatives`" not in retry  # HEAL_CANDIDATES=1: one fix per answer
    assert [c.verdict for c in record.attempts[0].candidates] == ["passed"]


def test_the_model_may_ask_for_more_of_the_file_a_bounded_number_of_times(
        local_cde_manual, sandbox_player, scripted_llm, tmp_path):
    cde = local_cde_manual
    client = CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD)
    job = unique("orders-lines")
    ask = {"kind": "code", "explanation": "I need the session's lines.", "need_lines": [3, 5]}
    scripted_llm.add(DIAGNOSIS).add(ask).add(ask).add(answer("Fix the column.", edit('"customer_id"')))
    try:
        record = heal(cde, client, scripted_llm, tmp_path, job, HEAL_CODE_TOKEN_BUDGET="50",
                      HEAL_MAX_LINE_REQUESTS="1")
    finally:
        client.close()
    assert record.state == "healed", record.reason
    first, second, third = patch_prompts(scripted_llm)
    session = "3| from pyspark.sql import SparkSession"
    assert session not in first and "ask with `need_lines`" in first  # the budget shows the failure's lines only
    assert session in second and '5| spark = SparkSession.builder.appName("orders-report")' in second
    assert "no more lines can be shown (HEAL_MAX_LINE_REQUESTS=1)" in third


def test_a_whole_file_answer_is_still_accepted(local_cde_manual, sandbox_player, scripted_llm, tmp_path):
    cde = local_cde_manual
    client = CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD)
    job = unique("orders-file")
    fixed = CODE.replace('"customer"', '"customer_id"')
    scripted_llm.add(DIAGNOSIS).add({"kind": "code", "explanation": "Fix the column.", "code": fixed})
    try:
        record = heal(cde, client, scripted_llm, tmp_path, job)
    finally:
        client.close()
    attempt = record.attempts[0]
    assert record.state == "healed", record.reason
    assert attempt.patch.edits == [] and attempt.fixed_code == fixed


def test_side_by_side_preflights_start_together_and_the_first_pass_wins(
        local_cde_manual, sandbox_player, scripted_llm, tmp_path):
    cde = local_cde_manual
    client = CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD)
    job = unique("orders-par")
    scripted_llm.add(DIAGNOSIS).add(answer(
        "Group by the column the table has.", edit('"customer_id"'),
        alternatives=[{"explanation": "Group by the amount.", "edits": [edit('"amount"')]}]))
    try:
        record = heal(cde, client, scripted_llm, tmp_path, job, HEAL_PARALLEL_PREFLIGHTS="3")
        attempt = record.attempts[0]
        assert record.state == "healed", record.reason
        first, second = attempt.candidates
        assert first.verdict == "passed" and second.verdict == "not tried: candidate 1 passed first"
        assert second.preflight.run_id is not None  # it was started beside the first
        assert client.get_run(second.preflight.run_id).job == f"{job}-fix-1-c2-preflight"
        assert attempt.fix_resource == f"{job}-fix-1"
    finally:
        client.close()


def test_a_model_that_gives_up_on_a_condition_a_rule_knows_does_not_end_the_heal(
        local_cde_manual, sandbox_player, scripted_llm, tmp_path):
    """The model calls a renamed column a data problem; the rule that matched Spark's condition
    (UNRESOLVED_COLUMN with a suggestion) knows a code fix: giving up is our code's call, and the
    rule's diagnosis stands, with the model's view kept beside it."""
    cde = local_cde_manual
    client = CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD)
    job = unique("orders-rule-stands")
    scripted_llm.add({"category": "data", "confidence": 0.9, "evidence": ["UNRESOLVED_COLUMN"],
                      "root_cause": "The input lost its customer column; someone must restore the data."})
    try:
        record = heal(cde, client, scripted_llm, tmp_path, job, HEAL_DETERMINISTIC_FIXES="true")
        assert record.state == "healed", record.reason
        diagnosis = record.attempts[0].diagnosis
        assert (diagnosis.source, diagnosis.category, diagnosis.rule) == ("rule", "code", "unresolved-column")
        assert "The model judged it a data problem" in diagnosis.root_cause
        assert record.attempts[0].patch.source == "rule" and "customer_id" in record.attempts[0].fixed_code
        assert scripted_llm.remaining == 0  # the diagnosis was the only question asked
    finally:
        client.close()

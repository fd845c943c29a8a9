"""A 1,549-line job healed through the scripted model within the prompt budget, the patch as edits.

The failed run's log is a real one (tests/data/logs/large_etl_array_index.*: the large_etl scenario on
real Spark, failing deep inside a helper called through seven frames); the job runs on a manual-mode
local CDE whose sandbox runs are played (tests/fixtures/sandbox_runs.py)."""

from __future__ import annotations

import json
import threading

from agents.config import Settings
from agents.edits import edits_from_files
from agents.healer import Healer
from bench.scripted import FIXES_DIR
from cde_client import CdeClient
from tests.agents.heal.test_proof import succeed_fix_runs
from tests.fixtures.agents import evidence_of, load_spark_log
from tests.fixtures.cde_local import PASSWORD, USER, deploy_failed_run, unique

LOG = load_spark_log("large_etl_array_index")
APP = "large_etl_array_index.py"  # the name the captured log's frames use
FIXED = (FIXES_DIR / "large_etl" / "customer_360.py").read_text(encoding="utf-8")
DIAGNOSIS = {"category": "code", "confidence": 0.8, "evidence": ["[INVALID_ARRAY_INDEX] The index 3 is out of bounds"],
             "root_cause": "Product pages without a locale prefix split into three pieces; the id is read as the fourth."}


def test_the_failure_is_found_deep_inside_the_file():
    evidence = evidence_of(LOG)
    assert len(LOG.code.splitlines()) >= 1500
    assert evidence.user_lines[-1] == 615  # Spark's query context: where the failing expression was built
    assert evidence.user_lines[:-1] == [1549, 1537, 1467, 1425, 1180, 1173, 813]  # the traceback, outermost first
    assert evidence.site == f'"__getitem__" was called from /app/mount/{APP}:615'


def test_a_large_job_heals_with_small_prompts_and_a_small_patch(local_cde_manual, sandbox_player, scripted_llm,
                                                                tmp_path):
    cde = local_cde_manual
    client = CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD)
    job = unique("customer-360")
    edits = edits_from_files(LOG.code, FIXED)
    scripted_llm.add(DIAGNOSIS).add({"kind": "code", "explanation": "Take the last piece of the path as the id.",
                                     "edits": [e.model_dump(exclude_defaults=True) | {"replacement": e.replacement}
                                               for e in edits]})
    run_id = deploy_failed_run(cde, client, job, {APP: LOG.code}, LOG.stdout, ["retail", "mart"])
    settings = Settings.from_env({
        "JOBS_API_URL": cde.jobs_api_url, "WORKLOAD_USER": USER, "WORKLOAD_PASSWORD": PASSWORD,
        "HEALER_DATA_DIR": str(tmp_path), "JOB_NAME": job, "HEAL_RUN_POLL_S": "0.1", "HEAL_RUN_TIMEOUT_S": "60",
        "HEAL_MAX_ATTEMPTS": "1", "HEAL_DETERMINISTIC_FIXES": "false", "LLM_ENDPOINT_BASE_URL": scripted_llm.base_url,
        "LLM_MODEL_ID": "scripted", "LLM_TIMEOUT_S": "10"}, dotenv=None)
    stop = threading.Event()
    cluster = threading.Thread(target=succeed_fix_runs, args=(cde, client, job, stop), daemon=True)
    cluster.start()
    healer = Healer(settings)
    try:
        record = healer.heal(job, run_id)
        assert record.state == "healed", record.reason
        assert client.download_file(record.attempts[0].fix_resource, APP).decode() == FIXED
    finally:
        healer.close()
        stop.set()
        cluster.join(5)
        client.close()

    calls = record.llm_calls
    assert [c.stage for c in calls] == ["diagnose", "patch"]
    for call in calls:  # the endpoint's count and ours, both within the budget, for a 1,549-line file
        assert call.prompt_tokens <= settings.prompt_token_budget
        assert call.estimated_prompt_tokens <= settings.prompt_token_budget
    patch_call = calls[1]
    assert patch_call.completion_tokens < 300  # the edit, not 1,549 lines written back
    prompt = patch_call.prompt[-1]["content"]
    assert "1549 lines in all" in prompt
    assert "615|" in prompt and "parts[3]" in prompt  # the failing expression
    assert "PRODUCT_PAGE_PATTERN =" in prompt  # a module constant it uses
    assert len([r for r in scripted_llm.requests if "PatchAnswer" in json.dumps(r.body)]) == 1

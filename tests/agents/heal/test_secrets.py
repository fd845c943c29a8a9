"""Secrets never reach the model, and a job's own credential survives its fix.

A failed run on a manual-mode local CDE whose driver log carries the healer's own secrets (the
workload password, the LLM token), a Knox-style JWT, a cloud key and a ``password=`` value, and
whose code holds a JDBC password. The scripted model answers with the code it was shown (as a
real model would, placeholders included). Every request body is inspected; the deployed fix is
downloaded from the CDE.
"""

from __future__ import annotations

import json
import re
import threading
import time

from agents.config import Settings
from agents.healer import Healer
from cde_client import CdeClient
from tests.fixtures.cde_local import PASSWORD, USER, deploy_failed_run

JOB, APP = "ledger-export-secret", "ledger_export.py"
LLM_TOKEN = "sk-live-llm-token-0123456789abcdef"
JDBC_PASSWORD = "Sup3r-S3cret-Jdbc-42"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJkZXgtdXNlciJ9.c2lnbmF0dXJlLW9mLWtub3g"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
LOG_PASSWORD = "hunter2-from-the-log"
SECRETS = (PASSWORD, LLM_TOKEN, JDBC_PASSWORD, JWT, AWS_KEY, LOG_PASSWORD)
CODE = f'''import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

JDBC_PASSWORD = "{JDBC_PASSWORD}"
source_table, output_table = sys.argv[1], sys.argv[2]
spark = SparkSession.builder.appName("ledger-export").getOrCreate()
ledger = spark.table(source_table)
totals = ledger.groupBy("account").agg(F.sum("amount").alias("total"))
totals.write.mode("overwrite").saveAsTable(output_table)
spark.stop()
'''
LOG = f"""\
spark.submit: WORKLOAD_PASSWORD={PASSWORD} LLM_CDP_TOKEN={LLM_TOKEN}
Using Knox token {JWT} for the metastore; fs.s3a.access.key={AWS_KEY}
connection string: jdbc:postgresql://db/ledger?user=etl&password={LOG_PASSWORD}
Traceback (most recent call last):
  File "/app/mount/{APP}", line 10, in <module>
pyspark.errors.exceptions.captured.AnalysisException: [UNRESOLVED_COLUMN.WITH_SUGGESTION] A column, variable, or \
function parameter with name `account` cannot be resolved. Did you mean one of the following? [`account_id`, \
`amount`]. SQLSTATE: 42703
"""
DIAGNOSIS = {"category": "code", "confidence": 0.9, "root_cause": "The column is account_id.",
             "evidence": ["[UNRESOLVED_COLUMN.WITH_SUGGESTION]"]}


def code_shown(request) -> str:
    """The application file as the model saw it (line numbers stripped)."""
    prompt = request.body["messages"][-1]["content"]
    block = prompt.split("## Application code", 1)[1].split("\n## ", 1)[0]
    return "\n".join(m.group(1) for m in re.finditer(r"^\s*\d+\| ?(.*)$", block, re.M)) + "\n"


def fixed_reply(request) -> dict:
    code = code_shown(request).replace('groupBy("account")', 'groupBy("account_id")')
    return {"kind": "code", "explanation": "Group by account_id.", "code": code, "spark_changes": {},
            "conf_changes": {}}


def test_no_secret_reaches_the_model_and_the_fix_keeps_the_jobs_credential(local_cde_manual, sandbox_player, scripted_llm,
                                                                          tmp_path) -> None:
    cde = local_cde_manual
    client = CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD)
    run_id = deploy_failed_run(cde, client, JOB, {APP: CODE}, LOG, ["finance.ledger", "finance.totals"])

    stop = threading.Event()

    def succeed_fix_runs() -> None:  # the cluster: every fix run succeeds
        done: set[int] = set()
        while not stop.is_set():
            for run in client.list_runs(filters=[f"job[rlike]^{JOB}-fix-[0-9]+$"]):  # not the sandbox runs
                if run.id not in done:
                    cde.backend.set_run_status(run.id, "running")
                    cde.backend.set_run_status(run.id, "succeeded")
                    done.add(run.id)
            time.sleep(0.2)

    scripted_llm.add(DIAGNOSIS).add_reply(fixed_reply)
    env = {"JOBS_API_URL": cde.jobs_api_url, "WORKLOAD_USER": USER, "WORKLOAD_PASSWORD": PASSWORD,
           "HEALER_DATA_DIR": str(tmp_path), "LLM_ENDPOINT_BASE_URL": scripted_llm.base_url,
           "LLM_MODEL_ID": "scripted", "LLM_CDP_TOKEN": LLM_TOKEN, "HEAL_DETERMINISTIC_FIXES": "false",
           "HEAL_RUN_POLL_S": "0.2", "HEAL_RUN_TIMEOUT_S": "60"}
    cluster = threading.Thread(target=succeed_fix_runs, daemon=True)
    cluster.start()
    healer = Healer(Settings.from_env(env, dotenv=None))
    try:
        record = healer.heal(JOB, run_id)
    finally:
        healer.close()
        stop.set()
        cluster.join(timeout=5)

    assert record.state == "healed", record.reason
    diagnosis = record.attempts[0].diagnosis  # the model's, naming Spark's condition by our code
    assert diagnosis.source == "model" and (diagnosis.condition, diagnosis.condition_category) == (
        "UNRESOLVED_COLUMN.WITH_SUGGESTION", "code")
    sent = [json.dumps(r.body) for r in scripted_llm.requests]
    assert len(sent) == 2
    for secret in SECRETS:
        assert all(secret not in body for body in sent), f"{secret} reached the model"
    assert "<secret-" in sent[1] and "UNRESOLVED_COLUMN" in sent[1]  # masked, not dropped

    deployed = client.download_file(record.attempts[0].fix_resource, APP).decode()
    assert f'JDBC_PASSWORD = "{JDBC_PASSWORD}"' in deployed  # the job still has its credential
    assert 'groupBy("account_id")' in deployed and "<secret-" not in deployed
    stored = (tmp_path / "incidents" / f"{record.incident_id}.json").read_text()
    for secret in SECRETS:
        assert secret not in stored, f"{secret} is in the record"
    client.close()

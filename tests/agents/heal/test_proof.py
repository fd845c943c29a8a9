"""Proof by data on a manual-mode local CDE, the sandbox runs played (tests/fixtures/sandbox_runs.py):
what the pre-flight job is made of, and the endings the data decides — a pre-flight without its
report, and a production run whose real outputs are not like the last good ones."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from agents.config import Settings
from agents.healer import Healer
from agents.sandbox.bundle import sandbox_bundle
from cde_client import CdeClient, CdeError
from tests.fixtures.cde_local import ORDERS_APP as APP
from tests.fixtures.cde_local import ORDERS_CODE as CODE
from tests.fixtures.cde_local import ORDERS_LOG as LOG
from tests.fixtures.cde_local import PASSWORD, USER, deploy_failed_run, unique
from tests.fixtures.sandbox_runs import GOOD, stats

ARGS = ["sales.orders", "sales.report"]


def heal(cde, client: CdeClient, data_dir: Path, job: str, **extra: str):
    run_id = deploy_failed_run(cde, client, job, {APP: CODE}, LOG, ARGS)
    healer = Healer(Settings.from_env({
        "JOBS_API_URL": cde.jobs_api_url, "WORKLOAD_USER": USER, "WORKLOAD_PASSWORD": PASSWORD,
        "HEALER_DATA_DIR": str(data_dir), "JOB_NAME": job, "HEAL_RUN_POLL_S": "0.1", "HEAL_RUN_TIMEOUT_S": "60",
        "HEAL_MAX_ATTEMPTS": "1", **extra}, dotenv=None))
    try:
        return healer.heal(job, run_id)
    finally:
        healer.close()


def succeed_fix_runs(cde, client: CdeClient, job: str, stop: threading.Event) -> None:
    """The cluster: every production fix run of `job` succeeds (its sandbox runs are the player's).
    Read from the backend, beside the API (and any faults injected into it)."""
    fix = re.compile(re.escape(job) + r"-fix-\d+$")
    while not stop.wait(0.1):
        for run in cde.backend.store.runs_in_status(("starting",)):
            if fix.match(run["job"]):
                cde.backend.set_run_status(run["id"], "running")
                cde.backend.set_run_status(run["id"], "succeeded")


@contextmanager
def fix_runs_succeed(cde, client: CdeClient, job: str) -> Iterator[None]:
    """While inside: the cluster (`succeed_fix_runs`) ends every production fix run of `job` in success."""
    stop = threading.Event()
    cluster = threading.Thread(target=succeed_fix_runs, args=(cde, client, job, stop), daemon=True)
    cluster.start()
    try:
        yield
    finally:
        stop.set()
        cluster.join(5)


def test_the_preflight_runs_the_fixed_file_unchanged_through_the_launcher_into_the_sandbox(
        local_cde_manual, sandbox_player, tmp_path):
    cde = local_cde_manual
    client = CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD)
    job = unique("orders-report")
    sandbox_player.script(job, status="failed", log="Traceback (most recent call last):\nValueError: boom\n")
    try:
        record = heal(cde, client, tmp_path, job, HEAL_SANDBOX_DATABASE="qa_sandbox",
                      HEAL_PREFLIGHT_SAMPLE="fraction:0.1", HEAL_SANDBOX_LOCATION="s3a://bucket/sandbox")
        attempt = record.attempts[0]
        assert record.state == "escalated" and attempt.verdict == "pre-flight failed", record.reason
        assert attempt.fix_run_id is None and attempt.fix_job not in {j.name for j in client.list_jobs()}
        preflight = client.get_job(attempt.preflight.job)
        bundle = sandbox_bundle()
        assert preflight.name == f"{attempt.fix_job}-preflight"
        assert preflight.spark["file"] == "/app/mount/healer-sandbox/launcher.py"
        assert preflight.spark["args"] == ARGS  # the application's own arguments, unchanged
        assert [(m.resource_name, m.dir_prefix or "") for m in preflight.mounts] == [
            (attempt.fix_job, ""), (bundle.name, "healer-sandbox")]
        conf = preflight.spark["conf"]
        assert conf["spark.healer.sandbox.app"] == APP
        assert conf["spark.healer.sandbox.database"] == f"qa_sandbox_{record.run_id}_1" == attempt.preflight.database
        assert (conf["spark.healer.sandbox.sample"], conf["spark.healer.sandbox.location"]) == (
            "fraction:0.1", "s3a://bucket/sandbox")
        # the code run in the sandbox is byte for byte the fix, the rule's edit shown as a diff
        assert client.download_file(attempt.fix_job, APP).decode() == attempt.fixed_code
        assert attempt.patch.source == "rule" and '+orders.groupBy("customer_id")' in attempt.diff
        assert {f.path for f in client.get_resource(bundle.name).files} == set(bundle.files)
    finally:
        client.close()


def test_a_preflight_that_leaves_no_report_proves_nothing(local_cde_manual, sandbox_player, tmp_path):
    cde = local_cde_manual
    client = CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD)
    job = unique("orders-report")
    sandbox_player.script(job, report=False)
    try:
        record = heal(cde, client, tmp_path, job)
    finally:
        client.close()
    attempt = record.attempts[0]
    assert record.state == "escalated" and attempt.preflight.status == "succeeded"
    assert attempt.comparison_passed is False and attempt.fix_run_id is None
    assert "ended without the sandbox's report of its outputs" in record.reason


def test_a_fix_whose_outputs_have_no_last_good_one_waits_for_a_person(local_cde_manual, sandbox_player, tmp_path):
    cde = local_cde_manual
    client = CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD)
    job = unique("orders-report")
    sandbox_player.script(job, outputs=[{"table": "mart.orders_report_v2", "stats": stats(120), "baseline": None}])
    try:
        record = heal(cde, client, tmp_path, job)  # HEAL_MODE=auto
    finally:
        client.close()
    attempt = record.attempts[0]
    assert attempt.comparison_passed is True and attempt.fix_run_id is None
    assert record.state == "awaiting_approval"
    assert record.reason.startswith("none of the fix's outputs (mart.orders_report_v2) has a last good output")


def test_a_production_run_whose_outputs_went_wrong_is_not_a_heal(local_cde_manual, sandbox_player, tmp_path):
    cde = local_cde_manual
    client = CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD)
    job = unique("orders-report")
    sandbox_player.script(job, production=[{**GOOD, "stats": stats(4)}])  # 4 rows where the last good had 120
    try:
        with fix_runs_succeed(cde, client, job):
            record = heal(cde, client, tmp_path, job)
    finally:
        client.close()
    attempt = record.attempts[0]
    assert attempt.comparison_passed is True and attempt.fix_run_status == "succeeded"
    assert record.state == "escalated", record.reason
    assert attempt.verdict.startswith("production comparison failed: the fix writes 4 rows to mart.lab_output "
                                      "where the last good run wrote 120")
    assert attempt.production_stats_run_id is not None


def test_heals_through_token_expiry_and_error_bursts(local_cde_manual, sandbox_player, tmp_path):
    """Tokens live 2 s and bursts of 503 and 429 hit the middle of the incident: healed all the same."""
    cde = local_cde_manual
    client = CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD)
    job = unique("orders-report")
    faults = f"{cde.base_url}/local/faults"
    stop = threading.Event()
    cluster = threading.Thread(target=succeed_fix_runs, args=(cde, client, job, stop), daemon=True)

    def bursts() -> None:  # bursts once the incident is open, while its runs are being followed
        while not stop.wait(0.2) and not list((tmp_path / "incidents").glob("*.json")):
            pass
        while not stop.wait(1):
            requests.put(faults, json={"error_burst": 2}, timeout=10)

    noise = threading.Thread(target=bursts, daemon=True)
    record = None
    try:
        run_id = deploy_failed_run(cde, client, job, {APP: CODE}, LOG, ARGS)
        requests.put(faults, json={"token_ttl_s": 2, "throttle_burst": 3, "retry_after_s": 1},
                     timeout=10).raise_for_status()
        cluster.start()
        noise.start()
        healer = Healer(Settings.from_env({
            "JOBS_API_URL": cde.jobs_api_url, "WORKLOAD_USER": USER, "WORKLOAD_PASSWORD": PASSWORD,
            "HEALER_DATA_DIR": str(tmp_path), "JOB_NAME": job, "HEAL_RUN_POLL_S": "0.5",
            "HEAL_RUN_TIMEOUT_S": "60"}, dotenv=None))
        try:
            for _ in range(5):  # a burst that outlasts the client's retries leaves the incident open:
                try:            # the next cycle resumes it from its checkpoint, as the watcher does
                    record = healer.heal(job, run_id)
                    break
                except CdeError:
                    continue
        finally:
            healer.close()
        left = requests.get(faults, timeout=10).json()
    finally:
        stop.set()
        noise.join(10)
        cluster.join(10)
        requests.delete(faults, timeout=10)
        client.close()
    assert record is not None and record.state == "healed", record and record.reason
    assert left["throttle_burst"] == 0  # the 429s were served to the healer, and it went on
    attempt = record.attempts[0]
    assert [r.id for r in CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD).list_runs(
        filters=[f"job[eq]{attempt.fix_job}"])] == [attempt.fix_run_id]


def test_a_pre_flight_left_by_another_incident_is_never_reused(local_cde_manual, sandbox_player, tmp_path):
    """An incident that stopped after its pre-flight (rejected, escalated) leaves `<job>-fix-1-preflight`
    behind, made for its own sandbox: the next incident takes the next fix number."""
    cde = local_cde_manual
    client = CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD)
    job = unique("orders-report")
    try:
        client.create_resource(f"{job}-leftover")
        client.create_job({"name": f"{job}-fix-1-preflight", "type": "spark",
                           "mounts": [{"resourceName": f"{job}-leftover"}],
                           "spark": {"file": APP, "conf": {"spark.healer.sandbox.database": "healer_sandbox_999_9"}}})
        with fix_runs_succeed(cde, client, job):
            record = heal(cde, client, tmp_path, job)
    finally:
        client.close()
    attempt = record.attempts[0]
    assert record.state == "healed", record.reason
    assert attempt.fix_job == f"{job}-fix-2" and attempt.preflight.job == f"{job}-fix-2-preflight"
    assert attempt.preflight.report.database == attempt.preflight.database != "healer_sandbox_999_9"

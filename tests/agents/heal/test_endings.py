"""What ends an incident and what leaves it for the next cycle, by the error's meaning.

A failed run on a manual-mode local CDE that the rules heal (UNRESOLVED_COLUMN with Spark's
suggestion). A real `python -m app heal` process dies right after the fix job's name is written
(the way a kill would leave it); then the world changes under the incident, and the next healer
decides: a job of that name that is not ours escalates the incident with the reason; a record
our code cannot work from ends it as an error; neither is retried again and again.
"""

from __future__ import annotations

import json
from pathlib import Path

from agents.config import Settings
from agents.healer import Healer
from agents.stage import CRASH_EXIT_CODE
from cde_client import CdeClient
from tests.fixtures.cde_local import ORDERS_APP as APP
from tests.fixtures.cde_local import ORDERS_CODE as CODE
from tests.fixtures.cde_local import ORDERS_LOG as LOG
from tests.fixtures.cde_local import PASSWORD, USER, deploy_failed_run, unique
from tests.fixtures.heal import run_app_cli


def _env(cde, data_dir: Path, job: str) -> dict[str, str]:
    return {"JOBS_API_URL": cde.jobs_api_url, "WORKLOAD_USER": USER, "WORKLOAD_PASSWORD": PASSWORD,
            "HEALER_DATA_DIR": str(data_dir), "JOB_NAME": job, "HEAL_RUN_POLL_S": "0.2", "HEAL_RUN_TIMEOUT_S": "5"}


def _killed_after_naming_the_fix(cde, client: CdeClient, tmp_path: Path) -> tuple[str, int, Path]:
    """A failed run, and a healer process killed once the fix job's name is in the record."""
    job = unique("orders-report")
    run_id = deploy_failed_run(cde, client, job, {APP: CODE}, LOG, ["sales.orders", "sales.report"])
    data_dir = tmp_path / "healer"
    done = run_app_cli(["heal", "--job", job, "--run", str(run_id)],
                       {**_env(cde, data_dir, job), "HEALER_CRASH_AFTER": "preflight.name_chosen"}, tmp_path, 300)
    assert done.returncode == CRASH_EXIT_CODE, done.stdout + done.stderr
    return job, run_id, data_dir


def _record(data_dir: Path, job: str, run_id: int) -> dict:
    return json.loads((data_dir / "incidents" / f"{job}--{run_id}.json").read_text())


def test_a_foreign_job_with_the_fix_name_escalates_the_incident(local_cde_manual, sandbox_player, tmp_path) -> None:
    cde = local_cde_manual
    client = CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD)
    job, run_id, data_dir = _killed_after_naming_the_fix(cde, client, tmp_path)
    first = _record(data_dir, job, run_id)["attempts"][0]
    fix_job = first["fix_job"]
    assert first["diagnosis"]["rule"] == "unresolved-column"  # a rule's diagnosis names Spark's condition too
    assert (first["diagnosis"]["condition"], first["diagnosis"]["condition_category"]) == (
        "UNRESOLVED_COLUMN.WITH_SUGGESTION", "code")
    assert fix_job == f"{job}-fix-1"
    assert fix_job not in {j.name for j in client.list_jobs()}  # named, not yet created

    client.create_resource(f"{fix_job}-someone-elses")  # meanwhile, someone takes the name
    client.upload_file(f"{fix_job}-someone-elses", "other.py", "print('not a fix')\n")
    client.create_job({"name": fix_job, "type": "spark", "mounts": [{"resourceName": f"{fix_job}-someone-elses"}],
                       "spark": {"file": "other.py"}})

    healer = Healer(Settings.from_env(_env(cde, data_dir, job), dotenv=None))
    try:
        record = healer.resume(f"{job}--{run_id}")
        assert record.state == "escalated", record.reason
        assert f"a job named {fix_job!r} exists and is not this incident's fix" in record.reason
        assert client.list_runs(filters=[f"job[eq]{fix_job}"]) == []  # the foreign job never ran
        assert not any(j.name.startswith(f"{fix_job}-") for j in client.list_jobs())  # nor did a pre-flight
        assert client.get_job(fix_job).spark["file"] == "other.py"  # nor was it changed
        assert healer.cycle() == []  # ended: the next cycle leaves it alone
    finally:
        healer.close()
        client.close()


def test_a_record_the_healer_cannot_work_from_ends_as_an_error_once(local_cde_manual, sandbox_player, tmp_path) -> None:
    cde = local_cde_manual
    client = CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD)
    job, run_id, data_dir = _killed_after_naming_the_fix(cde, client, tmp_path)
    path = data_dir / "incidents" / f"{job}--{run_id}.json"
    damaged = json.loads(path.read_text())
    damaged["original"] = None  # the original job's definition lost from the record
    path.write_text(json.dumps(damaged))

    healer = Healer(Settings.from_env(_env(cde, data_dir, job), dotenv=None))
    try:
        record = healer.resume(f"{job}--{run_id}")
        assert record.state == "error"
        assert record.reason.startswith("the healer failed (AssertionError"), record.reason
        assert healer.open_incidents() == [] and healer.cycle() == []
        assert not any(j.name.startswith(f"{job}-fix-") for j in client.list_jobs())
    finally:
        healer.close()
        client.close()

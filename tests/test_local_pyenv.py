"""Local CDE: python-env resources are built into virtual environments (offline pip; no Spark)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from cde_local import LocalCde
from tests.fixtures_cde_local import PROBE_VALUE, CdeApi


@pytest.fixture
def api(local_cde_manual: LocalCde) -> CdeApi:
    return CdeApi(local_cde_manual)


def error(reply: requests.Response, status: int) -> str:
    assert reply.status_code == status, reply.text
    return reply.json()["message"]


def test_build_installs_requirements_and_keeps_pyspark(local_cde_manual: LocalCde, api: CdeApi) -> None:
    name = f"env-{uuid.uuid4().hex[:8]}"
    api.create_resource(name, type="python-env")
    assert api.get(f"/resources/{name}").json()["status"] == "pending-build"
    api.upload(name, "requirements.txt", b"# a tiny local wheel\ncde-local-probe==1.0\n")
    assert api.get(f"/resources/{name}").json()["status"] in ("building", "ready")
    ready = api.wait_resource(name, ("ready", "failed"))
    assert ready["status"] == "ready", ready
    info = ready["pythonEnvInfo"]
    assert info["statusReason"] == "Build completed"
    assert info["numberOfPackages"] == 1
    assert info["numberOfFiles"] > 0 and info["sizeMb"] >= 0 and info["buildDurationSeconds"] >= 0
    described = api.get(f"/resources/{name}?includeFiles=true").json()
    assert [f["path"] for f in described["files"]] == ["requirements.txt"]
    python = local_cde_manual.config.data_dir / "pyenvs" / name / "venv" / "bin" / "python"
    probe = subprocess.run(
        [str(python), "-c", "import cde_local_probe, pyspark, sys; print(cde_local_probe.VALUE, sys.prefix)"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    value, prefix = probe.stdout.split()
    assert value == PROBE_VALUE and Path(prefix) == python.parent.parent


def test_failed_build_reports_pip_error_and_can_be_fixed(api: CdeApi) -> None:
    name = f"env-{uuid.uuid4().hex[:8]}"
    api.create_resource(name, type="python-env")
    api.upload(name, "requirements.txt", b"surely-not-a-package-cde-local==9.9\n")
    failed = api.wait_resource(name, ("ready", "failed"))
    assert failed["status"] == "failed"
    reason = failed["pythonEnvInfo"]["statusReason"]
    assert "surely-not-a-package-cde-local" in reason and "No matching distribution" in reason
    api.create_job({"name": f"uses-{name}", "spark": {"file": "a.py", "pythonEnvResourceName": name}})
    assert (
        error(api.post(f"/jobs/uses-{name}/run", json={}), 400)
        == f"cannot use resource '{name}' in status 'failed'"
    )
    # A corrected requirements file builds again.
    api.upload(name, "requirements.txt", b"\n")
    assert api.wait_resource(name, ("ready", "failed"))["status"] == "ready"
    assert api.post(f"/jobs/uses-{name}/run", json={}).status_code == 201


def test_jobs_refuse_envs_that_are_not_ready_or_missing(api: CdeApi) -> None:
    name = f"env-{uuid.uuid4().hex[:8]}"
    api.create_resource(name, type="python-env")
    api.create_job({"name": f"job-{name}", "spark": {"file": "a.py", "pythonEnvResourceName": name}})
    message = error(api.post(f"/jobs/job-{name}/run", json={}), 400)
    assert message == f"cannot use resource '{name}' in status 'pending-build'"
    api.create_job(
        {"name": f"nojob-{name}", "spark": {"file": "a.py", "pythonEnvResourceName": "no-such-env"}}
    )
    assert "no-such-env" in error(api.post(f"/jobs/nojob-{name}/run", json={}), 404)
    mounted = api.post(
        "/jobs", json={"name": f"mnt-{name}", "mounts": [{"resourceName": name}], "spark": {"file": "a.py"}}
    )
    assert "python-env" in error(mounted, 400)


def test_removing_requirements_returns_env_to_pending(api: CdeApi) -> None:
    name = f"env-{uuid.uuid4().hex[:8]}"
    api.create_resource(name, type="python-env")
    api.upload(name, "requirements.txt", b"")
    assert api.wait_resource(name, ("ready", "failed"))["status"] == "ready"
    assert api.delete(f"/resources/{name}/requirements.txt").status_code == 204
    described = api.get(f"/resources/{name}").json()
    assert described["status"] == "pending-build" and "pythonEnvInfo" not in described
    assert api.delete(f"/resources/{name}").status_code == 204

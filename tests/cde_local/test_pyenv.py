"""Local CDE: python-env resources are built into virtual environments (offline pip; no Spark)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from cde_local import LocalCde
from tests.fixtures.cde_local import PROBE_VALUE, PROBE_WHEEL, CdeApi, cde_error, offline_pip_args, unique


def test_build_installs_requirements_and_keeps_pyspark(local_cde_manual: LocalCde, api: CdeApi) -> None:
    name = unique("env")
    api.create_resource(name, type="python-env")
    assert api.get(f"/resources/{name}").json()["status"] == "pending-build"
    api.upload(name, "requirements.txt", b"# a tiny local wheel\ncde-local-probe==1.0\n")
    assert api.get(f"/resources/{name}").json()["status"] in ("building", "ready")
    ready = api.wait_resource(name, ("ready", "failed"))
    assert ready["status"] == "ready", ready
    info = ready["pythonEnvInfo"]
    assert info["statusReason"] == "Build completed"
    assert info["numberOfPackages"] == 1
    venv = local_cde_manual.config.data_dir / "pyenvs" / name / "venv"
    on_disk = [entry for entry in venv.rglob("*") if not entry.is_dir()]
    assert info["numberOfFiles"] == len(on_disk)  # counted before the probe below adds __pycache__
    assert info["sizeMb"] == round(sum(entry.lstat().st_size for entry in on_disk) / 1_000_000, 2)
    assert info["buildDurationSeconds"] >= 0
    described = api.get(f"/resources/{name}?includeFiles=true").json()
    assert [f["path"] for f in described["files"]] == ["requirements.txt"]
    python = venv / "bin" / "python"
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
    name = unique("env")
    api.create_resource(name, type="python-env")
    api.upload(name, "requirements.txt", b"surely-not-a-package-cde-local==9.9\n")
    failed = api.wait_resource(name, ("ready", "failed"))
    assert failed["status"] == "failed"
    reason = failed["pythonEnvInfo"]["statusReason"]
    assert "surely-not-a-package-cde-local" in reason and "No matching distribution" in reason
    api.create_job({"name": f"uses-{name}", "spark": {"file": "a.py", "pythonEnvResourceName": name}})
    assert (
        cde_error(api.post(f"/jobs/uses-{name}/run", json={}), 400)
        == f"cannot use resource '{name}' in status 'failed'"
    )
    # A corrected requirements file builds again.
    api.upload(name, "requirements.txt", b"\n")
    assert api.wait_resource(name, ("ready", "failed"))["status"] == "ready"
    assert api.post(f"/jobs/uses-{name}/run", json={}).status_code == 201


def test_jobs_refuse_envs_that_are_not_ready_or_missing(api: CdeApi) -> None:
    name = unique("env")
    api.create_resource(name, type="python-env")
    api.create_job({"name": f"job-{name}", "spark": {"file": "a.py", "pythonEnvResourceName": name}})
    message = cde_error(api.post(f"/jobs/job-{name}/run", json={}), 400)
    assert message == f"cannot use resource '{name}' in status 'pending-build'"
    api.create_job(
        {"name": f"nojob-{name}", "spark": {"file": "a.py", "pythonEnvResourceName": "no-such-env"}}
    )
    assert "no-such-env" in cde_error(api.post(f"/jobs/nojob-{name}/run", json={}), 404)
    mounted = api.post(
        "/jobs", json={"name": f"mnt-{name}", "mounts": [{"resourceName": name}], "spark": {"file": "a.py"}}
    )
    assert "python-env" in cde_error(mounted, 400)


def test_removing_requirements_returns_env_to_pending(api: CdeApi) -> None:
    name = unique("env")
    api.create_resource(name, type="python-env")
    api.upload(name, "requirements.txt", b"")
    assert api.wait_resource(name, ("ready", "failed"))["status"] == "ready"
    assert api.delete(f"/resources/{name}/requirements.txt").status_code == 204
    described = api.get(f"/resources/{name}").json()
    assert described["status"] == "pending-build" and "pythonEnvInfo" not in described
    assert api.delete(f"/resources/{name}").status_code == 204


# The sdist of cde-local-probe, with an in-tree build backend (nothing to fetch offline): building
# it records the variables named in WATCHED, as the build sees them, in OUT, then hands out the
# prebuilt wheel. A setup.py runs with the same environment.
ENV_PROBE_BACKEND = """import json, os, shutil

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    with open(OUT, "w") as out:
        json.dump({name: os.environ.get(name) for name in WATCHED}, out)
    return os.path.basename(shutil.copy(WHEEL, wheel_directory))
"""
ENV_PROBE_PYPROJECT = b"""[build-system]
requires = []
build-backend = "probe_backend"
backend-path = ["."]

[project]
name = "cde-local-probe"
version = "1.0"
"""


def build_env_probe_sdist(directory: Path, wheel: Path, out: Path, watched: list[str]) -> Path:
    """`cde_local_probe-1.0.tar.gz`, whose build records its environment in `out`."""
    directory.mkdir(parents=True, exist_ok=True)
    backend = f"OUT = {str(out)!r}\nWHEEL = {str(wheel)!r}\nWATCHED = {watched!r}\n{ENV_PROBE_BACKEND}"
    files = {
        "pyproject.toml": ENV_PROBE_PYPROJECT,
        "probe_backend.py": backend.encode(),
        "PKG-INFO": b"Metadata-Version: 2.1\nName: cde-local-probe\nVersion: 1.0\n",
    }
    sdist = directory / "cde_local_probe-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        for name, content in files.items():
            entry = tarfile.TarInfo(f"cde_local_probe-1.0/{name}")
            entry.size = len(content)
            archive.addfile(entry, io.BytesIO(content))
    return sdist


def test_package_builds_never_see_the_secrets_of_the_process_hosting_the_local_cde(
    local_cde_factory: Callable[..., LocalCde],
    local_wheels: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secrets = {
        "WORKLOAD_PASSWORD": "host-secret-1",
        "LLM_CDP_TOKEN": "host-secret-2",
        "AWS_SECRET_ACCESS_KEY": "host-secret-3",
    }
    passed = {"HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "localhost,.internal", "TZ": "UTC"}
    for name, value in {**secrets, **passed}.items():  # the in-process LocalCde's environment
        monkeypatch.setenv(name, value)
    out = tmp_path / "build-env.json"
    sdists = tmp_path / "sdists"
    build_env_probe_sdist(sdists, local_wheels / PROBE_WHEEL, out, [*secrets, *passed, "HOME", "PATH"])
    cde = local_cde_factory(run_mode="manual", pyenv_pip_args=(*offline_pip_args(sdists), "--no-cache-dir"))
    api = CdeApi(cde)
    api.create_resource("env-probe", type="python-env")
    api.upload("env-probe", "requirements.txt", b"cde-local-probe==1.0\n")
    built = api.wait_resource("env-probe", ("ready", "failed"))
    assert built["status"] == "ready", built
    seen = json.loads(out.read_text())  # the sdist was built, not a cached wheel taken
    assert {name: seen[name] for name in secrets} == dict.fromkeys(secrets)
    assert {name: seen[name] for name in passed} == passed
    assert seen["HOME"] == os.environ["HOME"]
    assert set(os.environ["PATH"].split(os.pathsep)) <= set(seen["PATH"].split(os.pathsep))  # pip may add its own

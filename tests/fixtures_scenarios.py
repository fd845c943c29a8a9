"""Fixtures for the scenarios tests (loaded by conftest.py).

- `scenario_cde` (session): one LocalCde running every scenario on real Spark, with its own data
  directory (so its shared warehouse holds only scenario tables). Its python-env builds run pip
  with --no-index: the tutorial's requirements are satisfied by the main environment.
- `scenario_client` (session): a CdeClient for it.
- `retail_world` (session): the retail generator's resource and job installed and run once; the
  scenarios that read its tables skip it (`load_scenario(..., skip_setup=...)`).

Helpers: `deploy_fix(client, scenario)` deploys the known-good fix of tests/fixes/<scenario>/ as a
new job (and, for code fixes, a new resource), the way the healer deploys one, and returns the
job to run; `run_and_wait` runs a job to its end.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cde_client import CdeClient
from cde_local import LocalCde, LocalCdeConfig
from sample_jobs import Scenario, get_scenario, install_scenario, run_job_and_wait

FIXES_DIR = Path(__file__).resolve().parent / "fixes"
SCENARIO_USER, SCENARIO_PASSWORD = "dex-user", "dex-password"
RUN_WAIT_S = 600.0  # one Spark run; 10-30 s normally, more when the machine is busy
RETAIL_GENERATOR = "retail-datagen"


@pytest.fixture(scope="session")
def scenario_cde(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCde]:
    config = LocalCdeConfig(
        data_dir=tmp_path_factory.mktemp("scenario-cde"),
        port=0,
        users={SCENARIO_USER: SCENARIO_PASSWORD},
        pyenv_pip_args=("--no-index",),
    )
    with LocalCde(config) as cde:
        yield cde


@pytest.fixture(scope="session")
def scenario_client(scenario_cde: LocalCde) -> Iterator[CdeClient]:
    with CdeClient(scenario_cde.jobs_api_url, user=SCENARIO_USER, password=SCENARIO_PASSWORD) as client:
        yield client


@pytest.fixture(scope="session")
def retail_world(scenario_client: CdeClient) -> int:
    """Installs one retail scenario and runs the shared generator once; returns the run id."""
    install_scenario(scenario_client, get_scenario("schema_drift"))
    run_id, status = run_and_wait(scenario_client, RETAIL_GENERATOR)
    assert status == "succeeded", log_tail(scenario_client, run_id)
    return run_id


def run_and_wait(client: CdeClient, job: str, overrides: dict[str, Any] | None = None) -> tuple[int, str]:
    return run_job_and_wait(client, job, overrides=overrides, timeout_s=RUN_WAIT_S)


def log_tail(client: CdeClient, run_id: int, lines: int = 40) -> str:
    """The end of a run's driver/stdout, for assertion messages."""
    text = client.get_logs(run_id, "driver/stdout")
    return f"run {run_id} driver/stdout (last {lines} lines):\n" + "\n".join(text.splitlines()[-lines:])


def deep_merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` with `changes` applied: dicts merged key by key, everything else replaced."""
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def fix_files(scenario: Scenario) -> dict[str, bytes]:
    """The known-good code fix: file name → content (empty for config and rerun remedies)."""
    folder = FIXES_DIR / scenario.name
    if not folder.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.name != "fix.json"}


def fix_changes(scenario: Scenario) -> dict[str, Any]:
    """The known-good configuration fix: changes to the job spec (empty unless remedy is config)."""
    path = FIXES_DIR / scenario.name / "fix.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def deploy_fix(client: CdeClient, scenario: Scenario) -> str:
    """Deploy the scenario's known-good fix as a new job `<app job>-fix`; return the job to run.

    code: a new resource `<app resource>-fix` with the fixed files replacing the originals;
    config: the app job's spec with fix.json merged in; rerun: nothing new, the app job itself."""
    if scenario.remedy == "rerun":
        return scenario.app_job
    spec = scenario.app_spec
    spec["name"] = f"{scenario.app_job}-fix"
    if scenario.remedy == "code":
        resource = scenario.app_resource
        files = {name: path.read_bytes() for name, path in scenario.resource_files(resource).items()}
        fixed = fix_files(scenario)
        assert fixed and set(fixed) <= set(files), f"fix files {sorted(fixed)} not among {sorted(files)}"
        files.update(fixed)
        new_resource = f"{resource}-fix"
        client.create_resource(new_resource)
        for name, data in files.items():
            client.upload_file(new_resource, name, data)
        spec["mounts"] = [
            {**mount, "resourceName": new_resource} if mount["resourceName"] == resource else mount
            for mount in spec["mounts"]
        ]
    elif scenario.remedy == "config":
        spec = deep_merge(spec, fix_changes(scenario))
    else:
        raise AssertionError(f"scenario {scenario.name} has no fix (remedy {scenario.remedy})")
    client.create_job(spec)
    return spec["name"]

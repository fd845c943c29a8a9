"""Every scenario on a real local CDE, over HTTP, with real Spark.

For each scenario: the application run fails with the error signature of its scenario.json; the
baseline job (heal scenarios) writes the last good output and the output check accepts it; the
known-good fix (bench/fixes/) deployed as a new job succeeds, rewrites an output table, and the check
accepts the output. The transient scenario heals by a plain rerun; the escalate scenario has no
baseline and no fix, and its check rejects what the failed run left. (That the checks reject wrong
output, with the baseline in place, is shown by `python -m bench.deceptive.verify`.)

The tutorial goes through the CLI (`python -m sample_jobs load tutorial`), the others through
`load_scenario`. One LocalCde serves all, one run at a time; the retail generator shared by most
scenarios runs once (`retail_world`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cde_client import CdeClient
from cde_local import LocalCde
from sample_jobs import get_scenario, list_scenarios, load_scenario
from tests.fixtures.scenarios import (
    FIXES_DIR,
    RETAIL_GENERATOR,
    RUN_WAIT_S,
    SCENARIO_PASSWORD,
    SCENARIO_USER,
    deploy_fix,
    log_tail,
    run_and_wait,
)
from tests.paths import REPO

RETAIL_SCENARIOS = [s.name for s in list_scenarios() if RETAIL_GENERATOR in s.setup_runs]
CLI_TIMEOUT_S = 1200.0


def assert_check_rejects(client: CdeClient, check_job: str) -> None:
    run_id, status = run_and_wait(client, check_job)
    log = client.get_logs(run_id, "driver/stdout")
    assert status == "failed", f"the check accepted a broken output\n{log_tail(client, run_id)}"
    assert "CHECK FAILED" in log, f"the check crashed instead of rejecting\n{log_tail(client, run_id)}"


def assert_check_accepts(client: CdeClient, check_job: str) -> None:
    run_id, status = run_and_wait(client, check_job)
    assert status == "succeeded", f"the check rejected the fixed output\n{log_tail(client, run_id, 20)}"
    assert "CHECK PASSED" in client.get_logs(run_id, "driver/stdout")


def table_files(cde: LocalCde) -> set[Path]:
    """The data files of every table in the local CDE's warehouse (a table's folder is a file's parent)."""
    warehouse = cde.config.data_dir / "warehouse"
    return {p.relative_to(warehouse) for p in warehouse.rglob("*.parquet")}


def heal_with_known_fix(cde: LocalCde, client: CdeClient, name: str) -> None:
    scenario = get_scenario(name)
    job = deploy_fix(client, scenario)
    before = table_files(cde)
    run_id, status = run_and_wait(client, job)
    assert status == "succeeded", f"the known fix of {name} failed\n{log_tail(client, run_id)}"
    # The check accepts the baseline too: the fix must have rewritten a table that was there.
    rewritten = {p.parent for p in table_files(cde) - before} & {p.parent for p in before}
    assert rewritten, f"the known fix of {name} rewrote no existing table"
    assert_check_accepts(client, scenario.check_job)


def test_tutorial_through_the_cli(scenario_cde: LocalCde, scenario_client: CdeClient, tmp_path: Path) -> None:
    # The connection settings come from a .env file in the working directory.
    (tmp_path / ".env").write_text(
        f"JOBS_API_URL={scenario_cde.jobs_api_url}\nWORKLOAD_USER={SCENARIO_USER}\n"
        f"WORKLOAD_PASSWORD={SCENARIO_PASSWORD}\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("JOBS_API_URL", "WORKLOAD_USER", "WORKLOAD_PASSWORD")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-m", "sample_jobs", "load", "tutorial", "--size", "2000", "--timeout", str(RUN_WAIT_S)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert SCENARIO_PASSWORD not in out
    app_run = int(re.search(r"application run (\d+) of sql-select-fail: failed", out).group(1))
    datagen_run = int(re.search(r"run (\d+) of datagen: succeeded", out).group(1))
    assert f"{scenario_cde.jobs_api_url}/job-runs/{app_run}/logs?type=driver/stdout" in out

    client = scenario_client
    assert client.get_resource("datagen-env").status == "ready"
    assert {f.path for f in client.get_resource("failing-pipeline").files} == {"datagen.py", "sparkApp.py"}
    assert client.get_job("sql-select-fail").spark["pythonEnvResourceName"] == "datagen-env"
    assert client.get_run(datagen_run).spec["args"][-2:] == ["--rows", "2000"]
    log = client.get_logs(app_run, "driver/stdout")
    assert "UNRESOLVED_COLUMN.WITH_SUGGESTION" in log
    assert re.search(r"Did you mean one of the following\? \[`account_id`", log), log_tail(client, app_run)

    # Loading again reuses everything and runs nothing.
    again = load_scenario(client, "tutorial", run=False)
    assert (again.app_run_id, again.status, again.setup_run_ids) == (None, None, {})

    baseline_run = int(re.search(r"written by run (\d+) of sql-select-fail-baseline", out).group(1))
    assert baseline_run > app_run
    assert (client.get_run(baseline_run).job, client.get_run(baseline_run).status) == (
        "sql-select-fail-baseline", "succeeded")
    assert_check_accepts(client, "sql-select-fail-check")
    heal_with_known_fix(scenario_cde, client, "tutorial")


@pytest.mark.parametrize("name", RETAIL_SCENARIOS)
def test_scenario_fails_and_known_fix_heals(name: str, scenario_cde: LocalCde, scenario_client: CdeClient,
                                            retail_world: int) -> None:
    client = scenario_client
    scenario = get_scenario(name)
    result = load_scenario(client, scenario, skip_setup={RETAIL_GENERATOR})
    assert result.setup_run_ids == {}
    assert result.status == "failed", f"{name}: the application did not fail\n{log_tail(client, result.app_run_id)}"
    assert result.as_expected
    log = client.get_logs(result.app_run_id, "driver/stdout")
    assert scenario.expected_error in log, f"{name}: no {scenario.expected_error!r}\n{log_tail(client, result.app_run_id)}"

    if scenario.expected == "escalate":
        assert result.baseline_run_id is None and scenario.baseline_job is None
        assert_check_rejects(client, scenario.check_job)
        assert not (FIXES_DIR / name).exists(), "an escalate scenario has no known fix"
        return
    assert result.baseline_run_id is not None and result.baseline_run_id > result.app_run_id
    baseline_run = client.get_run(result.baseline_run_id)
    assert (baseline_run.job, baseline_run.status) == (scenario.baseline_job, "succeeded")
    # the baseline writes what the check recomputes (check.outputs()); the tutorial's test runs the
    # check on it, here the check runs on the known fix's output
    heal_with_known_fix(scenario_cde, client, name)

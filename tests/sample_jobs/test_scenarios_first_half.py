"""Every scenario on a real local CDE, over HTTP, with real Spark.

For each scenario: the application run fails with the error signature of its scenario.json; the
known-good fix (bench/fixes/) deployed as a new job succeeds, writes its output, and the check
accepts the output. The transient scenario heals by a plain rerun; the escalate scenario has no
baseline and no fix, and its check rejects what the failed run left. (That the checks reject wrong
output, with the baseline in place, is shown by `python -m bench.deceptive.verify`.)

The tutorial goes through the CLI (`python -m sample_jobs load tutorial`), which also runs its
baseline job (the one program every scenario's baseline runs); its known fix is healed on real Spark
by tests/agents/heal/test_tutorial.py. The others are installed and their application run without
the baseline. One LocalCde per test worker serves all, one run at a time; the retail generator
shared by most scenarios runs once per worker (`retail_world`).

The scenarios are split over two modules (this one has the tutorial and the first half of the retail
scenarios by name, `test_scenarios_second_half.py` the rest) so that pytest-xdist's `--dist loadfile`
can give them to two workers: together they are the suite's largest module.
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
from sample_jobs import load_scenario
from tests.fixtures.scenarios import (
    RETAIL_SCENARIOS,
    RUN_WAIT_S,
    SCENARIO_PASSWORD,
    SCENARIO_USER,
    fails_and_known_fix_heals,
    log_tail,
)
from tests.paths import REPO

FIRST_HALF = RETAIL_SCENARIOS[: len(RETAIL_SCENARIOS) // 2]
CLI_TIMEOUT_S = 1200.0


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
    # its known fix, and the check on the fix's output: tests/agents/heal/test_tutorial.py heals it on real Spark


@pytest.mark.parametrize("name", FIRST_HALF)
def test_scenario_fails_and_known_fix_heals(name: str, scenario_cde: LocalCde, scenario_client: CdeClient,
                                            retail_world: int) -> None:
    fails_and_known_fix_heals(scenario_cde, scenario_client, name)

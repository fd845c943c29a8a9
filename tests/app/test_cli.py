"""`python -m app` as a user runs it, on input it must refuse: a clear message and exit code 2 (the
CLI's code for bad input), never a traceback. No Spark and no CDE: JOBS_API_URL points at a port
nobody listens on, so any network call would show up as a different error."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.heal import run_app_cli
from tests.paths import REPO

ROOT = REPO
NO_CDE = "http://127.0.0.1:9/dex/api/v1"
RUN_ID_RULE = "a run id is a whole number from 1 to 9223372036854775807"


def run_app(args: list[str], data_dir: Path, **env: str) -> subprocess.CompletedProcess:
    return run_app_cli(args, {"JOBS_API_URL": NO_CDE, "WORKLOAD_USER": "cli-user", "WORKLOAD_PASSWORD": "cli-password",
                              "HEALER_DATA_DIR": str(data_dir), **env}, data_dir.parent, timeout_s=120)


@pytest.mark.parametrize(("args", "env", "message"), [
    pytest.param(["heal", "--job", "nightly", "--run", "-5"], {}, f"argument --run: {RUN_ID_RULE}, not -5", id="run -5"),
    pytest.param(["heal", "--job", "nightly", "--run", "0"], {}, f"argument --run: {RUN_ID_RULE}, not 0", id="run 0"),
    pytest.param(["heal", "--job", "nightly", "--run", "five"], {}, f"argument --run: {RUN_ID_RULE}, not 'five'", id="run five"),
    pytest.param(["heal", "--job", "nightly", "--run", "3.5"], {}, f"argument --run: {RUN_ID_RULE}, not '3.5'", id="run 3.5"),
    pytest.param(["heal", "--job", "nightly", "--run", str(2**63)], {}, f"argument --run: {RUN_ID_RULE}, not {2**63}", id="run 2^63"),
    pytest.param(["heal", "--job", "", "--run", "7"], {}, "argument --job: the job name is empty", id="job empty"),
    pytest.param(["heal", "--job", "   "], {}, "argument --job: the job name is empty", id="job blank"),
    pytest.param(["heal", "--job", "../../etc/passwd", "--run", "7"], {}, "argument --job: '../../etc/passwd' is not a job name", id="job path"),
    pytest.param(["approve", "nightly-7"], {}, "argument incident: an incident id is <job>--<run id>, not 'nightly-7'", id="incident no separator"),
    pytest.param(["reject", "nightly--0"], {}, f"argument incident: {RUN_ID_RULE}, not 0", id="incident run 0"),
    pytest.param(["approve", "../records--7"], {}, "argument incident: '../records' is not a job name", id="incident path"),
    pytest.param(["serve", "--port", "70000"], {}, "argument --port: a port is a whole number from 0 to 65535, not '70000'", id="serve port"),
    pytest.param(["demo", "--no-ui"], {"DEMO_CDE_PORT": "eighty"}, "argument --port: a port is a whole number", id="demo port env"),
    pytest.param(["demo", "--no-ui", "--environments", "prd"], {}, "argument --environments: two different environment "
                 "names, e.g. dev,prd", id="demo one environment"),
    pytest.param(["demo", "--no-ui", "--environments", "dev,dev"], {}, "not 'dev,dev'", id="demo same environment"),
])
def test_bad_input_is_refused_clearly_before_anything_runs(tmp_path, args, env, message):
    data_dir = tmp_path / "healer"
    done = run_app(args, data_dir, **env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not data_dir.exists()  # no healer was even built


def test_an_incident_another_healer_holds_is_left_alone(tmp_path):
    from agents.lease import IncidentLease

    data_dir = tmp_path / "healer"
    with IncidentLease(data_dir / "leases", "nightly--7"):  # as a healer in another process holds it
        healing = run_app(["heal", "--job", "nightly", "--run", "7"], data_dir)
        approving = run_app(["approve", "nightly--7"], data_dir)
    for done in (healing, approving):
        assert done.returncode == 2, done.stdout + done.stderr
        assert f"error: incident nightly--7 is being worked on by another healer (pid {os.getpid()} since " \
            in done.stderr
        assert "Traceback" not in done.stderr
    assert list((data_dir / "incidents").iterdir()) == []  # nothing was opened


def test_rules_lists_the_catalog_and_explains_one_rule(tmp_path):
    from agents.remedies import CATALOG

    listed = run_app(["rules"], tmp_path / "healer")
    assert listed.returncode == 0, listed.stderr
    rows = listed.stdout.splitlines()[1:]
    assert [row.split()[0] for row in rows] == [rule.code for rule in CATALOG]  # in the order they are tried
    for rule, row in zip(CATALOG, rows, strict=True):
        assert rule.name in row and rule.summary in row and (rule.applicability or "diagnosis only") in row
    fixer = next(rule for rule in CATALOG if rule.applicability)
    explained = run_app(["rules", fixer.code.lower()], tmp_path / "healer")
    assert explained.returncode == 0, explained.stderr
    assert explained.stdout.startswith(f"{fixer.code} {fixer.name}: {fixer.summary}")
    assert f"fix: {fixer.applicability}" in explained.stdout.replace("changes results", "changes-results")
    unknown = run_app(["rules", "Z999"], tmp_path / "healer")
    assert unknown.returncode == 2 and "no rule 'Z999' in the catalog" in unknown.stderr
    assert "Traceback" not in unknown.stderr

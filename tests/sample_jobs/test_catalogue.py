"""The scenario catalogue, its validation, the known fixes and the CLI's error paths (no Spark)."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cde_client import CdeClient
from sample_jobs import (
    InvalidScenario,
    ScenarioNotFound,
    get_scenario,
    list_scenarios,
    load_scenario,
    read_scenario,
)
from sample_jobs.scenario import SCENARIOS_DIR
from tests.fixtures.scenarios import deep_merge, fix_changes, fix_files
from tests.paths import FIXES_DIR, REPO

SCENARIOS = list_scenarios()


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("JOBS_API_URL", "WORKLOAD_USER", "WORKLOAD_PASSWORD")}
    base["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "sample_jobs", *args], cwd=cwd, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=120)


# -- the catalogue ---------------------------------------------------------------------------------


def test_catalogue_has_the_tutorial_and_ten_more_distinct_classes() -> None:
    names = [s.name for s in SCENARIOS]
    assert "tutorial" in names and len(names) >= 11
    classes = [s.failure_class for s in SCENARIOS]
    assert len(set(classes)) == len(classes), classes
    assert {s.remedy for s in SCENARIOS} == {"code", "config", "rerun", "none"}
    assert [s.name for s in SCENARIOS if s.expected == "escalate"] == ["missing_input"]


def test_tutorial_keeps_the_tutorial_names() -> None:
    s = get_scenario("tutorial")
    assert (s.app_job, s.app_resource, s.app_file) == ("sql-select-fail", "failing-pipeline", "sparkApp.py")
    assert s.setup_runs == ["datagen"]
    assert s.resource("datagen-env").type == "python-env"
    assert sorted(s.resource_files("failing-pipeline")) == ["datagen.py", "sparkApp.py"]
    app = s.app_spec["spark"]
    assert app["pythonEnvResourceName"] == "datagen-env" and len(app["args"]) == 2
    assert s.job("datagen")["spark"]["args"] == app["args"]
    assert s.check_job == "sql-select-fail-check"


def test_names_are_distinct_across_scenarios_unless_shared_identically() -> None:
    owners: dict[tuple[str, str], set[str]] = {}
    for s in SCENARIOS:
        for r in s.resources:
            owners.setdefault(("resource", r.name), set()).add(s.name)
        for spec in s.all_jobs():
            owners.setdefault(("job", spec["name"]), set()).add(s.name)
    shared = {key for key, users in owners.items() if len(users) > 1}
    assert shared == {("resource", "retail-data"), ("job", "retail-datagen")}
    app_jobs = [s.app_job for s in SCENARIOS]
    assert len(set(app_jobs)) == len(app_jobs)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario_files_are_python_that_compiles(scenario) -> None:
    for resource in scenario.resources:
        for name, path in scenario.resource_files(resource.name).items():
            if name.endswith(".py"):
                compile(path.read_text(), str(path), "exec")


# -- baselines ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_every_heal_scenario_has_a_baseline_job_of_its_own(scenario) -> None:
    if scenario.expected != "heal":  # escalate and anomaly scenarios: no last good output to compare with
        assert scenario.baseline is None and scenario.baseline_job is None and scenario.baseline_spec is None
        return
    spec = scenario.baseline_spec
    assert spec is not None and scenario.baseline_job == spec["name"] == f"{scenario.app_job}-baseline"
    assert scenario.job(spec["name"]) == spec
    assert spec["mounts"] == [{"resourceName": f"{scenario.app_job}-baseline"}]
    assert spec["spark"]["file"] == "baseline.py"
    assert spec["spark"]["args"] == scenario.check_spec["spark"]["args"], "the baseline reads the check's args"
    files = scenario.resource_files(f"{scenario.app_job}-baseline")
    assert sorted(files) == ["baseline.py", "check.py", "checklib.py"]
    assert files["baseline.py"] == SCENARIOS_DIR / "common" / "baseline.py"
    assert files["check.py"] == scenario.directory / "check.py"
    assert scenario.app_resource not in {m["resourceName"] for m in spec["mounts"]}
    # baseline.py writes what the check's outputs(spark, args) returns
    tree = ast.parse(files["check.py"].read_text())
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert [a.arg for a in functions["outputs"].args.args] == ["spark", "args"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["baseline"]["job"].update(name="other-baseline"), "the baseline job must be named"),
        (lambda r: r["baseline"]["job"].update(mounts=[{"resourceName": "clickstream-pipeline"}]),
         "the baseline job mounts the application's resource(s) ['clickstream-pipeline']"),
        (lambda r: r["baseline"]["job"]["spark"].update(file="nope.py"), "spark.file 'nope.py' is in none of"),
        (lambda r: r["baseline"].update(extra=1), "baseline.extra: Extra inputs are not permitted"),
        (lambda r: r["jobs"].append(r["baseline"]["job"]), "the baseline job must not also be listed in jobs"),
    ],
)
def test_invalid_baselines_are_rejected_with_the_reason(tmp_path: Path, change, message: str) -> None:
    root = copy_catalogue(tmp_path, "schema_drift")
    edit(root / "schema_drift" / "scenario.json", change)
    with pytest.raises(InvalidScenario) as caught:
        read_scenario(root / "schema_drift" / "scenario.json")
    assert message in str(caught.value)


def test_an_escalate_scenario_may_not_have_a_baseline(tmp_path: Path) -> None:
    root = copy_catalogue(tmp_path, "missing_input")

    def add_baseline(raw):
        job = {**raw["check"]["job"], "name": "supplier-spend-report-baseline"}
        raw["baseline"] = {"job": job}

    edit(root / "missing_input" / "scenario.json", add_baseline)
    with pytest.raises(InvalidScenario, match="only heal scenarios have a baseline"):
        read_scenario(root / "missing_input" / "scenario.json")


def test_a_scenario_without_a_baseline_is_valid(tmp_path: Path) -> None:
    root = copy_catalogue(tmp_path, "schema_drift")
    edit(root / "schema_drift" / "scenario.json", lambda r: r.pop("baseline"))
    scenario = read_scenario(root / "schema_drift" / "scenario.json")
    assert scenario.baseline_job is None and "clickstream-daily-users-baseline" not in {
        j["name"] for j in scenario.all_jobs()}


# -- known fixes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_each_scenario_has_the_fix_its_remedy_needs(scenario) -> None:
    folder = FIXES_DIR / scenario.name
    if scenario.remedy in ("none", "rerun"):
        assert not folder.exists(), f"{scenario.remedy} scenarios have no fix files"
        return
    if scenario.remedy == "config":
        assert fix_files(scenario) == {}
        changes = fix_changes(scenario)
        assert set(changes) == {"spark"} and changes["spark"], changes
        fixed = deep_merge(scenario.app_spec, changes)
        assert fixed != scenario.app_spec and fixed["spark"]["file"] == scenario.app_file
        return
    assert not (folder / "fix.json").exists()
    files = scenario.resource_files(scenario.app_resource)
    fixed = fix_files(scenario)
    assert fixed and set(fixed) <= set(files), (sorted(fixed), sorted(files))
    for name, content in fixed.items():
        original = files[name].read_bytes()
        assert content != original, f"{name} is not changed by the fix"
        ast.parse(content)


def test_deep_merge_replaces_lists_and_merges_dicts() -> None:
    base = {"spark": {"args": ["a"], "conf": {"x": "1", "y": "2"}, "file": "f.py"}}
    merged = deep_merge(base, {"spark": {"args": ["a", "b"], "conf": {"y": "3"}}})
    assert merged == {"spark": {"args": ["a", "b"], "conf": {"x": "1", "y": "3"}, "file": "f.py"}}
    assert base["spark"]["conf"]["y"] == "2"


# -- validation ------------------------------------------------------------------------------------


def copy_catalogue(tmp_path: Path, *names: str) -> Path:
    root = tmp_path / "scenarios"
    shutil.copytree(SCENARIOS_DIR / "common", root / "common")
    for name in names:
        shutil.copytree(SCENARIOS_DIR / name, root / name)
    return root


def edit(path: Path, change) -> None:
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("expected_error"), "expected_error: Field required"),
        (lambda r: r.update(remedy="none"), "remedy must be 'none' exactly when expected is 'escalate'"),
        (lambda r: r.update(expected="maybe"), "expected: Input should be 'heal', 'escalate' or 'anomaly'"),
        (lambda r: r.update(app_job="nope"), "app_job 'nope' is not one of the jobs"),
        (lambda r: r["check"]["job"].update(name="other-check"), "the check job must be named"),
        (lambda r: r["resources"][1]["files"].append("missing.py"), "no file 'missing.py'"),
        (lambda r: r["resources"][1]["files"].append("../../../etc/passwd"), "outside the scenarios folder"),
        (lambda r: r["jobs"][1]["mounts"].append({"resourceName": "ghost"}), "mounts 'ghost', not a resource"),
        (lambda r: r["jobs"][1]["spark"].update(file="other.py"), "spark.file 'other.py' is in none of"),
        (lambda r: r["jobs"][1]["spark"].update(conf={"spark.x": 1}), "spark.conf values must be strings"),
        (lambda r: r.update(setup_runs=["unknown-job"]), "setup run 'unknown-job' must name a job"),
        (lambda r: r.update(name="other"), "differs from the folder's name"),
        (lambda r: r.update(surprise=True), "surprise: Extra inputs are not permitted"),
    ],
)
def test_invalid_scenarios_are_rejected_with_the_reason(tmp_path: Path, change, message: str) -> None:
    root = copy_catalogue(tmp_path, "schema_drift")
    edit(root / "schema_drift" / "scenario.json", change)
    with pytest.raises(InvalidScenario) as caught:
        read_scenario(root / "schema_drift" / "scenario.json")
    assert message in str(caught.value)
    assert "schema_drift/scenario.json" in str(caught.value)


def test_not_json_is_rejected(tmp_path: Path) -> None:
    root = copy_catalogue(tmp_path, "schema_drift")
    (root / "schema_drift" / "scenario.json").write_text("{not json")
    with pytest.raises(InvalidScenario, match="not readable JSON"):
        list_scenarios(root)


def test_a_shared_name_with_two_definitions_is_rejected(tmp_path: Path) -> None:
    root = copy_catalogue(tmp_path, "schema_drift", "ansi_cast")
    edit(root / "ansi_cast" / "scenario.json", lambda r: r["jobs"][0]["spark"].update(args=["--rows", "5"]))
    with pytest.raises(InvalidScenario, match="job 'retail-datagen' is defined differently in ansi_cast and"):
        list_scenarios(root)


def test_unknown_scenario_lists_the_known_ones() -> None:
    with pytest.raises(ScenarioNotFound) as caught:
        get_scenario("no_such_scenario")
    assert caught.value.available == [s.name for s in SCENARIOS]
    assert "tutorial" in str(caught.value)


def test_load_scenario_rejects_a_bad_size_before_any_call() -> None:
    client = CdeClient("http://127.0.0.1:9/dex/api/v1", user="u", password="p", max_retries=0)
    with pytest.raises(ValueError, match="size must be a positive integer"):
        load_scenario(client, "tutorial", size=0)


# -- CLI ---------------------------------------------------------------------------------------------


def test_cli_list_shows_every_scenario(tmp_path: Path) -> None:
    done = run_cli("list", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for s in SCENARIOS:
        assert s.name in done.stdout and s.expected_error in done.stdout


def test_cli_load_without_settings_says_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("WORKLOAD_USER=someone\n")
    done = run_cli("load", "tutorial", cwd=tmp_path)
    assert done.returncode == 2
    assert "JOBS_API_URL, WORKLOAD_PASSWORD not set" in done.stdout


def test_cli_load_of_an_unknown_scenario_exits_2(tmp_path: Path) -> None:
    done = run_cli("load", "nope", cwd=tmp_path, env={"JOBS_API_URL": "http://127.0.0.1:9/dex/api/v1",
                                                       "WORKLOAD_USER": "u", "WORKLOAD_PASSWORD": "p"})
    assert done.returncode == 2
    assert "no scenario named 'nope'" in done.stdout


def test_cli_load_reports_an_unreachable_cde(tmp_path: Path) -> None:
    done = run_cli("load", "tutorial", "--no-run", cwd=tmp_path,
                   env={"JOBS_API_URL": "http://127.0.0.1:9/dex/api/v1", "WORKLOAD_USER": "u",
                        "WORKLOAD_PASSWORD": "secret-pw-123"})
    assert done.returncode == 1
    assert "error: loading tutorial failed" in done.stdout
    assert "secret-pw-123" not in done.stdout + done.stderr

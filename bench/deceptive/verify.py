"""`python -m bench.deceptive.verify [--scenario S ...] [--rows N]`: the deceptive fixes, and the
baselines, on real Spark.

In one local CDE (spark mode, its own temporary data directory), for each scenario asked (default:
every scenario with a baseline or deceptive fixes), one after the other:
1. `load_scenario`: data generators (the shared retail one once), the application's failed run and
   the baseline run; then the output check, which must accept the baseline (CHECK PASSED);
2. when it has deceptive fixes: its output tables are emptied (`stale_outputs.py`, standing for an
   output an older run left), then each variant is deployed as a new job
   `<app job>-deceptive-<variant>` (a code variant in a new resource with its files replacing the
   application's; a fix.json variant merged into the application's spec), run, and the output
   check run after it. A variant must end `succeeded` (exit 0) and the check must fail
   (CHECK FAILED). No variant can pass on what an earlier one left: that is wrong or empty too.

Prints one row per baseline and variant (scenario, variant, run status, seconds, check verdict, the
check's first problem) and exits 0 when every row is as expected, 1 otherwise, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.scripted import DECEPTIVE_DIR, deceptive_variants
from cde_client import CdeClient
from cde_local import LocalCde, LocalCdeConfig
from sample_jobs import Scenario, list_scenarios, load_scenario, run_job_and_wait

USER, PASSWORD = "dex-user", "verify-deceptive"
RUN_TIMEOUT_S = 900.0  # one Spark run
STALE_FILE = Path(__file__).resolve().parent / "stale_outputs.py"
PROBLEM_CHARS = 110  # of the check's first problem, in the table


@dataclass(frozen=True)
class Row:
    scenario: str
    variant: str  # "(baseline)" for the last good output
    run_status: str
    seconds: float | None
    check: str  # PASSED | FAILED | CRASHED (the check neither passed nor failed cleanly)
    problem: str
    expected_check: str

    @property
    def ok(self) -> bool:
        return self.run_status == "succeeded" and self.check == self.expected_check


def _say(message: str) -> None:
    print(message, flush=True)


def deep_merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` with `changes` applied: dicts merged key by key, everything else replaced."""
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _seconds(client: CdeClient, run_id: int) -> float | None:
    run = client.get_run(run_id)
    if run.started is None or run.ended is None:
        return None
    return round((run.ended - run.started).total_seconds(), 1)


def run_check(client: CdeClient, scenario: Scenario) -> tuple[str, str]:
    """(verdict, first problem) of one run of the scenario's output check."""
    run_id, status = run_job_and_wait(client, scenario.check_job, timeout_s=RUN_TIMEOUT_S)
    log = client.get_logs(run_id, "driver/stdout")
    problems = [line.removeprefix("CHECK PROBLEM: ") for line in log.splitlines() if line.startswith("CHECK PROBLEM")]
    if status == "succeeded" and "CHECK PASSED" in log:
        return "PASSED", ""
    if status == "failed" and "CHECK FAILED" in log:
        return "FAILED", problems[0] if problems else ""
    return "CRASHED", f"check run {run_id} ended {status} without a verdict"


def _check_files(scenario: Scenario) -> dict[str, bytes]:
    resource = scenario.check_spec["mounts"][0]["resourceName"]
    return {name: path.read_bytes() for name, path in scenario.resource_files(resource).items()}


def _upload(client: CdeClient, resource: str, files: dict[str, bytes]) -> None:
    client.create_resource(resource)
    for name, data in files.items():
        client.upload_file(resource, name, data)


def make_outputs_stale(client: CdeClient, scenario: Scenario) -> None:
    """Empty the scenario's output tables with a job of the check's files and stale_outputs.py."""
    name = f"{scenario.app_job}-stale"
    _upload(client, name, {**_check_files(scenario), STALE_FILE.name: STALE_FILE.read_bytes()})
    spec = scenario.check_spec
    spec.update(name=name, mounts=[{"resourceName": name}])
    spec["spark"]["file"] = STALE_FILE.name
    client.create_job(spec)
    run_id, status = run_job_and_wait(client, name, timeout_s=RUN_TIMEOUT_S)
    if status != "succeeded":
        raise RuntimeError(f"emptying the outputs of {scenario.name} ended {status} (run {run_id})")


def deploy_variant(client: CdeClient, scenario: Scenario, variant: Path) -> str:
    """Deploy one deceptive fix as a new job, the way the healer deploys a fix; the job's name."""
    slug = variant.name.replace("_", "-")
    spec = scenario.app_spec
    spec["name"] = f"{scenario.app_job}-deceptive-{slug}"
    fix = variant / "fix.json"
    if fix.is_file():
        spec = deep_merge(spec, json.loads(fix.read_text(encoding="utf-8")))
    else:
        resource = scenario.app_resource
        files = {name: path.read_bytes() for name, path in scenario.resource_files(resource).items()}
        changed = {p.name: p.read_bytes() for p in variant.iterdir() if p.is_file() and p.name != "deceptive.json"}
        unknown = sorted(set(changed) - set(files))
        if unknown or not changed:
            raise ValueError(f"{variant}: files {unknown or '(none)'} are not files of resource {resource}")
        new_resource = f"{resource}-deceptive-{slug}"
        _upload(client, new_resource, {**files, **changed})
        spec["mounts"] = [{**m, "resourceName": new_resource} if m["resourceName"] == resource else m
                          for m in spec["mounts"]]
    client.create_job(spec)
    return str(spec["name"])


def verify_scenario(client: CdeClient, scenario: Scenario, generated: set[str], size: int | None) -> list[Row]:
    _say(f"== {scenario.name}: loading")
    loaded = load_scenario(client, scenario, size=size, skip_setup=generated, run_timeout_s=RUN_TIMEOUT_S)
    generated.update(scenario.setup_runs)
    rows = []
    if loaded.baseline_run_id is not None:
        verdict, problem = run_check(client, scenario)
        rows.append(Row(scenario.name, "(baseline)", client.get_run(loaded.baseline_run_id).status,
                        _seconds(client, loaded.baseline_run_id), verdict, problem, "PASSED"))
        _say(f"   baseline: {rows[-1]}")
    variants = deceptive_variants(scenario, DECEPTIVE_DIR)
    if variants:
        make_outputs_stale(client, scenario)
    for variant in variants:
        job = deploy_variant(client, scenario, variant)
        run_id, status = run_job_and_wait(client, job, timeout_s=RUN_TIMEOUT_S)
        verdict, problem = run_check(client, scenario)
        rows.append(Row(scenario.name, variant.name, status, _seconds(client, run_id), verdict, problem, "FAILED"))
        _say(f"   {variant.name}: {rows[-1]}")
    return rows


def table(rows: list[Row]) -> str:
    lines = ["| scenario | variant | run | s | check | as expected | what the check saw |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        problem = r.problem if len(r.problem) <= PROBLEM_CHARS else r.problem[:PROBLEM_CHARS] + "..."
        lines.append(f"| {r.scenario} | {r.variant} | {r.run_status} | {r.seconds} | {r.check} | "
                     f"{'yes' if r.ok else 'NO'} | {problem.replace('|', '/')} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.deceptive.verify", description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", default=[], help="a scenario (repeatable; default: all)")
    parser.add_argument("--rows", type=int, default=None, help="data size passed to the generators")
    args = parser.parse_args(argv)
    wanted = [s for s in list_scenarios() if s.baseline_job is not None or deceptive_variants(s, DECEPTIVE_DIR)]
    if args.scenario:
        unknown = sorted(set(args.scenario) - {s.name for s in wanted})
        if unknown:
            parser.error(f"no baseline or deceptive fixes for {', '.join(unknown)}")
        wanted = [s for s in wanted if s.name in args.scenario]
    if args.rows is not None and args.rows < 1:
        parser.error("--rows must be positive")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="verify-deceptive-") as tmp:
        config = LocalCdeConfig(data_dir=Path(tmp), port=0, users={USER: PASSWORD}, pyenv_pip_args=("--no-index",))
        with LocalCde(config) as cde, CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD) as client:
            generated: set[str] = set()
            for scenario in wanted:
                rows += verify_scenario(client, scenario, generated, args.rows)
    _say(table(rows))
    bad = [r for r in rows if not r.ok]
    _say(f"{len(rows) - len(bad)} of {len(rows)} as expected")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

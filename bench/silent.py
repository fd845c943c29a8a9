"""`python -m bench silent`: the silent-failure scenarios on real Spark, judged by the healer's watcher.

For each anomaly scenario of `sample_jobs` (default: all), on a fresh local CDE running real Spark:
`load_scenario` runs the generator, the job's ordinary days (its good history) and the day the upstream
feed changed, which succeeds wrongly; then one monitor cycle of a real `Healer` watching the job reads
every run's event log and judges each run against the ones before it, as the watcher does in
production. Counted per scenario: ordinary runs flagged (false alarms), whether the changed day was
flagged (detection) and with which finding, the event logs read and the cycle's time. Precision and
recall are over all the runs judged. Writes `silent-<stamp>.md` and `.json` under `--out`.

Not part of `make test` (about 16 Spark runs a scenario, 4-6 minutes each on a 2-core machine):
`tests/sample_jobs/test_silent_scenarios.py` runs one short scenario end to end.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agents.config import Settings
from agents.healer import Healer
from bench.heal import DEFAULT_OUT
from cde_client import CdeClient
from cde_local import LocalCde, LocalCdeConfig
from sample_jobs import get_scenario, list_scenarios, load_scenario

USER, PASSWORD = "bench-user", "bench-password-silent"


@dataclass
class ScenarioFigures:
    scenario: str
    job: str
    ordinary_runs: int = 0  # judged (the first ones have too little history to be judged: see not_judged)
    not_judged: int = 0  # runs with fewer than 3 good runs before them
    false_alarms: list[int] = field(default_factory=list)  # ordinary runs flagged
    anomalous_run: int | None = None
    detected: bool = False
    method: str = ""
    finding: str = ""  # the detector's summary of the changed day
    event_logs_read: int = 0
    cycle_s: float = 0.0
    load_s: float = 0.0


def scenario_names(wanted: str) -> list[str]:
    anomaly = [s.name for s in list_scenarios() if s.is_anomaly]
    if not wanted:
        return anomaly
    names = [name.strip() for name in wanted.split(",") if name.strip()]
    unknown = [name for name in names if name not in anomaly]
    if unknown:
        raise ValueError(f"not anomaly scenarios: {', '.join(unknown)} (they are: {', '.join(anomaly)})")
    return names


def judge_scenario(cde: LocalCde, client: CdeClient, name: str, work: Path, history: int | None) -> ScenarioFigures:
    scenario = get_scenario(name)
    started = time.monotonic()
    loaded = load_scenario(client, scenario, history=history)
    figures = ScenarioFigures(scenario=name, job=scenario.app_job, anomalous_run=loaded.app_run_id,
                              load_s=round(time.monotonic() - started, 1))
    settings = Settings.from_env({"JOBS_API_URL": cde.jobs_api_url, "WORKLOAD_USER": USER,
                                  "WORKLOAD_PASSWORD": PASSWORD, "HEALER_DATA_DIR": str(work / f"healer-{name}"),
                                  "JOB_NAME": scenario.app_job}, dotenv=None)
    healer = Healer(settings)
    try:
        started = time.monotonic()
        healer.cycle()
        figures.cycle_s = round(time.monotonic() - started, 2)
        rows = healer.history.job_telemetry(scenario.app_job, limit=10_000)
    finally:
        healer.close()
    figures.event_logs_read = len(rows)
    for row in rows:
        method = (row.judgement or {}).get("method", "")
        if row.run_id == loaded.app_run_id:
            figures.detected = bool(row.anomalous)
            figures.method = method
            figures.finding = (row.judgement or {}).get("summary", "")
        elif method == "too-little-history":
            figures.not_judged += 1
        else:
            figures.ordinary_runs += 1
            if row.anomalous:
                figures.false_alarms.append(row.run_id)
    return figures


def totals(found: list[ScenarioFigures]) -> dict[str, Any]:
    caught = sum(f.detected for f in found)
    false = sum(len(f.false_alarms) for f in found)
    return {"scenarios": len(found), "detected": caught, "false_alarms": false,
            "ordinary_runs_judged": sum(f.ordinary_runs for f in found),
            "precision": caught / (caught + false) if caught + false else None,
            "recall": caught / len(found) if found else None}


def markdown(found: list[ScenarioFigures], summary: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = ["# Silent failures on real Spark, judged by the watcher", "",
             f"`python -m bench silent` — {meta['when']}, history {meta['history'] or 'the scenarios default'}", "",
             "| scenario | ordinary runs judged | false alarms | changed day flagged | method | finding | logs read | "
             "cycle s | load s |", "|---|---|---|---|---|---|---|---|---|"]
    for f in found:
        lines.append(f"| {f.scenario} | {f.ordinary_runs} (+{f.not_judged} too early) | {len(f.false_alarms)} | "
                     f"{'yes' if f.detected else 'NO'} (run {f.anomalous_run}) | {f.method} | "
                     f"{f.finding.replace('|', '/')} | {f.event_logs_read} | {f.cycle_s} | {f.load_s} |")
    precision = "–" if summary["precision"] is None else f"{summary['precision']:.0%}"
    recall = "–" if summary["recall"] is None else f"{summary['recall']:.0%}"
    lines += ["", f"Precision {precision}, recall {recall}: {summary['detected']} of {summary['scenarios']} changed "
              f"days flagged, {summary['false_alarms']} false alarms in {summary['ordinary_runs_judged']} ordinary "
              "runs judged."]
    return "\n".join(lines) + "\n"


def add_parser(commands: argparse._SubParsersAction) -> None:
    silent = commands.add_parser("silent", help="the silent-failure scenarios on real Spark, judged by the watcher")
    silent.add_argument("--scenarios", default="", help="comma-separated anomaly scenarios (default: all)")
    silent.add_argument("--history", type=int, default=None, help="ordinary days before the changed one "
                                                                   "(default: each scenario's)")
    silent.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report directory")


def run(args: argparse.Namespace) -> int:
    try:
        names = scenario_names(args.scenarios)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    found: list[ScenarioFigures] = []
    with tempfile.TemporaryDirectory(prefix="bench-silent-") as tmp:
        work = Path(tmp)
        config = LocalCdeConfig(data_dir=work / "cde", port=0, users={USER: PASSWORD}, pyenv_pip_args=("--no-index",))
        with LocalCde(config) as cde, CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD) as client:
            for name in names:
                print(f"{name}: loading and judging ...", file=sys.stderr, flush=True)
                found.append(judge_scenario(cde, client, name, work, args.history))
                print(f"  {asdict(found[-1])}", file=sys.stderr, flush=True)
    summary = totals(found)
    meta = {"when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "history": args.history}
    text = markdown(found, summary, meta)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "silent-" + time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    (args.out / f"{stem}.md").write_text(text)
    (args.out / f"{stem}.json").write_text(json.dumps({"meta": meta, "totals": summary,
                                                       "scenarios": [asdict(f) for f in found]}, indent=2))
    print(text, flush=True)
    print(f"report: {args.out / stem}.md", flush=True)
    return 0 if summary["detected"] == len(found) and not summary["false_alarms"] else 1

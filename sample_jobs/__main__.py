"""`python -m sample_jobs list` and `python -m sample_jobs load NAME [--size N] [--history N] [--no-run]`.

`load` talks to the CDE named by JOBS_API_URL, WORKLOAD_USER and WORKLOAD_PASSWORD, read from
the environment or from a .env file in the working directory as the healer reads them
(`agents.config.load_environment`: the environment wins; an empty value counts as unset).
`load` also runs the scenario's baseline job (the last good output), after the application.
An anomaly scenario (a silent failure) runs its application once per day instead: the ordinary
days (`--history N`: the last N of them; default all), then the changed day, which succeeds wrongly.
Exit status: 0 when the application run ended as the scenario expects (failed; for an anomaly
scenario, the last day's run succeeded) or, with --no-run, when everything was created; 1 when it
did not; 2 for bad input or configuration.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence

from agents.config import env_name, load_environment
from cde_client import CdeClient, CdeError

from .errors import ScenarioError, ScenarioNotFound
from .loader import EVENT_LOG, RUN_TIMEOUT_S, LoadResult, load_scenario, logs_command
from .scenario import Scenario, get_scenario, list_scenarios

CONNECTION = ("jobs_api_url", "workload_user", "workload_password")  # the healer's settings of these names


def _settings() -> dict[str, str]:
    """The three connection settings by field name, read under their environment names; missing: empty."""
    env = load_environment()
    return {name: env.get(env_name(name), "") for name in CONNECTION}


def _print(message: str) -> None:
    print(message, flush=True)


def cmd_list() -> int:
    scenarios = list_scenarios()
    _print(f"{'scenario':<20} {'failure class':<20} {'expected':<9} {'remedy':<7} {'app job':<26} error signature")
    for s in scenarios:
        signature = s.expected_error
        if s.daily_runs is not None:
            signature = f"(none: every run succeeds; day {s.daily_runs.anomalous_day} wrongly)"
        _print(f"{s.name:<20} {s.failure_class:<20} {s.expected:<9} {s.remedy:<7} {s.app_job:<26} {signature}")
    _print(f"\n{len(scenarios)} scenarios. Load one with: python -m sample_jobs load NAME")
    return 0


def cmd_load(name: str, size: int | None, run: bool, timeout_s: float, history: int | None = None) -> int:
    try:
        scenario = get_scenario(name)
    except ScenarioNotFound as exc:
        _print(f"error: {exc}")
        return 2
    if size is not None and scenario.size_option is None:
        _print(f"error: scenario {name} has no data size option")
        return 2
    if history is not None:
        if scenario.daily_runs is None:
            _print(f"error: scenario {name} has no daily history (--history is for anomaly scenarios)")
            return 2
        if not 1 <= history <= scenario.daily_runs.ordinary_days:
            _print(f"error: --history must be 1..{scenario.daily_runs.ordinary_days} for scenario {name}")
            return 2
    settings = _settings()
    missing = [env_name(k) for k, v in settings.items() if not v]
    if missing:
        _print(f"error: {', '.join(missing)} not set. Set them in the environment or in a .env file here, e.g.\n"
               "  JOBS_API_URL=http://127.0.0.1:8765/dex/api/v1  (printed by `python -m cde_local`)\n"
               "  WORKLOAD_USER=dex-user\n  WORKLOAD_PASSWORD=...")
        return 2
    try:
        client = CdeClient(settings["jobs_api_url"], user=settings["workload_user"],
                           password=settings["workload_password"])
    except ValueError as exc:
        _print(f"error: {exc}")
        return 2
    _print(textwrap.fill(scenario.description, width=100))
    with client:
        try:
            result = load_scenario(client, scenario, size=size, run=run, progress=_print, run_timeout_s=timeout_s,
                                   history=history)
        except (ScenarioError, CdeError) as exc:
            _print(f"error: loading {name} failed: {exc}")
            return 1
        if result.app_run_id is None:
            if scenario.daily_runs is not None:  # the app needs a day's args: a plain run has none
                day = scenario.daily_runs.anomalous_day
                _print(f"scenario {name} loaded (nothing run). Run {', '.join(scenario.setup_runs)}, then "
                       f"{scenario.app_job} once a day with its args {scenario.day_args(day)} (day {day})")
                return 0
            _print(f"scenario {name} loaded (nothing run). Run it with: cde job run --name {scenario.app_job}")
            return 0
        if scenario.is_anomaly:
            return _report_anomaly(client, scenario, result)
        _print(f"\napplication run {result.app_run_id} of {result.app_job}: {result.status}")
        _print(f"read its driver log with:\n{logs_command(client, result.app_run_id)}")
        if result.baseline_run_id is not None:
            _print(f"the last good output of {result.app_job} was written by run {result.baseline_run_id} "
                   f"of {scenario.baseline_job}")
    if result.as_expected:
        _print(f"as expected: the run failed (signature {scenario.expected_error!r}); "
               f"the healer watches job {scenario.app_job}")
        return 0
    _print(f"NOT as expected: the run ended {result.status}, the scenario expects {result.expected_status}")
    return 1


def _report_anomaly(client: CdeClient, scenario: Scenario, result: LoadResult) -> int:
    """The runs of an anomaly scenario, day by day; 0 when the last one succeeded (wrongly, as expected)."""
    assert scenario.daily_runs is not None and result.app_day is not None
    days = scenario.daily_runs
    _print(f"\nthe good history of {result.app_job}: {len(result.history_run_ids)} ordinary day(s), each succeeded")
    for day, run_id in result.history_run_ids.items():
        _print(f"  day {day} ({days.date(day)}): run {run_id}")
    verdict = "(as the scenario expects: wrongly)" if result.as_expected else "(NOT as expected)"
    _print(f"day {result.app_day} ({days.date(result.app_day)}): run {result.app_run_id} of {result.app_job}: "
           f"{result.status} {verdict}")
    _print(f"read its Spark event log (what the anomaly detector reads) with:\n"
           f"{logs_command(client, result.app_run_id, EVENT_LOG)}")
    if result.as_expected:
        _print(f"the healer, watching job {result.app_job}, should flag run {result.app_run_id} as an anomaly; "
               f"its output check {scenario.check_job} rejects that day's output")
        return 0
    _print(f"NOT as expected: the run ended {result.status}, the scenario expects it to succeed (wrongly)")
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sample_jobs", description="Broken Spark job scenarios")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the scenarios")
    load = commands.add_parser("load", help="load a scenario into the CDE at JOBS_API_URL and run it")
    load.add_argument("name")
    load.add_argument("--size", type=int, default=None, help="data size passed to the generators (e.g. rows)")
    load.add_argument("--history", type=int, default=None,
                      help="anomaly scenarios: how many ordinary days run before the changed one (default: all)")
    load.add_argument("--no-run", action="store_true", help="create resources and jobs only")
    load.add_argument("--timeout", type=float, default=RUN_TIMEOUT_S, help="seconds to wait for each run")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            return cmd_list()
        if args.size is not None and args.size < 1:
            parser.error("--size must be a positive integer")
        if args.timeout <= 0:
            parser.error("--timeout must be positive")
        if args.history is not None and args.history < 1:
            parser.error("--history must be a positive integer")
        return cmd_load(args.name, args.size, not args.no_run, args.timeout, args.history)
    except ScenarioError as exc:  # a broken scenario definition
        _print(f"error: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""`python -m sample_jobs list` and `python -m sample_jobs load NAME [--size N] [--no-run]`.

`load` talks to the CDE named by JOBS_API_URL, WORKLOAD_USER and WORKLOAD_PASSWORD, read from
the environment or from a .env file in the working directory as the healer reads them
(`agents.config.load_environment`: the environment wins; an empty value counts as unset).
`load` also runs the scenario's baseline job (the last good output), after the application.
Exit status: 0 when the application run ended as the scenario expects (failed) or, with
--no-run, when everything was created; 1 when it did not; 2 for bad input or configuration.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence

from agents.config import env_name, load_environment
from cde_client import CdeClient, CdeError

from .errors import ScenarioError, ScenarioNotFound
from .loader import RUN_TIMEOUT_S, load_scenario, logs_command
from .scenario import get_scenario, list_scenarios

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
        _print(f"{s.name:<20} {s.failure_class:<20} {s.expected:<9} {s.remedy:<7} {s.app_job:<26} {s.expected_error}")
    _print(f"\n{len(scenarios)} scenarios. Load one with: python -m sample_jobs load NAME")
    return 0


def cmd_load(name: str, size: int | None, run: bool, timeout_s: float) -> int:
    try:
        scenario = get_scenario(name)
    except ScenarioNotFound as exc:
        _print(f"error: {exc}")
        return 2
    if size is not None and scenario.size_option is None:
        _print(f"error: scenario {name} has no data size option")
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
            result = load_scenario(client, scenario, size=size, run=run, progress=_print, run_timeout_s=timeout_s)
        except (ScenarioError, CdeError) as exc:
            _print(f"error: loading {name} failed: {exc}")
            return 1
        if result.app_run_id is None:
            _print(f"scenario {name} loaded (nothing run). Run it with: cde job run --name {scenario.app_job}")
            return 0
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sample_jobs", description="Broken Spark job scenarios")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the scenarios")
    load = commands.add_parser("load", help="load a scenario into the CDE at JOBS_API_URL and run it")
    load.add_argument("name")
    load.add_argument("--size", type=int, default=None, help="data size passed to the generators (e.g. rows)")
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
        return cmd_load(args.name, args.size, not args.no_run, args.timeout)
    except ScenarioError as exc:  # a broken scenario definition
        _print(f"error: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())

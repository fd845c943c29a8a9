"""`python -m bench heal [--scenarios a,b,...] [--out DIR] [--model scripted|env|none] [--cde local|env]
[--keep-data DIR] [--run-timeout S] [--deceptive]`, `python -m bench guard` (the patch guard's probe) and
`python -m bench endpoint [--scenarios a,b] [--model-path FILE.gguf] [--chat-format F] [--no-rules]
[--probe-only] ...` (the heal benchmark through a llama-cpp-python server it starts: bench/endpoint.py) and
`python -m bench cde [--jobs N] [--runs N] [--records N] [--clients 1,50] [--requests N] [--no-spark]` (the
local CDE at scale: bench/cde.py) and `python -m bench fleet [--jobs 500] [--days 30] [--seed N] [--params FILE]
[--out DIR] [--episodes N] [--write-policy PATH] [--quick]` (a simulated fleet: the static recovery order
against the policy learned in it: bench/fleet/) and `python -m bench ops [--db FILE] [--cli] [--limit N]` (operators' questions over a
generated run history, without and with a scripted model: bench/ops_questions.py; exit 1 if any answer is wrong).
`python -m bench anomaly [--jobs 200] [--days 60] [--seed N] [--rate 0.03] [--window 30] [--out DIR]
[--write-detector PATH]`: the silent-failure detector (agents/anomaly) on a generated run history with injected
failures: bench/anomaly.py (`--write-detector`: also its artefact, with these figures, for the model registry).
`python -m bench silent [--scenarios a,b] [--history N]`: the silent-failure scenarios on real Spark,
judged by one monitor cycle of a real healer (bench/silent.py).

Prints the table (stdout; progress goes to stderr) and writes it as JSON and Markdown under --out.
Exit status: 0 when the table was produced (whatever the outcomes), 2 for bad input or
configuration, 130 when interrupted (the rows done so far are still written).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.endpoint import (
    DEFAULT_SCENARIOS,
    MODEL_DISTRIBUTION,
    N_CTX,
    START_TIMEOUT_S,
    EndpointOptions,
    run_endpoint_bench,
)
from bench.errors import BenchUsageError
from bench.heal import DEFAULT_OUT, RUN_TIMEOUT_S, HealBenchOptions, run_heal_bench
from sample_jobs import ScenarioError


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Benchmarks that print figures")
    commands = parser.add_subparsers(dest="command", required=True)
    heal = commands.add_parser("heal", help="run sample scenarios through the self-healing agent")
    heal.add_argument("--scenarios", type=_names, default=(), metavar="A,B,...",
                      help="scenarios to run (default: all; see `python -m sample_jobs list`)")
    heal.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where to write the reports ({DEFAULT_OUT})")
    heal.add_argument("--model", choices=("scripted", "env", "none"), default="scripted",
                      help="scripted: known-good fixes through the scripted server (default); env: the LLM_* "
                           "endpoint; none: rules only")
    heal.add_argument("--cde", choices=("local", "env"), default="local",
                      help="local: start an in-process local CDE (default); env: the CDE at JOBS_API_URL")
    heal.add_argument("--keep-data", type=Path, default=None, metavar="DIR",
                      help="keep the local CDE's and the healers' data in DIR (default: a temporary directory)")
    heal.add_argument("--run-timeout", type=float, default=RUN_TIMEOUT_S, metavar="S",
                      help=f"seconds any one Spark run may take ({RUN_TIMEOUT_S:.0f})")
    heal.add_argument("--deceptive", action="store_true",
                      help="replay the known-wrong fixes of bench/deceptive (one row each, scripted model): "
                           "none may be called healed")
    commands.add_parser("guard", help="unsafe and ordinary patches through the patch guard")
    _add_endpoint_parser(commands)
    _add_cde_parser(commands)
    _add_fleet_parser(commands)
    _add_anomaly_parser(commands)
    from bench.ops_questions import add_parser as add_ops_parser
    from bench.silent import add_parser as add_silent_parser

    add_ops_parser(commands)
    add_silent_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "guard":
        from bench.guard_probe import run_guard_bench

        result = run_guard_bench()
        print(result.table, flush=True)
        return 1 if result.passed_unsafe or result.rejected_safe else 0
    if args.command == "cde":
        return _run_cde(args)
    if args.command == "fleet":
        return _run_fleet(args)
    if args.command == "anomaly":
        return _run_anomaly(args)
    if args.command == "ops":
        from bench.ops_questions import run as run_ops

        return run_ops(args)
    if args.command == "silent":
        from bench.silent import run as run_silent

        return run_silent(args)
    if args.command == "endpoint":
        if args.scenarios == ():
            parser.error("--scenarios needs at least one name")
        return _run_endpoint(args)
    if args.scenarios == () and any(a.startswith("--scenarios") for a in (argv or sys.argv[1:])):
        parser.error("--scenarios needs at least one name")
    options = HealBenchOptions(scenarios=args.scenarios, out_dir=args.out, model=args.model, cde=args.cde,
                               keep_data=args.keep_data, run_timeout_s=args.run_timeout,
                               deceptive=args.deceptive)
    return _run_and_print(lambda: run_heal_bench(options), lambda result: result.table)


def _run_and_print(run: Callable[[], Any], text: Callable[[Any], str]) -> int:
    """Runs a benchmark and prints its table and reports: the exit status of the module's docstring."""
    try:
        result = run()
    except (BenchUsageError, ScenarioError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(text(result), flush=True)
    print(f"\nreports: {result.json_path}  {result.md_path}", flush=True)
    return 130 if result.interrupted else 0


def _add_endpoint_parser(commands: argparse._SubParsersAction) -> None:
    endpoint = commands.add_parser(
        "endpoint", help="the heal benchmark through a real OpenAI-compatible server (llama-cpp-python) it starts")
    endpoint.add_argument("--scenarios", type=_names, default=DEFAULT_SCENARIOS, metavar="A,B,...",
                          help=f"scenarios to run (default: {','.join(DEFAULT_SCENARIOS)})")
    endpoint.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where to write the reports ({DEFAULT_OUT})")
    endpoint.add_argument("--model-path", type=Path, default=None, metavar="FILE.gguf",
                          help=f"the GGUF to serve (default: the one of the {MODEL_DISTRIBUTION} package)")
    endpoint.add_argument("--chat-format", default=None, metavar="NAME",
                          help="llama-cpp-python's --chat_format, e.g. chatml-function-calling (default: the "
                               "GGUF's chat template; gemma for the package's model, whose GGUF has none)")
    endpoint.add_argument("--n-ctx", type=int, default=N_CTX, metavar="N", help=f"the server's context ({N_CTX})")
    endpoint.add_argument("--threads", type=int, default=None, metavar="N", help="the server's threads (half the CPUs: more spin-wait against Spark)")
    endpoint.add_argument("--llm-timeout", type=float, default=None, metavar="S",
                          help="LLM_TIMEOUT_S for the healer (default: from the measured tokens/s)")
    endpoint.add_argument("--no-rules", action="store_true",
                          help="HEAL_DETERMINISTIC_FIXES=false: every patch from the model, none from a rule")
    endpoint.add_argument("--probe-only", action="store_true",
                          help="measure the server (speed, structured-output modes) and run no scenario")
    endpoint.add_argument("--keep-data", type=Path, default=None, metavar="DIR",
                          help="keep the local CDE's and the healers' data in DIR (default: a temporary directory)")
    endpoint.add_argument("--run-timeout", type=float, default=RUN_TIMEOUT_S, metavar="S",
                          help=f"seconds any one Spark run may take ({RUN_TIMEOUT_S:.0f})")
    endpoint.add_argument("--start-timeout", type=float, default=START_TIMEOUT_S, metavar="S",
                          help=f"seconds the server may take to answer /v1/models ({START_TIMEOUT_S:.0f})")


def endpoint_options(args: argparse.Namespace) -> EndpointOptions:
    """The command line's options as the benchmark takes them."""
    extra = {"threads": args.threads} if args.threads is not None else {}
    return EndpointOptions(scenarios=args.scenarios, out_dir=args.out, model_path=args.model_path,
                           chat_format=args.chat_format, n_ctx=args.n_ctx, llm_timeout_s=args.llm_timeout,
                           rules=not args.no_rules, keep_data=args.keep_data, run_timeout_s=args.run_timeout,
                           start_timeout_s=args.start_timeout, probe_only=args.probe_only, **extra)


def _add_cde_parser(commands: argparse._SubParsersAction) -> None:
    from bench.cde import DEFAULT_OUT as CDE_OUT
    from bench.cde import CdeBenchOptions

    defaults = CdeBenchOptions()
    cde = commands.add_parser("cde", help="the local CDE at scale: API latency, listing, restart, watcher, runs")
    cde.add_argument("--jobs", type=int, default=defaults.jobs, help=f"jobs stored ({defaults.jobs})")
    cde.add_argument("--runs", type=int, default=defaults.runs, help=f"runs stored ({defaults.runs})")
    cde.add_argument("--records", type=int, default=defaults.records,
                     help=f"incident records of the watching healer ({defaults.records})")
    cde.add_argument("--clients", type=lambda t: tuple(int(n) for n in _names(t)), default=defaults.clients,
                     metavar="N,M", help="concurrent clients of each latency measurement (1,50)")
    cde.add_argument("--requests", type=int, default=defaults.requests,
                     help=f"requests per latency measurement, shared by the clients ({defaults.requests})")
    cde.add_argument("--no-spark", action="store_true", help="skip the parts that run Spark")
    cde.add_argument("--out", type=Path, default=CDE_OUT, help=f"where to write the reports ({CDE_OUT})")


def _run_cde(args: argparse.Namespace) -> int:
    from bench.cde import CdeBenchOptions, run_cde_bench

    options = CdeBenchOptions(out_dir=args.out, jobs=args.jobs, runs=args.runs, records=args.records,
                              clients=args.clients, requests=args.requests, spark=not args.no_spark)
    return _run_and_print(lambda: run_cde_bench(options), lambda result: result.text)


def _add_fleet_parser(commands: argparse._SubParsersAction) -> None:
    from bench.fleet import DEFAULT_OUT as FLEET_OUT

    fleet = commands.add_parser(
        "fleet", help="a simulated fleet: Q-learning of a recovery policy, then static vs learned side by side")
    fleet.add_argument("--jobs", type=int, default=None, help="jobs of the evaluation fleet (params: 500)")
    fleet.add_argument("--days", type=int, default=None, help="simulated days of the evaluation fleet (params: 30)")
    fleet.add_argument("--seed", type=int, default=1, help="seed of the evaluation fleet and of training (1)")
    fleet.add_argument("--params", type=Path, default=None, metavar="FILE",
                       help="a JSON file laid over bench/fleet/params.json (any subset of its keys)")
    fleet.add_argument("--episodes", type=int, default=None, help="training episodes (params: training.episodes)")
    fleet.add_argument("--write-policy", type=Path, default=None, metavar="PATH",
                       help="write the trained policy artefact there (agents/policy/learned-policy.json is "
                            "the one HEAL_POLICY=learned loads)")
    fleet.add_argument("--quick", action="store_true", help="a small fleet and a few training episodes (seconds)")
    fleet.add_argument("--out", type=Path, default=FLEET_OUT, help=f"where to write the reports ({FLEET_OUT})")


def _run_fleet(args: argparse.Namespace) -> int:
    from bench.fleet import FleetOptions, run_fleet_bench

    options = FleetOptions(out_dir=args.out, jobs=args.jobs, days=args.days, seed=args.seed, params=args.params,
                           episodes=args.episodes, write_policy=args.write_policy, quick=args.quick)
    return _run_and_print(lambda: run_fleet_bench(options), lambda result: result.text)


def _add_anomaly_parser(commands: argparse._SubParsersAction) -> None:
    from bench.anomaly import AnomalyOptions

    defaults = AnomalyOptions()
    anomaly = commands.add_parser(
        "anomaly", help="the silent-failure detector on a generated run history with injected failures")
    anomaly.add_argument("--jobs", type=int, default=defaults.jobs, help=f"jobs of the history ({defaults.jobs})")
    anomaly.add_argument("--days", type=int, default=defaults.days, help=f"daily runs of each job ({defaults.days})")
    anomaly.add_argument("--seed", type=int, default=defaults.seed, help=f"seed of the history ({defaults.seed})")
    anomaly.add_argument("--rate", type=float, default=defaults.rate, metavar="SHARE",
                         help=f"share of the runs after each job's first 15 that are silent failures ({defaults.rate})")
    anomaly.add_argument("--window", type=int, default=defaults.window, metavar="N",
                         help=f"good runs each run is judged against ({defaults.window})")
    anomaly.add_argument("--out", type=Path, default=defaults.out_dir,
                         help=f"where to write the reports ({defaults.out_dir})")
    anomaly.add_argument("--write-detector", type=Path, default=None, metavar="PATH",
                         help="also write the detector artefact (its parameters and these figures) for the registry")


def _run_anomaly(args: argparse.Namespace) -> int:
    from bench.anomaly import AnomalyOptions, run_anomaly_bench

    options = AnomalyOptions(out_dir=args.out, jobs=args.jobs, days=args.days, seed=args.seed, rate=args.rate,
                             window=args.window, write_detector=args.write_detector)
    return _run_and_print(lambda: run_anomaly_bench(options), lambda result: result.text)


def _run_endpoint(args: argparse.Namespace) -> int:
    return _run_and_print(lambda: run_endpoint_bench(endpoint_options(args)), lambda result: result.text)


if __name__ == "__main__":
    sys.exit(main())

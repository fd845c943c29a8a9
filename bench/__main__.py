"""`python -m bench heal [--scenarios a,b,...] [--out DIR] [--model scripted|env|none] [--cde local|env]
[--keep-data DIR] [--run-timeout S] [--deceptive]` and `python -m bench guard` (the patch guard's probe).

Prints the table (stdout; progress goes to stderr) and writes it as JSON and Markdown under --out.
Exit status: 0 when the table was produced (whatever the outcomes), 2 for bad input or
configuration, 130 when interrupted (the rows done so far are still written).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.errors import BenchUsageError
from bench.heal import DEFAULT_OUT, RUN_TIMEOUT_S, HealBenchOptions, run_heal_bench
from sample_jobs import ScenarioError


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def main(argv: Sequence[str] | None = None) -> int:
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
    args = parser.parse_args(argv)
    if args.command == "guard":
        from bench.guard_probe import run_guard_bench

        result = run_guard_bench()
        print(result.table, flush=True)
        return 1 if result.passed_unsafe or result.rejected_safe else 0
    if args.scenarios == () and any(a.startswith("--scenarios") for a in (argv or sys.argv[1:])):
        parser.error("--scenarios needs at least one name")
    options = HealBenchOptions(scenarios=args.scenarios, out_dir=args.out, model=args.model, cde=args.cde,
                               keep_data=args.keep_data, run_timeout_s=args.run_timeout,
                               deceptive=args.deceptive)
    try:
        result = run_heal_bench(options)
    except (BenchUsageError, ScenarioError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.table, flush=True)
    print(f"\nreports: {result.json_path}  {result.md_path}", flush=True)
    return 130 if result.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())

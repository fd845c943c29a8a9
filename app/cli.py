"""Command line: `python -m app heal|approve|reject|watch|serve|rules|ask|demo`.

Exit codes of `heal` (`app.console`): 0 healed, 1 escalated or rejected (or waiting for approval),
2 on error: bad arguments (refused by argparse before anything else happens), bad configuration,
CDE unreachable, or another healer working on the incident. `ask`: 0 on an answer, 2 on error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.config import Settings
from agents.errors import ConfigError, HealerError, InvalidInput
from agents.ids import check_incident_id, check_job_name, parse_run_id
from app.console import (
    EXIT_ERROR,
    EXIT_HEALED,
    EXIT_OK,
    announce,
    catalog_table,
    progress,
    rule_text,
    say,
    summary,
)
from cde_client import CdeError

MAX_PORT = 65535


def _checked(check: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from one of our checks: its `InvalidInput` becomes argparse's error (exit 2)."""
    def convert(text: str) -> Any:
        try:
            return check(text)
        except InvalidInput as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _port(text: str) -> int:
    try:
        port = int(text.strip())
    except ValueError:
        port = -1
    if not 0 <= port <= MAX_PORT:
        raise InvalidInput(f"a port is a whole number from 0 to {MAX_PORT}, not {text!r}")
    return port


def _question(text: str) -> str:
    from agents.ops.ask import check_question  # on use: the other commands start without it

    return check_question(text)


JOB_NAME, RUN_ID, INCIDENT, PORT, QUESTION = map(
    _checked, (check_job_name, parse_run_id, check_incident_id, _port, _question))


def cmd_heal(args: argparse.Namespace) -> int:
    from agents.healer import Healer

    settings = Settings.from_env()
    announce(settings)
    healer = Healer(settings)
    try:
        say(f"healing job {args.job}" + (f" run {args.run}" if args.run is not None else " (latest failed run)"))
        record = healer.heal(args.job, args.run, progress=progress)
        return summary(record, settings)
    finally:
        healer.close()


def cmd_decide(args: argparse.Namespace) -> int:
    from agents.healer import Healer

    settings = Settings.from_env()
    healer = Healer(settings)
    try:
        decision = {"approved": args.command == "approve", "by": args.by, "reason": args.reason}
        record = healer.resume(args.incident, decision, progress=progress)
        return summary(record, settings)
    finally:
        healer.close()


def cmd_watch(args: argparse.Namespace) -> int:
    from agents.healer import Healer

    settings = Settings.from_env()
    announce(settings)
    healer = Healer(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    say(f"watching {', '.join(settings.watched_jobs) or 'all jobs'} every {settings.poll_interval_s:g}s "
         "(Ctrl-C to stop)")
    try:
        healer.watch(stop, progress=progress)
    except KeyboardInterrupt:
        stop.set()
    finally:
        healer.close()
    return EXIT_HEALED


def cmd_serve(args: argparse.Namespace) -> int:
    from app.server import serve

    settings = Settings.from_env()
    announce(settings)
    return serve(settings, host=args.host, port=args.port)


def cmd_rules(args: argparse.Namespace) -> int:
    from agents.remedies import CATALOG, rule_by_code

    if args.code is None:
        say(catalog_table(CATALOG))
        return EXIT_HEALED
    rule = rule_by_code(args.code)
    if rule is None:
        raise InvalidInput(f"no rule {args.code!r} in the catalog; `python -m app rules` lists them "
                           f"({', '.join(r.code for r in CATALOG)})")
    say(rule_text(rule))
    return EXIT_HEALED


def cmd_ask(args: argparse.Namespace) -> int:
    """Answers a question from the run history; reads only (an empty data directory stays empty)."""
    from sqlalchemy.engine import make_url

    from agents.errors import HistoryError
    from agents.history import RunHistory, history_url
    from agents.llm import llm_from_settings
    from agents.ops import ask
    from agents.record import RecordStore

    settings = Settings.from_env()
    url = make_url(history_url(settings))
    if url.drivername == "sqlite" and not Path(url.database or "").is_file():  # a question creates nothing
        where = settings.data_dir if not settings.history_url else url.render_as_string(hide_password=True)
        raise HistoryError(f"no run history in {where} yet: the healer writes it as it watches jobs "
                           "(`python -m app watch` or `serve`)")
    history = RunHistory.open(settings)
    llm = None
    try:
        llm = llm_from_settings(settings)
        records = RecordStore(settings.data_dir, secrets=settings.secrets)
        answer = ask(args.question, history=history, records=records, llm=llm)
    finally:
        if llm is not None:
            llm.close()
        history.close()
    if args.json:
        say(json.dumps(answer.as_dict(), indent=2))
        return EXIT_OK
    say(answer.text)
    if answer.sql:
        say("\nquery:\n" + "\n".join(f"{sql};" for sql in answer.sql))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from app.demo import run_demo

    return run_demo(port=args.port, data_dir=Path(args.data_dir), ui_port=args.ui_port, serve_ui=not args.no_ui)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description="Self-healing Spark pipelines on CDE")
    sub = parser.add_subparsers(dest="command", required=True)
    heal = sub.add_parser("heal", help="heal the latest (or a given) failed run of a job, once")
    heal.add_argument("--job", required=True, type=JOB_NAME, help="CDE job name")
    heal.add_argument("--run", type=RUN_ID, default=None, help="failed run id (default: the latest failed run)")
    heal.set_defaults(func=cmd_heal)
    for verb in ("approve", "reject"):
        decide = sub.add_parser(verb, help=f"{verb} the fix of an incident waiting for approval (HEAL_MODE=approve)")
        decide.add_argument("incident", type=INCIDENT, help="incident id, <job>--<run id>")
        decide.add_argument("--by", default=os.environ.get("USER", "cli"), help="who decides (recorded)")
        decide.add_argument("--reason", default="", help="why (recorded)")
        decide.set_defaults(func=cmd_decide)
    watch = sub.add_parser("watch", help="monitor the watched jobs (JOB_NAME) and heal failures until stopped")
    watch.set_defaults(func=cmd_watch)
    serve = sub.add_parser("serve", help="the dashboard with one watcher")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=PORT, default=None)
    serve.set_defaults(func=cmd_serve)
    rules = sub.add_parser("rules", help="list the remedy catalog, or explain one rule")
    rules.add_argument("code", nargs="?", default=None, help="a rule's code, e.g. C101")
    rules.set_defaults(func=cmd_rules)
    question = sub.add_parser("ask", help="answer an operator's question from the run history, with the SQL it ran")
    question.add_argument("question", type=QUESTION, help='e.g. "how many runs of sales-daily failed in the last 24 hours?"')
    question.add_argument("--json", action="store_true", help="print the answer as JSON")
    question.set_defaults(func=cmd_ask)
    demo = sub.add_parser("demo", help="local CDE + tutorial scenario + healer + dashboard")
    # String defaults go through `type` too, so a bad DEMO_*_PORT is reported like a bad --port.
    demo.add_argument("--port", type=PORT, default=os.environ.get("DEMO_CDE_PORT", "8765"))
    demo.add_argument("--ui-port", type=PORT, default=os.environ.get("DEMO_UI_PORT", "7860"))
    demo.add_argument("--data-dir", default="data")
    demo.add_argument("--no-ui", action="store_true", help="heal and exit, without the dashboard")
    demo.set_defaults(func=cmd_demo)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"error: {exc}\n(copy .env.example to .env for the local defaults)", file=sys.stderr)
        return EXIT_ERROR
    except (HealerError, CdeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR

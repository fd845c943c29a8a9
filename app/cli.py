"""Command line: `python -m app heal|approve|reject|watch|serve|rules|ask|policy|demo`.

Exit codes of `heal` (`app.console`): 0 healed, 1 escalated or rejected (or waiting for approval),
2 on error: bad arguments (refused by argparse before anything else happens), bad configuration,
CDE unreachable, or another healer working on the incident. `ask`: 0 on an answer, 2 on error.
`policy register|list|promote [--detector]` (the model registry, `agents/registry.py`; with
`--detector` the anomaly detector's versions instead of the learned policy's): 0 done, 1 a
promotion declined at the prompt, 2 on error (a registry problem, or `promote` without `--yes`
when stdin is not a terminal).
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
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.config import Settings
from agents.errors import ConfigError, HealerError, InvalidInput
from agents.ids import check_incident_id, check_job_name, parse_run_id
from app.console import (
    EXIT_ERROR,
    EXIT_HEALED,
    EXIT_NOT_HEALED,
    EXIT_OK,
    announce,
    catalog_table,
    progress,
    rule_text,
    say,
    summary,
)
from cde_client import CdeError

if TYPE_CHECKING:
    from agents.registry import Kind, PolicyRegistry, RegisteredVersion

MAX_PORT = 65535
# The evaluation figures `policy list` and `promote` show, as the fleet benchmark names them: (key, label, format)
POLICY_FIGURES = (("mttr_median_min", "MTTR median (min)", "{:.1f}"), ("mttr_p90_min", "MTTR p90 (min)", "{:.1f}"),
                  ("auto_resolved", "auto-resolved", "{:.1%}"), ("escalated", "escalated", "{:.1%}"),
                  ("false_heals", "false heals", "{:.0f}"),
                  ("cluster_minutes_per_incident", "cluster-minutes per incident", "{:.1f}"),
                  ("model_tokens_per_incident", "model tokens per incident", "{:.0f}"),
                  ("slo_attainment", "SLO attainment", "{:.1%}"))
# ... and the anomaly detector's (`python -m bench anomaly`); then its recall per kind of failure
DETECTOR_FIGURES = (("precision", "precision", "{:.1%}"), ("recall", "recall", "{:.1%}"),
                    ("false_alarms_per_1000", "false alarms per 1,000 runs", "{:.2f}"))
Shown = list[tuple[str, Callable[["RegisteredVersion"], str]]]  # (label, the figure of a version)


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


def _environment_pair(text: str) -> tuple[str, str]:
    """`demo --environments dev,prd`: two environment names, the one where fixes are proven first."""
    from agents.environments import NAME

    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if len(names) != 2 or names[0] == names[1] or not all(NAME.match(n) for n in names):
        raise InvalidInput(f"two different environment names, e.g. dev,prd (the first proves the second's fixes), "
                           f"not {text!r}")
    return names[0], names[1]


def _question(text: str) -> str:
    from agents.ops.ask import check_question  # on use: the other commands start without it

    return check_question(text)


def _alias(text: str) -> str:
    from agents.registry import RegistryError, check_alias  # on use, as _question

    try:
        return check_alias(text)
    except RegistryError as exc:
        raise InvalidInput(str(exc)) from None


JOB_NAME, RUN_ID, INCIDENT, PORT, QUESTION, ALIAS, ENVIRONMENT_PAIR = map(
    _checked, (check_job_name, parse_run_id, check_incident_id, _port, _question, _alias, _environment_pair))


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


def cmd_policy(args: argparse.Namespace) -> int:
    """The learned policy's (with --detector: the anomaly detector's) versions in the model registry:
    register one, list them, promote an alias."""
    from agents import registry
    from agents.files import private_dir
    from agents.policy import artefact

    if args.action == "promote" and args.source == args.target:
        raise InvalidInput(f"--from and --to are both {args.source!r}: promote names two aliases, e.g. --from dev --to prd")
    kind = registry.DETECTOR if args.detector else registry.POLICY
    if args.action == "register" and args.detector and args.file is None:
        raise InvalidInput("register --detector needs the artefact FILE (`python -m bench anomaly --write-detector "
                           "FILE` writes one)")
    settings = Settings.from_env()
    try:
        if args.action == "register":
            args.file = args.file or artefact.DEFAULT_PATH
            kind.load(args.file)  # a file that cannot be registered creates no registry
        if args.action == "register" and not settings.registry_uri:
            private_dir(settings.data_dir)
        store = registry.open_registry(settings.registry_uri, settings.data_dir, create=args.action == "register")
        run = {"register": _policy_register, "list": _policy_list, "promote": _policy_promote}[args.action]
        return run(store, args, kind)
    except (registry.RegistryError, kind.error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _made(kind: Kind) -> str:
    return "trained" if kind.what == "policy" else "made"


def _policy_register(store: PolicyRegistry, args: argparse.Namespace, kind: Kind) -> int:
    version = store.register(args.file, kind=kind)
    if args.alias:
        version = store.set_alias(kind.model, args.alias, version.version)
    say(f"{version.name} {version.label}: {kind.what} {version.artefact_id}, {_made(kind)} {version.created}"
        + (f"; alias {args.alias} → {version.label}" if args.alias else "") + f" ({store.shown})")
    return EXIT_OK


def _policy_list(store: PolicyRegistry, args: argparse.Namespace, kind: Kind) -> int:
    versions = store.versions(kind.model)
    say(f"{kind.model} in {store.shown}: " + (f"{len(versions)} version(s)" if versions else
                                              f"no versions yet (`{kind.register_hint}`)"))
    shown = _shown(kind, versions)
    for v in reversed(versions):
        say(f"{v.label:>4}  {','.join(v.aliases) or '-':<10} {kind.what} {v.artefact_id}  {_made(kind)} {v.created}  "
            f"registered {v.registered}")
        say(f"      {_heading(kind)}: " + " · ".join(f"{label} {value(v)}" for label, value in shown))
    return EXIT_OK


def _policy_promote(store: PolicyRegistry, args: argparse.Namespace, kind: Kind) -> int:
    model = kind.model
    source = store.required(model, args.source)
    current = store.version_for(model, args.target)
    if current is not None and current.version == source.version:
        say(f"{args.target} already names {source.label} (as {args.source} does): nothing to do")
        return EXIT_OK
    say(f"{model}: {args.target} {current.label if current else '(unset)'} → {source.label} "
        f"(the version {args.source} names), in {store.shown}")
    columns = [(f"{args.target} now ({current.label})" if current else f"{args.target} now (unset)", current),
               (f"{args.source} ({source.label})", source)]
    say(_evaluation_table(kind, columns))
    if not args.yes:
        if not sys.stdin.isatty():
            print("error: promote asks for confirmation on a terminal; add --yes to promote without asking",
                  file=sys.stderr)
            return EXIT_ERROR
        try:
            answer = input(f"point {args.target} at {source.label}? [y/N] ").strip().lower()
        except (EOFError, KeyboardInterrupt):  # Ctrl-D or Ctrl-C at the prompt: no
            answer = ""
        if answer not in ("y", "yes"):
            say(f"not promoted: {args.target} still names {current.label if current else 'no version'}")
            return EXIT_NOT_HEALED
    before, after = store.promote(model, args.source, args.target)
    setting = "HEAL_POLICY_ALIAS" if kind.what == "policy" else "HEAL_ANOMALY_ALIAS"
    say(f"promoted: {args.target} → {after.label} ({kind.what} {after.artefact_id}; was "
        f"{before.label if before else 'unset'}); healers with {setting}={args.target} load it at start")
    return EXIT_OK


def _heading(kind: Kind) -> str:
    return "learned (static)" if kind.what == "policy" else "evaluation"


def _shown(kind: Kind, versions: list[RegisteredVersion]) -> Shown:
    """The figures shown of a kind's versions: the policy's (learned, static in brackets) and its
    done-when checks; the detector's, then its recall per kind of failure the versions have."""
    if kind.what == "policy":
        return [*((label, partial(_figure, key=key, form=form)) for key, label, form in POLICY_FIGURES),
                ("done-when", _done_when)]
    failures = sorted({key.split(".", 1)[1] for v in versions for key in v.evaluation
                       if key.startswith("recall_by_kind.")})
    return [*((label, partial(_value, key=key, form=form)) for key, label, form in DETECTOR_FIGURES),
            *((f"recall {failure}", partial(_value, key=f"recall_by_kind.{failure}", form="{:.1%}"))
              for failure in failures)]


def _value(version: RegisteredVersion, key: str, form: str) -> str:
    value = version.evaluation.get(key)
    return "–" if value is None else form.format(value)


def _figure(version: RegisteredVersion, key: str, form: str) -> str:
    """A figure of a version's evaluation: the learned policy's value, the static order's in brackets."""
    learned, static = version.evaluation.get(f"learned.{key}"), version.evaluation.get(f"static.{key}")
    if learned is None:
        return "–"
    return form.format(learned) + ("" if static is None else f" ({form.format(static)})")


def _done_when(version: RegisteredVersion) -> str:
    checks = [value for key, value in version.evaluation.items() if key.startswith("done_when.")]
    return f"{sum(value == 1 for value in checks)}/{len(checks)} met" if checks else "–"


def _evaluation_table(kind: Kind, columns: list[tuple[str, RegisteredVersion | None]]) -> str:
    """Versions side by side: their id, date and evaluation (a policy's: learned, static in brackets)."""
    rows = [(_heading(kind), *(title for title, _ in columns)),
            (kind.what, *(v.artefact_id if v else "–" for _, v in columns)),
            (_made(kind), *(v.created if v else "–" for _, v in columns))]
    shown = _shown(kind, [v for _, v in columns if v])
    rows += [(label, *(value(v) if v else "–" for _, v in columns)) for label, value in shown]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows)


def cmd_demo(args: argparse.Namespace) -> int:
    from app.demo import run_demo

    return run_demo(port=args.port, data_dir=Path(args.data_dir), ui_port=args.ui_port, serve_ui=not args.no_ui,
                    environments=args.environments)


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
    policy = sub.add_parser("policy", help="the learned policy's versions in the model registry (MLflow)")
    actions = policy.add_subparsers(dest="action", required=True)
    register = actions.add_parser("register", help="register a learned policy artefact (again: the same version)")
    register.add_argument("file", nargs="?", type=Path, default=None,
                          help="the artefact (default: the shipped agents/policy/learned-policy.json; with "
                               "--detector: required, from `python -m bench anomaly --write-detector`)")
    register.add_argument("--alias", type=ALIAS, default=None, help="then point this alias at it, e.g. dev")
    listing = actions.add_parser("list", help="the versions, their aliases, policy ids and evaluation figures")
    promote = actions.add_parser("promote", help="point one alias at the version another names, after showing both")
    for action in (register, listing, promote):
        action.add_argument("--detector", action="store_true",
                            help="the anomaly detector's versions (healer-anomaly-detector), not the policy's")
    promote.add_argument("--from", dest="source", type=ALIAS, required=True, help="the alias whose version moves up, e.g. dev")
    promote.add_argument("--to", dest="target", type=ALIAS, required=True, help="the alias to move, e.g. prd")
    promote.add_argument("--yes", action="store_true", help="promote without asking (needed when stdin is not a terminal)")
    policy.set_defaults(func=cmd_policy)
    demo = sub.add_parser("demo", help="local CDE + tutorial scenario + healer + dashboard")
    # String defaults go through `type` too, so a bad DEMO_*_PORT is reported like a bad --port.
    demo.add_argument("--port", type=PORT, default=os.environ.get("DEMO_CDE_PORT", "8765"))
    demo.add_argument("--ui-port", type=PORT, default=os.environ.get("DEMO_UI_PORT", "7860"))
    demo.add_argument("--data-dir", default="data")
    demo.add_argument("--no-ui", action="store_true", help="heal and exit, without the dashboard")
    demo.add_argument("--environments", type=ENVIRONMENT_PAIR, default=None, metavar="DEV,PRD",
                      help="two local CDEs (on --port and the next one): the scenario fails in the second; the fix "
                           "is proven in the first and promoted (HEAL_PROMOTION, default auto here)")
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

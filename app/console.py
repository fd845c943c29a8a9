"""What the command line prints (`python -m app`, `make demo`), and the exit code a record means.

Exit codes: 0 healed, 1 escalated or rejected (or waiting for approval), 2 on error.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Sequence

from agents.config import Settings
from agents.history import history_url
from agents.record import IncidentRecord
from agents.remedies import Rule
from agents.urls import masked_url

EXIT_HEALED, EXIT_NOT_HEALED, EXIT_ERROR = 0, 1, 2
EXIT_OK = EXIT_HEALED  # a command that heals nothing (rules, ask) and did what it was asked


def say(text: str) -> None:
    print(text, flush=True)


def progress(stage: str) -> None:
    """The healer's progress callback: one timestamped line per stage."""
    say(f"  [{time.strftime('%H:%M:%S')}] {stage}")


def exit_code(record: IncidentRecord) -> int:
    if record.state == "healed":
        return EXIT_HEALED
    if record.state == "error":
        return EXIT_ERROR
    return EXIT_NOT_HEALED


def summary(record: IncidentRecord, settings: Settings) -> int:
    """Prints what became of an incident; returns its exit code."""
    say(f"incident {record.incident_id}: {record.state}")
    if record.reason:
        say(f"  {record.reason}")
    attempt = record.latest_attempt
    if attempt and attempt.diagnosis:
        d = attempt.diagnosis
        say(f"  diagnosis ({d.source}{', rule ' + d.rule if d.rule else ''}): {d.category}, "
            f"confidence {d.confidence:.2f}: {d.root_cause}")
    if attempt and len(attempt.candidates) > 1:
        say(f"  {len(attempt.candidates)} candidate fixes, tried in the sandbox in turn:")
        for candidate in attempt.candidates:
            say(f"    {candidate.number}. {candidate.patch.explanation}: {candidate.verdict or 'not tried'}")
    for line in record.staged:
        say(f"  {line}")
    if attempt and attempt.preflight:
        pre = attempt.preflight
        verdict = {True: "passed", False: "FAILED", None: "not made"}[attempt.comparison_passed]
        where = f" in {pre.environment}" if pre.environment else ""
        say(f"  pre-flight {pre.job}{where}, run {pre.run_id}: {pre.status}, into {pre.database}; "
            f"data comparison {verdict}")
        proof_rows = attempt.proof.production_comparison if attempt.proof else []
        for row in [r for r in attempt.comparison + proof_rows + attempt.production_comparison if not r.ok]:
            say(f"    ✗ {row.note}")
    deployed = ([attempt.proof] if attempt and attempt.proof else []) + ([attempt] if attempt else [])
    for run in deployed:
        if run.fix_run_id is None:
            continue
        where = f" in {run.environment}" if attempt and run is attempt.proof else (
            f" in {record.environment}" if record.proven_in else "")
        say(f"  fix job {run.fix_job}{where}, run {run.fix_run_id}: {run.fix_run_status}"
            + (f", output check {'passed' if run.check_passed else 'failed'}" if run.check_passed is not None else ""))
        if attempt and run is attempt.proof and attempt.promotion:
            promo = attempt.promotion
            say(f"  promoted from {promo.source} to {promo.target} ({promo.decided_by or 'waiting'}); outputs in "
                f"{promo.target} measured before it by {promo.baseline_job} run {promo.baseline_run_id}")
    if attempt and attempt.diff:
        say("  diff:\n" + "\n".join("    " + line for line in attempt.diff.splitlines()))
    say(f"  record: {settings.data_dir / 'incidents' / (record.incident_id + '.json')}")
    if record.state == "awaiting_approval":
        say(f"  waiting for approval: python -m app approve {record.incident_id}  (or reject), "
            "or use the dashboard")
    return exit_code(record)


def announce(settings: Settings) -> None:
    """The CDE, mode and model a command works with (never a secret)."""
    say(f"CDE: {settings.jobs_api_url} as {settings.workload_user or 'token'}; mode {settings.heal_mode}")
    home, proving = settings.home, settings.proving
    if proving.name != home.name:
        say(f"environments: watching {home.name}; its fixes are proven in {proving.name} ({proving.jobs_api_url}) "
            f"and promoted with HEAL_PROMOTION={settings.promotion}")
    if settings.model_configured:
        say(f"model: {settings.model_label} at {settings.llm_base_url}")
    else:
        say("model: none configured: healing on deterministic rules alone "
            "(set LLM_ENDPOINT_BASE_URL, LLM_MODEL_ID and LLM_CDP_TOKEN to use one)")
    say(f"run history: {masked_url(history_url(settings))}")


# --- the remedy catalog (`python -m app rules`) ------------------------------------------------


def _fix_label(rule: Rule) -> str:
    return rule.applicability or "diagnosis only"


def catalog_table(rules: Sequence[Rule]) -> str:
    """One line per rule: code, name, what its fix does, summary; in the order they are tried."""
    name_width = max(len(r.name) for r in rules)
    fix_width = max(len(_fix_label(r)) for r in rules)
    lines = [f"{'code':<5} {'name':<{name_width}} {'fix':<{fix_width}} summary"]
    lines += [f"{r.code:<5} {r.name:<{name_width}} {_fix_label(r):<{fix_width}} {r.summary}" for r in rules]
    return "\n".join(lines)


def rule_text(rule: Rule) -> str:
    """Everything about one rule, for `python -m app rules CODE`."""
    matches = [f"Spark error condition {c}*" for c in rule.conditions] + [f"log text {m!r}" for m in rule.markers]
    fix = {"safe": "safe: a correct job's output is unchanged",
           "changes-results": "changes results: the job will produce different data than the original intended",
           }.get(rule.applicability or "", "none: the rule diagnoses; the model (or a person) decides")
    return "\n".join([
        f"{rule.code} {rule.name}: {rule.summary}",
        "",
        textwrap.fill(rule.explanation, width=100),
        "",
        "matches: " + "; ".join(matches),
        f"fix: {fix}",
    ])

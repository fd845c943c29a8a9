"""What the command line prints (`python -m app`, `make demo`), and the exit code a record means.

Exit codes: 0 healed, 1 escalated or rejected (or waiting for approval), 2 on error.
"""

from __future__ import annotations

import time

from agents.config import Settings
from agents.record import IncidentRecord

EXIT_HEALED, EXIT_NOT_HEALED, EXIT_ERROR = 0, 1, 2


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
    if attempt and attempt.fix_job:
        say(f"  fix job {attempt.fix_job}, run {attempt.fix_run_id}: {attempt.fix_run_status}"
            + (f", output check {'passed' if attempt.check_passed else 'failed'}"
               if attempt.check_passed is not None else ""))
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
    if settings.model_configured:
        say(f"model: {settings.model_label} at {settings.llm_base_url}")
    else:
        say("model: none configured: healing on deterministic rules alone "
            "(set LLM_ENDPOINT_BASE_URL, LLM_MODEL_ID and LLM_CDP_TOKEN to use one)")

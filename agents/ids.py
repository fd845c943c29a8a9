"""Job names, run ids and incident ids as callers give them (the CLI, the dashboard), checked before
any of them reaches the CDE API or becomes a file name (``<job>--<run id>.json``, ``.lock``)."""

from __future__ import annotations

from agents.errors import InvalidInput

MAX_RUN_ID = 2**63 - 1  # run ids are 64-bit integers in the Jobs API
INCIDENT_SEPARATOR = "--"


def check_job_name(job: object) -> str:
    """``job`` when it can name a CDE job and a file: not empty, no '/' or '\\', no control
    characters, no spaces at its ends, no leading '.'."""
    if not isinstance(job, str) or not job.strip():
        raise InvalidInput("the job name is empty")
    if job != job.strip() or "/" in job or "\\" in job or not job.isprintable() or job.startswith("."):
        raise InvalidInput(f"{job!r} is not a job name: it may not contain '/', '\\' or control "
                           "characters, start with '.', or start or end with a space")
    return job


def check_run_id(run_id: object) -> int:
    """``run_id`` when it is a run id: a whole number from 1 to 2^63 - 1."""
    if isinstance(run_id, bool) or not isinstance(run_id, int) or not 0 < run_id <= MAX_RUN_ID:
        raise InvalidInput(f"a run id is a whole number from 1 to {MAX_RUN_ID}, not {run_id!r}")
    return run_id


def parse_run_id(text: str) -> int:
    """A run id typed by a person ("42")."""
    try:
        value = int(text.strip())
    except ValueError:
        raise InvalidInput(f"a run id is a whole number from 1 to {MAX_RUN_ID}, not {text!r}") from None
    return check_run_id(value)


def parse_incident_id(text: str) -> tuple[str, int]:
    """(job, run id) of an incident id, ``<job>--<run id>``."""
    job, separator, run = text.rpartition(INCIDENT_SEPARATOR)
    if not separator:
        raise InvalidInput(f"an incident id is <job>{INCIDENT_SEPARATOR}<run id>, not {text!r}")
    return check_job_name(job), parse_run_id(run)


def check_incident_id(text: str) -> str:
    """``text`` when it is an incident id."""
    parse_incident_id(text)
    return text

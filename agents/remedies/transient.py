"""Transient failures: the same job, run again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agents.record import Diagnosis, Evidence, Patch
from agents.remedies.registry import Rule, finding, lines_with

_TRANSIENT_MARKERS = (
    "FetchFailedException",
    "FetchFailed(",
    "ExecutorLostFailure",
    "Connection reset",
    "Connection refused",
    "transient",
    "Failed to connect to",
    "SocketTimeoutException",
)


def _transient(evidence: Evidence, code: str | None) -> Diagnosis | None:
    lines = lines_with(evidence, _TRANSIENT_MARKERS)
    if not lines:
        return None
    return finding(
        "transient",
        "The run failed on a transient infrastructure problem (lost executor, shuffle fetch failure or a "
        "connection reset/refused); the same job is expected to succeed when run again.",
        lines,
        0.7,
    )


def _fix_rerun(evidence: Evidence, code: str | None, job_spark: Mapping[str, Any],
               job: Mapping[str, Any]) -> Patch | None:
    return Patch(kind="rerun", explanation="Transient failure: run the job again unchanged.", source="rule")


RULES = (
    Rule(
        code="T101", name="transient",
        summary="A transient infrastructure failure: the job run again unchanged",
        explanation="Fetch failures, lost executors, connections reset or refused. Fix: run the same job "
        "again (the attempt limit bounds the re-runs).",
        markers=_TRANSIENT_MARKERS, diagnose=_transient, fix=_fix_rerun, applicability="safe",
    ),
)

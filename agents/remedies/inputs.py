"""Inputs: data the job reads that does not exist. No change to the job can heal it."""

from __future__ import annotations

import re

from agents.record import Diagnosis, Evidence
from agents.remedies.registry import Rule, finding, lines_with, unquote

_WRITE_CONTEXT = re.compile(r"saveAsTable|insertInto|\bINSERT\s+(?:INTO|OVERWRITE)|\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:TABLE|VIEW)", re.I)


def _missing_input(evidence: Evidence, code: str | None) -> Diagnosis | None:
    cls = evidence.error_class or ""
    if cls.startswith("PATH_NOT_FOUND"):
        path = evidence.message_parameters.get("path", "the input path")
        return finding(
            "data",
            f"The input path {path} does not exist: the data the job reads is missing. "
            "No code change can fix this; the data must be delivered (or the path corrected) by its owner.",
            lines_with(evidence, ["PATH_NOT_FOUND"]),
            0.85,
        )
    if cls.startswith("TABLE_OR_VIEW_NOT_FOUND"):
        relation = str(evidence.message_parameters.get("relationName", ""))
        bare = unquote(relation).rsplit(".", 1)[-1]
        if code and bare:
            for line in code.splitlines():
                if bare in line and _WRITE_CONTEXT.search(line):
                    return None  # the job writes this table itself: an ordering or naming bug, not missing data
        return finding(
            "data",
            f"The table {relation or '(unnamed)'} that the job reads does not exist. "
            "The upstream data is missing; no code change can fix this.",
            lines_with(evidence, ["TABLE_OR_VIEW_NOT_FOUND"]),
            0.8,
        )
    return None


RULES = (
    Rule(
        code="D101", name="missing-input",
        summary="Input data that does not exist: escalated, whatever a model says",
        explanation="PATH_NOT_FOUND, or TABLE_OR_VIEW_NOT_FOUND of a table the job only reads (a table it "
        "writes itself is an ordering or naming bug, left to others). Category data: the data must be "
        "delivered (or the path corrected) by its owner; no patch.",
        conditions=("PATH_NOT_FOUND", "TABLE_OR_VIEW_NOT_FOUND"), diagnose=_missing_input,
    ),
)

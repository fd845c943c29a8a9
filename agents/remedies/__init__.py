"""The remedy catalog: deterministic rules for well-known Spark failures, run before the model.

`CATALOG` is the one registry, in priority order (specific error conditions first, memory before
the transient signatures it resembles). Each family of rules lives in its own module and exports
its `RULES`; a new rule is one entry there (with its diagnoser and fixer) plus its tests.
``diagnose_by_rules`` names the cause when a signature is unambiguous; ``fix_by_rules`` applies the
rule's remedy without a model. `python -m app rules` lists the catalog.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agents.record import Diagnosis, Evidence, Patch
from agents.remedies import ansi, columns, grouping, inputs, python_names, resources, tables, transient, udf
from agents.remedies.registry import APPLICABILITIES, Applicability, Rule

__all__ = ["APPLICABILITIES", "CATALOG", "MARKERS", "Applicability", "Rule", "diagnose_by_rules", "fix_by_rules",
           "rule_by_code", "rule_named"]

CATALOG: tuple[Rule, ...] = (
    *inputs.RULES,  # D1xx: data the job reads is missing: escalate
    *columns.RULES,  # C10x: unresolved and ambiguous columns
    *grouping.RULES,  # C11x: aggregation and union shapes
    *tables.RULES,  # C12x: the job's own output table
    *python_names.RULES,  # P10x: Python names, attributes and imports
    *udf.RULES,  # P11x: Python UDFs
    *ansi.RULES,  # A10x: ANSI data errors whose message names a try_ function
    *resources.RULES,  # M10x: memory and result size
    *transient.RULES,  # T10x: transient failures
)
MARKERS: tuple[str, ...] = tuple(dict.fromkeys(m for rule in CATALOG for m in rule.markers))  # for distill
_BY_NAME = {rule.name: rule for rule in CATALOG}
_BY_CODE = {rule.code: rule for rule in CATALOG}
if len(_BY_NAME) != len(CATALOG) or len(_BY_CODE) != len(CATALOG):
    raise ValueError("two rules of the catalog share a code or a name")


def rule_named(name: str | None) -> Rule | None:
    return _BY_NAME.get(name or "")


def rule_by_code(code: str) -> Rule | None:
    """The rule with this code (case-insensitive), or None."""
    return _BY_CODE.get(code.strip().upper())


def diagnose_by_rules(
    evidence: Evidence, code: str | None = None, job: Mapping[str, Any] | None = None
) -> Diagnosis | None:
    """The diagnosis of the first rule that matches the evidence and recognises it, or None.

    ``code`` is the application file; ``job`` the CDE job definition (unused by today's rules).
    """
    for rule in CATALOG:
        if rule.matches(evidence):
            diagnosis = rule.diagnose(evidence, code)
            if diagnosis is not None:
                diagnosis.rule = rule.name
                return diagnosis
    return None


def fix_by_rules(
    diagnosis: Diagnosis,
    evidence: Evidence,
    code: str | None,
    job_spark: Mapping[str, Any] | None = None,
    job: Mapping[str, Any] | None = None,
) -> Patch | None:
    """The deterministic patch for a rule's diagnosis, or None (no rule, no fix, or no safe answer).

    ``job_spark`` is the job's "spark" section (driverMemory, conf, ...); ``job`` the whole job
    definition, used only to check that the traceback's file is the application file.
    """
    rule = rule_named(diagnosis.rule) if diagnosis.source == "rule" else None
    if rule is None or rule.fix is None:
        return None
    job_spark = job_spark or {}
    patch = rule.fix(evidence, code, job_spark, job or {"spark": dict(job_spark)})
    if patch is not None:
        patch.applicability = rule.applicability
    return patch

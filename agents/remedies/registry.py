"""What a rule is: one object with its code, name, documentation, what it matches, and its fix.

Modelled on a linter's rule registry (ruff's): a stable code and a name, a one-line summary and a
longer explanation, the Spark error conditions (or log markers) it matches, and a fixer whose
*applicability* says what the fix does to a correct job's output:

- ``safe``: the output of a correct job is unchanged (the column Spark suggests, more memory);
- ``changes-results``: the job produces different data than the original intended (``try_cast``
  turns malformed values into NULL, overwrite instead of failing on an existing table).

A rule's diagnoser is called only when the evidence carries one of its conditions (a prefix of
Spark's error class, e.g. ``UNRESOLVED_COLUMN``) or one of its markers in the log, and returns a
`Diagnosis` or None; its fixer returns a `Patch` or None (no safe answer: the model, or a human).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from agents.record import Category, Diagnosis, Evidence, Patch

Applicability = Literal["safe", "changes-results"]
APPLICABILITIES: tuple[Applicability, ...] = ("safe", "changes-results")
MAX_EVIDENCE_LINES = 5

Diagnoser = Callable[[Evidence, "str | None"], "Diagnosis | None"]
# (evidence, the application code, the job's spark section, the whole job definition) -> a patch
Fixer = Callable[[Evidence, "str | None", Mapping[str, Any], Mapping[str, Any]], "Patch | None"]


@dataclass(frozen=True)
class Rule:
    code: str  # stable, e.g. "C101": records and `python -m app rules C101` name it
    name: str  # e.g. "unresolved-column": `Diagnosis.rule`
    summary: str  # one line, for the catalog listing
    explanation: str  # what it recognises, what its fix changes, and when it does not fix
    diagnose: Diagnoser
    conditions: tuple[str, ...] = ()  # Spark error classes it matches (prefixes: "UNRESOLVED_COLUMN")
    markers: tuple[str, ...] = ()  # log text it matches when there is no error class (JVM, YARN, Python)
    fix: Fixer | None = None  # None: nothing to apply (missing data; or diagnosis only, for the model)
    applicability: Applicability | None = None  # of the fix

    def __post_init__(self) -> None:
        if not self.conditions and not self.markers:
            raise ValueError(f"rule {self.code} {self.name}: matches nothing (no conditions, no markers)")
        if (self.fix is None) != (self.applicability is None):
            raise ValueError(f"rule {self.code} {self.name}: a fix needs an applicability, and only a fix has one")

    def matches(self, evidence: Evidence) -> bool:
        """Whether the evidence carries one of the rule's conditions or markers (cheap; before diagnose)."""
        error_class = evidence.error_class or ""
        if any(error_class.startswith(c) for c in self.conditions):
            return True
        return bool(self.markers) and any(m in t for t in texts(evidence) for m in self.markers)


def texts(evidence: Evidence) -> list[str]:
    """The evidence's error lines: the exception, its cause, and the key lines distillation kept."""
    found = [t for t in (evidence.exception, evidence.caused_by) if t]
    return found + [t for t in evidence.key_lines if t not in found]


def lines_with(evidence: Evidence, markers: Iterable[str]) -> list[str]:
    markers = tuple(markers)
    found = [t for t in texts(evidence) if any(m in t for m in markers)]
    return found[-MAX_EVIDENCE_LINES:]


def finding(category: Category, cause: str, evidence: list[str], confidence: float) -> Diagnosis:
    """A rule's diagnosis; the catalog stamps the rule's name on it."""
    return Diagnosis(category=category, root_cause=cause, evidence=evidence[:MAX_EVIDENCE_LINES],
                     confidence=confidence, source="rule")


def unquote(name: str) -> str:
    """`a`.`b` or `b` as Spark quotes names → a.b or b."""
    return name.strip().strip("`").replace("`.`", ".").replace("`", "")


def spark_file(job: Mapping[str, Any] | None) -> str | None:
    """The base name of the job's application file."""
    spark = (job or {}).get("spark") if isinstance(job, Mapping) else None
    file = spark.get("file") if isinstance(spark, Mapping) else None
    return file.rsplit("/", 1)[-1] if isinstance(file, str) and file else None

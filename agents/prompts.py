"""Prompt templates (files in ``prompts/``) and the structured answers the model must give.

Templates are Markdown files with ``string.Template`` placeholders (``$evidence``, ``${code}``;
a literal dollar is ``$$``). ``render("diagnose", evidence=..., ...)`` fills one; a missing
template or a placeholder without a value is an ``InvalidInput`` naming what is missing. Values
that are not text are shown as JSON (dicts, lists) or "(none)" (None).

The answer schemas are small on purpose: small models fill small schemas reliably.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from string import Template
from typing import Any

from pydantic import BaseModel, Field, field_validator

from agents import untrusted
from agents.edits import Edit, apply_edits
from agents.errors import EditsDoNotApply, InvalidInput
from agents.record import Category, Diagnosis, Patch, PatchKind

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
COUNT_FIELDS = frozenset({"driverCores", "executorCores", "numExecutors"})  # integers in a CDE job spec


def template_names(directory: Path = PROMPTS_DIR) -> list[str]:
    """Names of the available templates (file names without ``.md``)."""
    return sorted(p.stem for p in directory.glob("*.md"))


def _load(name: str, directory: Path) -> str:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise InvalidInput(f"bad prompt template name {name!r}")
    path = directory / f"{name}.md"
    if not path.is_file():
        raise InvalidInput(
            f"no prompt template {name!r} in {directory} (available: {', '.join(template_names(directory)) or 'none'})"
        )
    return path.read_text(encoding="utf-8")


def placeholders(name: str, directory: Path = PROMPTS_DIR) -> list[str]:
    """The placeholder names a template uses, in order of first use."""
    text = _load(name, directory)
    found: list[str] = []
    for match in Template.pattern.finditer(text):
        if match.group("invalid") is not None:
            line = text[: match.start()].count("\n") + 1
            raise InvalidInput(f"prompt template {name!r} has a stray '$' on line {line} (write $$ for a dollar)")
        identifier = match.group("named") or match.group("braced")
        if identifier and identifier not in found:
            found.append(identifier)
    return found


def _as_text(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json(indent=2)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, indent=2, default=str)
    return str(value)


def render(name: str, /, directory: Path = PROMPTS_DIR, **values: Any) -> str:
    """The template ``prompts/<name>.md`` with every placeholder filled from ``values``.

    Values the template does not use are ignored; a placeholder without a value is an error.
    """
    needed = placeholders(name, directory)
    missing = [p for p in needed if p not in values]
    if missing:
        raise InvalidInput(f"prompt template {name!r} needs a value for: {', '.join(missing)}")
    return Template(_load(name, directory)).substitute({k: _as_text(v) for k, v in values.items()})


def compact_schema(schema: type[BaseModel]) -> dict[str, Any]:
    """The answer's JSON schema without pydantic's titles: what the model needs, in fewer tokens."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items() if not (k == "title" and isinstance(v, str))}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(schema.model_json_schema())


def incident_data(sections: Sequence[tuple[str, str]], *, code: str, code_note: str,
                  spark: dict[str, Any] | None, feedback: str | None) -> str:
    """A prompt's data (`$data`) in one untrusted block, so the model reads all of it as data and
    never as instructions: the stage's own `sections` ("## heading" and text), then what every
    stage shows -- the code, the job's spark section as compact JSON and, after a failed attempt,
    what went wrong. Sections without text are left out."""
    sections = [*sections, (f"Application code ({code_note})", code),
                ("Job settings", json.dumps(spark or {}, sort_keys=True, separators=(", ", ":"))),
                ("Earlier attempts", feedback or "")]
    return untrusted.block("incident", "\n\n".join(f"## {heading}\n{text}" for heading, text in sections if text))


def number_lines(code: str) -> str:
    """Code with right-aligned line numbers ("  12| ..."), as the prompts show it."""
    lines = code.splitlines()
    width = len(str(len(lines)))
    return "\n".join(f"{i:>{width}}| {line}" for i, line in enumerate(lines, start=1))


# --- what the model answers ---------------------------------------------------------------------


class DiagnosisAnswer(BaseModel):
    """The diagnosis of a failed Spark job run."""

    category: Category = Field(
        description="code: the application code is wrong; config: resources or Spark settings; "
        "transient: an infrastructure hiccup a rerun gets past; data: input data missing or unusable; "
        "unknown: the evidence does not say"
    )
    root_cause: str = Field(description="The root cause in one or two sentences.")
    evidence: list[str] = Field(description="Log lines (copied verbatim) that show the cause.")
    confidence: float = Field(ge=0.0, le=1.0, description="Confidence in this diagnosis, from 0 to 1.")

    @field_validator("confidence", mode="before")
    @classmethod
    def _percent(cls, value: Any) -> Any:
        """A confidence over 1 and up to 100 is read as a percentage: grammar-constrained servers
        (llama.cpp) do not enforce a schema's bounds, and small models answer 85 for 0.85."""
        if isinstance(value, int | float) and not isinstance(value, bool) and 1 < value <= 100:
            return value / 100
        return value

    def to_diagnosis(self) -> Diagnosis:
        return Diagnosis(
            category=self.category,
            root_cause=self.root_cause,
            evidence=self.evidence,
            confidence=self.confidence,
            source="model",
        )


class Alternative(BaseModel):
    """Another code fix to try when the first fails."""

    explanation: str = Field(description="What it changes, in one sentence.")
    edits: list[Edit] = Field(description="Its edits of the file shown.")


class PatchAnswer(BaseModel):
    """The smallest change that fixes the failed job."""

    kind: PatchKind = Field(description="code: edit the application file; config: change settings; rerun: no change")
    explanation: str = Field(description="What the change does and why, in one sentence.")
    edits: list[Edit] = Field(default_factory=list, description="For kind code: the edits of the file shown.")
    alternatives: list[Alternative] = Field(
        default_factory=list, description="For kind code, when unsure: other fixes to try, best first.")
    need_lines: list[int] = Field(
        default_factory=list, description="To see more of the file first: [first line, last line], and nothing else.")
    code: str | None = Field(
        default=None, description="For kind code, only if edits are impossible: the whole new file.")
    spark_changes: dict[str, str] = Field(
        default_factory=dict, description='For kind config: job settings, e.g. {"driverMemory": "2g"}.')
    conf_changes: dict[str, str] = Field(
        default_factory=dict, description='For kind config: spark.conf keys, e.g. {"spark.driver.maxResultSize": "2g"}.')
    args: list[str] | None = Field(
        default=None, description="For kind config, only when arguments are missing: the complete new list "
        "(existing ones unchanged, in order; missing ones appended).")

    def line_request(self) -> tuple[int, int] | None:
        """The lines the model asks to see before it answers, when that is all it answers."""
        if len(self.need_lines) not in (1, 2) or self.edits or self.code:
            return None
        first, last = self.need_lines[0], self.need_lines[-1]
        return (min(first, last), max(first, last))

    def config_patch(self) -> Patch:
        """The answer as a config or rerun patch (a config answer carrying code is left for the
        guard to reject)."""
        spark: dict[str, Any] = {
            k: int(v) if k in COUNT_FIELDS and str(v).strip().isdigit() else v for k, v in self.spark_changes.items()
        }
        if self.args is not None:
            spark["args"] = list(self.args)
        return Patch(kind=self.kind, explanation=self.explanation, code=self.code or None, spark_changes=spark,
                     conf_changes=dict(self.conf_changes), source="model")

    def to_patch(self, base_code: str = "") -> Patch:
        """The first proposal as a patch: a code answer's edits applied to `base_code` (raises
        EditsDoNotApply when they do not apply)."""
        if self.kind != "code":
            return self.config_patch()
        return code_patch(base_code, *self.proposals(1)[0])

    def proposals(self, limit: int) -> list[tuple[str, list[Edit], str | None]]:
        """For a code answer: up to `limit` proposals (explanation, edits, whole file), the first
        one first; a whole new file only when the answer gave no edits."""
        first = (self.explanation, list(self.edits), None if self.edits else self.code)
        return [first, *((a.explanation, list(a.edits), None) for a in self.alternatives)][:max(limit, 1)]


def code_patch(base_code: str, explanation: str, edits: list[Edit], whole_file: str | None) -> Patch:
    """One code proposal as a patch: its edits applied to `base_code`, else its whole new file.
    Raises EditsDoNotApply when the edits do not apply, or when there is neither."""
    if edits:
        code = apply_edits(base_code, edits)
    elif whole_file:
        code = whole_file
    else:
        raise EditsDoNotApply(["a code patch needs `edits` (or, failing that, the whole file in `code`)"])
    return Patch(kind="code", explanation=explanation, code=code, edits=edits, source="model")

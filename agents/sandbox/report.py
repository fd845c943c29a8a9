"""The sandbox launcher's report, as the healer reads it from a driver log.

The launcher (`launcher.py`, which cannot import this module on CDE) prints one line
`HEALER-SANDBOX-REPORT <json>` at the end of every run; these models are its schema.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

REPORT_MARKER = "HEALER-SANDBOX-REPORT "


class BadSandboxReport(ValueError):
    """A report line is present but is not a valid report."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnStats(_Model):
    name: str
    type: str
    nulls: int = Field(ge=0)
    distinct: int = Field(ge=0)  # approx_count_distinct
    min: str | None = None       # orderable types only
    max: str | None = None
    mean: float | None = None    # numeric types only


class TableStats(_Model):
    rows: int = Field(ge=0)
    columns: list[ColumnStats]


class SampleSpec(_Model):
    kind: Literal["none", "rows", "fraction"]
    value: float | None = None

    def conf_value(self) -> str:
        """The launcher's `spark.healer.sandbox.sample` text."""
        if self.kind == "none":
            return "none"
        return f"rows:{int(self.value or 0)}" if self.kind == "rows" else f"fraction:{self.value:g}"


class SandboxOutput(_Model):
    kind: Literal["table", "path"]
    name: str                       # production name, resolved ("mart.t", "file:/data/out")
    sandbox: str | None = None      # where the run's output went (None in stats mode)
    operations: list[str] = []
    format: str | None = None
    stats: TableStats | None = None     # the sandboxed output (preflight) / production (stats mode)
    baseline: TableStats | None = None  # production as it stood (preflight); None when absent
    error: str | None = None            # why stats could not be computed


class SandboxRead(_Model):
    kind: Literal["table", "path"]
    name: str
    redirected: bool
    sampled: bool


class Seconds(_Model):
    app: float
    stats: float


class SandboxReport(_Model):
    healer_sandbox: Literal[1]
    mode: Literal["preflight", "stats"]
    database: str
    sample: SampleSpec
    app_exit: int | None
    app_error: str | None
    outputs: list[SandboxOutput]
    reads: list[SandboxRead]
    seconds: Seconds

    def output(self, kind: str, name: str) -> SandboxOutput | None:
        return next((o for o in self.outputs if o.kind == kind and o.name == name), None)


def parse_report(log_text: str) -> SandboxReport | None:
    """The LAST report line of a driver log; None when there is none; BadSandboxReport when malformed."""
    lines = [line for line in log_text.splitlines() if line.startswith(REPORT_MARKER)]
    if not lines:
        return None
    body = lines[-1][len(REPORT_MARKER):]
    try:
        return SandboxReport.model_validate(json.loads(body))
    except json.JSONDecodeError as error:
        raise BadSandboxReport(f"sandbox report is not JSON ({error.msg} at column {error.colno})") from None
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'report'}: {e['msg']}"
                             for e in error.errors()[:5])
        raise BadSandboxReport(f"sandbox report does not match its schema: {problems}") from None


def sample_spec(text: str) -> SampleSpec:
    """`none` | `rows:N` (integer N >= 1) | `fraction:F` (0 < F < 1); ValueError says what is allowed."""
    allowed = "expected none, rows:N (a whole number >= 1) or fraction:F (0 < F < 1)"
    kind, sep, value = str(text).strip().partition(":")
    if kind == "none" and not sep:
        return SampleSpec(kind="none")
    if kind == "rows" and value.strip().isdigit() and int(value) >= 1:
        return SampleSpec(kind="rows", value=int(value))
    if kind == "fraction":
        try:
            fraction = float(value)
        except ValueError:
            fraction = 0.0
        if 0 < fraction < 1:
            return SampleSpec(kind="fraction", value=fraction)
    raise ValueError(f"bad sample {text!r}: {allowed}")

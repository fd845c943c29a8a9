"""The figures of one healing benchmark: a row per scenario, computed from its incident record.

Everything here is pure computation on a record and on run durations read from the CDE, so the
table can be tested without Spark. Definitions:

- time to heal: from the failed run's start to the end of the incident's last stage = the failed
  run's duration + the record's opening → its end (the benchmark heals at once, so detection adds
  nothing; a watcher adds up to one poll interval);
- floor: what no healer can avoid = failed run duration + model time (sum of the calls'
  latency) + every run the healer started: pre-flights, output checks on the sandbox, fix runs,
  measurements of the production outputs, output checks;
- pre-flight: the fix's runs in the sandbox (`preflight_s`) beside the production fix runs
  (`fix_runs_s`): what proving a fix on data costs;
- false heal: an incident healed by an attempt whose patch is known to be wrong (the deceptive
  fixes of `bench/deceptive/`); must be 0.
- own time: time to heal − floor = what the healer itself spent (log fetching, uploads, polling).
- right: healed when the scenario expects a heal, escalated when it expects an escalation; for a
  deceptive row, anything but a heal by the wrong fix (healed by the right one later, escalated, or
  paused for a person because the data could not prove it).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from agents.record import IncidentRecord, LlmCall

CHECK_PASSED, CHECK_FAILED, CHECK_NONE = "passed", "failed", "none"


@dataclass(frozen=True)
class ScenarioInfo:
    """What the benchmark knows of a scenario before healing it."""

    name: str
    failure_class: str
    expected: str  # heal | escalate


@dataclass
class HealRow:
    scenario: str
    failure_class: str
    expected: str
    outcome: str  # the record's final state (healed | escalated | rejected | error | ...), or error
    right: bool = False
    check: str = CHECK_NONE  # the last output check: passed | failed | none
    attempts: int = 0
    time_s: float | None = None
    floor_s: float | None = None
    own_s: float | None = None  # time_s minus the floor
    failed_run_s: float | None = None
    model_s: float = 0.0
    fix_runs_s: float | None = None
    check_runs_s: float | None = None
    preflight_s: float | None = None  # the pre-flight runs in the sandbox
    sandbox_runs_s: float | None = None  # user checks on the sandbox and measurements of production outputs
    compared: str = "-"  # the last data comparison: passed | failed | -
    deceptive: bool = False  # the first patch tried is a known-wrong fix (bench/deceptive)
    false_heal: bool = False  # healed by that wrong fix
    model_calls: int = 0
    prompt_tokens: int = 0  # sum of the endpoint's usage
    estimated_prompt_tokens: int = 0  # sum of the healer's offline estimates
    max_prompt_tokens: int | None = None  # the largest prompt of one call (usage, else the estimate)
    patch_output_tokens: int | None = None  # the largest answer of one patch call (usage)
    calls: list[dict[str, Any]] = field(default_factory=list)  # per call: stage, attempt, mode, tokens, latency, error
    raw_log_bytes: int | None = None
    distilled_tokens: int | None = None
    diagnosis: str = "-"  # rule | model (of the first attempt)
    rule: str | None = None  # the rule that matched, when one did
    patch: str = "-"  # rule | model (of the last attempt with a patch)
    run_id: int | None = None  # the failed run healed
    fix_jobs: list[str] = field(default_factory=list)
    incident: str | None = None
    reason: str = ""  # why the record ended as it did
    error: str = ""  # what went wrong in the benchmark itself (load, healer crash)
    unused_answers: int | None = None  # scripted model only: answers never asked for

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_time(text: str | None) -> datetime | None:
    """An ISO-8601 UTC time as the records write it ("...Z"), or None."""
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def elapsed_s(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


def time_to_end(record: IncidentRecord) -> float | None:
    """Seconds from the record's opening to the end of its last stage."""
    ends = [parse_time(s.ended) for s in record.stages if s.ended]
    return elapsed_s(parse_time(record.opened_at), max((e for e in ends if e), default=None))


def _sum_runs(run_ids: Iterable[int], durations: Mapping[int, float | None]) -> float | None:
    """Total duration of the runs; None when any of them has no known duration."""
    total = 0.0
    for run_id in run_ids:
        duration = durations.get(run_id)
        if duration is None:
            return None
        total += duration
    return round(total, 3)


def healer_run_ids(record: IncidentRecord) -> tuple[list[int], list[int]]:
    """(fix run ids, output-check run ids) the healer started for this incident."""
    fixes = [a.fix_run_id for a in record.attempts if a.fix_run_id is not None]
    checks = [a.check_run_id for a in record.attempts if a.check_run_id is not None]
    return fixes, checks


def sandbox_run_ids(record: IncidentRecord) -> tuple[list[int], list[int]]:
    """(pre-flight run ids, other sandbox-launcher run ids: checks on the sandbox, measurements)."""
    runs = [a.preflight for a in record.attempts if a.preflight]
    runs += [c.preflight for a in record.attempts for c in a.candidates if c.preflight]  # the candidates tried
    preflights = list(dict.fromkeys(p.run_id for p in runs if p.run_id is not None))
    others = list(dict.fromkeys(p.check_run_id for p in runs if p.check_run_id is not None))
    others += [a.production_stats_run_id for a in record.attempts if a.production_stats_run_id is not None]
    return preflights, others


def row_from_record(info: ScenarioInfo, record: IncidentRecord,
                    durations: Mapping[int, float | None], deceptive: bool = False) -> HealRow:
    """The row of one healed (or escalated) scenario. `durations`: run id → seconds, from CDE.
    `deceptive`: the first patch tried was a known-wrong fix."""
    fixes, checks = healer_run_ids(record)
    preflights, sandboxed = sandbox_run_ids(record)
    compared = [a.comparison_passed for a in record.attempts if a.comparison_passed is not None]
    checked = [a.check_passed for a in record.attempts if a.check_passed is not None]
    diagnosed = [a.diagnosis for a in record.attempts if a.diagnosis is not None]
    patched = [a.patch for a in record.attempts if a.patch is not None]
    model_s = round(sum(c.latency_s for c in record.llm_calls), 3)
    row = HealRow(
        scenario=info.name,
        failure_class=info.failure_class,
        expected=info.expected,
        outcome=record.state,
        right=(record.state in ("healed", "escalated", "awaiting_approval") and not _healed_by_first_patch(record))
        if deceptive
        else is_right(info.expected, record.state),
        check=(CHECK_PASSED if checked[-1] else CHECK_FAILED) if checked else CHECK_NONE,
        attempts=len(record.attempts),
        time_s=_plus(durations.get(record.run_id), time_to_end(record)),
        failed_run_s=durations.get(record.run_id),
        model_s=model_s,
        fix_runs_s=_sum_runs(fixes, durations),
        check_runs_s=_sum_runs(checks, durations),
        preflight_s=_sum_runs(preflights, durations),
        sandbox_runs_s=_sum_runs(sandboxed, durations),
        compared=("passed" if compared[-1] else "failed") if compared else "-",
        deceptive=deceptive,
        false_heal=deceptive and record.state == "healed" and _healed_by_first_patch(record),
        model_calls=len(record.llm_calls),
        prompt_tokens=sum(c.prompt_tokens or 0 for c in record.llm_calls),
        estimated_prompt_tokens=sum(c.estimated_prompt_tokens for c in record.llm_calls),
        max_prompt_tokens=max((call_prompt_tokens(c) for c in record.llm_calls), default=None),
        patch_output_tokens=max((c.completion_tokens for c in record.llm_calls
                                 if c.stage == "patch" and c.completion_tokens is not None), default=None),
        calls=[{"stage": c.stage, "attempt": c.attempt, "mode": c.mode, "prompt_tokens": c.prompt_tokens,
                "completion_tokens": c.completion_tokens, "estimated_prompt_tokens": c.estimated_prompt_tokens,
                "latency_s": c.latency_s, "error": c.error}
               for c in record.llm_calls],
        raw_log_bytes=record.evidence.raw_log_bytes if record.evidence else None,
        distilled_tokens=record.evidence.distilled_tokens if record.evidence else None,
        diagnosis=diagnosed[0].source if diagnosed else "-",
        rule=next((d.rule for d in diagnosed if d.rule), None),
        patch=patched[-1].source if patched else "-",
        run_id=record.run_id,
        fix_jobs=[a.fix_job for a in record.attempts if a.fix_job],
        incident=record.incident_id,
        reason=record.reason,
    )
    parts = (row.failed_run_s, row.fix_runs_s, row.check_runs_s, row.preflight_s, row.sandbox_runs_s)
    row.floor_s = None if None in parts else round(sum(p or 0.0 for p in parts) + model_s, 3)
    if row.time_s is not None and row.floor_s is not None:
        row.own_s = round(row.time_s - row.floor_s, 3)
    return row


def call_prompt_tokens(call: LlmCall) -> int:
    """A call's prompt size: the endpoint's count when it reported one, else our estimate."""
    return call.prompt_tokens if call.prompt_tokens is not None else call.estimated_prompt_tokens


def _healed_by_first_patch(record: IncidentRecord) -> bool:
    """Whether the attempt that healed is the one that tried the first patch."""
    patched = [a for a in record.attempts if a.patch is not None]
    return bool(patched) and patched[0].verdict == "healed"


def _plus(failed_run_s: float | None, incident_s: float | None) -> float | None:
    return None if failed_run_s is None or incident_s is None else round(failed_run_s + incident_s, 3)


def error_row(info: ScenarioInfo, error: str, record: IncidentRecord | None = None,
              durations: Mapping[int, float | None] | None = None) -> HealRow:
    """The row of a scenario the benchmark could not finish; the record's figures when it has one."""
    if record is not None:
        row = row_from_record(info, record, durations or {})
        row.outcome, row.right, row.error = "error", False, error
        return row
    return HealRow(scenario=info.name, failure_class=info.failure_class, expected=info.expected,
                   outcome="error", error=error)


def is_right(expected: str, outcome: str) -> bool:
    return (expected, outcome) in {("heal", "healed"), ("escalate", "escalated")}


@dataclass(frozen=True)
class Summary:
    scenarios: int
    healed: int
    expected_heal: int
    right: int
    errors: int
    false_heals: int  # healed by a known-wrong fix (deceptive rows)
    deceptive: int  # rows whose first patch was a known-wrong fix
    median_preflight_s: float | None  # over the rows that ran one
    median_fix_run_s: float | None
    median_time_to_heal_s: float | None  # over the healed rows
    median_floor_s: float | None  # over the healed rows that have one
    median_own_s: float | None  # over the healed rows that have one
    model_calls: int
    prompt_tokens: int
    estimated_prompt_tokens: int
    median_prompt_per_call: float | None = None  # tokens, over every call of every row
    max_prompt_per_call: int | None = None
    median_patch_output_tokens: float | None = None  # over the patch calls

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        def secs(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f} s"

        return (f"healed {self.healed}/{self.scenarios} (expected heals: {self.expected_heal}), "
                f"right outcomes {self.right}/{self.scenarios}, errors {self.errors}, "
                f"false heals {self.false_heals}/{self.deceptive} deceptive, "
                f"median pre-flight {secs(self.median_preflight_s)} vs fix run {secs(self.median_fix_run_s)}, "
                f"median time to heal {secs(self.median_time_to_heal_s)} vs floor {secs(self.median_floor_s)} "
                f"(own {secs(self.median_own_s)}), "
                f"model calls {self.model_calls}, prompt tokens {self.prompt_tokens} "
                f"(estimated {self.estimated_prompt_tokens}), per call median {_tokens(self.median_prompt_per_call)} "
                f"max {_tokens(self.max_prompt_per_call)}, patch answers median "
                f"{_tokens(self.median_patch_output_tokens)} tokens")


def _tokens(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _median(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 3) if known else None


def summarize(rows: list[HealRow]) -> Summary:
    healed = [r for r in rows if r.outcome == "healed"]
    return Summary(
        scenarios=len(rows),
        healed=len(healed),
        expected_heal=sum(r.expected == "heal" for r in rows),
        right=sum(r.right for r in rows),
        errors=sum(r.outcome == "error" for r in rows),
        false_heals=sum(r.false_heal for r in rows),
        deceptive=sum(r.deceptive for r in rows),
        median_preflight_s=_median(r.preflight_s for r in rows),
        median_fix_run_s=_median(r.fix_runs_s for r in rows if r.fix_runs_s),
        median_time_to_heal_s=_median(r.time_s for r in healed),
        median_floor_s=_median(r.floor_s for r in healed),
        median_own_s=_median(r.own_s for r in healed),
        model_calls=sum(r.model_calls for r in rows),
        prompt_tokens=sum(r.prompt_tokens for r in rows),
        estimated_prompt_tokens=sum(r.estimated_prompt_tokens for r in rows),
        median_prompt_per_call=_median(_call_prompt(c) for r in rows for c in r.calls),
        max_prompt_per_call=max((_call_prompt(c) for r in rows for c in r.calls), default=None),
        median_patch_output_tokens=_median(c["completion_tokens"] for r in rows for c in r.calls
                                           if c["stage"] == "patch"),
    )


def _call_prompt(call: Mapping[str, Any]) -> int:
    return call["prompt_tokens"] if call.get("prompt_tokens") is not None else call["estimated_prompt_tokens"]

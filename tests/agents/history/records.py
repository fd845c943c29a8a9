"""Incident records and CDE runs as the healer and CDE make them, for the run history's tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from agents.record import (
    Attempt,
    Candidate,
    Diagnosis,
    FailedRun,
    IncidentRecord,
    LlmCall,
    Patch,
    PolicyChoice,
    Preflight,
    StageTiming,
    incident_id,
)
from agents.times import UTC_PRECISE
from cde_client import JobRun

T0 = datetime(2026, 3, 9, 10, 0, tzinfo=timezone.utc)


def stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime(UTC_PRECISE)


def at(seconds: float, base: datetime = T0) -> datetime:
    return base + timedelta(seconds=seconds)


def cde_run(job: str, run_id: int, status: str, started: datetime | None, ended: datetime | None,
            **spec: Any) -> JobRun:
    """A run as CDE's list answers it (through the client's own parsing)."""
    raw: dict[str, Any] = {"id": run_id, "job": job, "type": "spark", "status": status, "user": "alice",
                           "spark": {"sparkAppID": f"app-{run_id}", "spec": {"file": "app.py", **spec}}}
    if started is not None:
        raw["started"] = started.strftime("%Y-%m-%dT%H:%M:%SZ")
    if ended is not None:
        raw["ended"] = ended.strftime("%Y-%m-%dT%H:%M:%SZ")
    return JobRun.from_api(raw)


def incident(job: str, run_id: int, *, state: str, failed_at: datetime, ended_at: datetime | None = None,
             attempts: list[Attempt] | None = None, llm_calls: list[LlmCall] | None = None,
             stages: list[StageTiming] | None = None, reason: str = "") -> IncidentRecord:
    """A record as the healer leaves it; `ended_at` is its last write (the end of a finished one)."""
    opened = failed_at + timedelta(seconds=5)
    return IncidentRecord(
        incident_id=incident_id(job, run_id), job=job, run_id=run_id, state=state, reason=reason,  # type: ignore[arg-type]
        opened_at=stamp(opened), updated_at=stamp(ended_at or opened + timedelta(seconds=1)),
        failed_run=FailedRun(id=run_id, job=job, status="failed", started=stamp(failed_at - timedelta(seconds=60)),
                             ended=stamp(failed_at)),
        attempts=attempts or [], llm_calls=llm_calls or [], stages=stages or [])


def diagnosis(category: str = "code", condition: str | None = "UNRESOLVED_COLUMN", source: str = "rule") -> Diagnosis:
    return Diagnosis(category=category, root_cause="a cause", confidence=0.9, source=source,  # type: ignore[arg-type]
                     condition=condition)


def rule_fix(kind: str = "code") -> Patch:
    return Patch(kind=kind, source="rule", applicability="safe", code="x = 1\n" if kind == "code" else None)  # type: ignore[arg-type]


def model_patch() -> Patch:
    return Patch(kind="code", source="model", code="x = 2\n")


def rerun() -> Patch:
    return Patch(kind="rerun", source="rule")


def healed_in_two_attempts(job: str = "sales-daily", run_id: int = 41, failed_at: datetime = T0,
                           healed_after_s: float = 600) -> IncidentRecord:
    """Attempt 1: the model's patch (recorded before the policy existed), two candidates whose
    pre-flights failed; attempt 2: the learned policy's rule fix, healed after its production run."""
    first = Attempt(
        number=1, diagnosis=diagnosis(category="config", condition="SPARK_MEMORY"), patch=model_patch(),
        preflight=Preflight(job=f"{job}-fix-1-preflight", run_id=101, status="failed", duration_s=40.0),
        candidates=[
            Candidate(number=1, patch=model_patch(), accepted=True, verdict="pre-flight failed",
                      preflight=Preflight(job=f"{job}-fix-1-preflight", run_id=101, status="failed", duration_s=40.0)),
            Candidate(number=2, patch=model_patch(), accepted=True, verdict="data comparison failed",
                      preflight=Preflight(job=f"{job}-fix-1-c2-preflight", run_id=102, status="succeeded",
                                          duration_s=25.0, check_run_id=103, check_duration_s=5.0)),
        ],
        verdict="pre-flight failed")
    second = Attempt(
        number=2, policy=PolicyChoice(action="rule-fix", policy="learned", reason="rule fixes worked here",
                                      q_values={"rule-fix": 0.8, "escalate": -0.2}),
        diagnosis=diagnosis(category="config", condition="SPARK_MEMORY"), patch=rule_fix("config"),
        preflight=Preflight(job=f"{job}-fix-2-preflight", run_id=104, status="succeeded", duration_s=30.0),
        fix_job=f"{job}-fix-2", fix_run_id=105, fix_run_status="succeeded", fix_run_duration_s=120.0,
        check_run_id=106, check_passed=True, check_run_duration_s=15.0,
        production_stats_run_id=107, production_stats_duration_s=10.0, verdict="healed")
    calls = [
        LlmCall(stage="diagnose", attempt=1, prompt_tokens=1000, completion_tokens=200, latency_s=2.5),
        LlmCall(stage="patch", attempt=1, prompt_tokens=None, estimated_prompt_tokens=800, latency_s=1.5),
        LlmCall(stage="diagnose", attempt=2, prompt_tokens=500, completion_tokens=50, latency_s=1.0),
    ]
    stages = [
        StageTiming(stage="monitor", attempt=0, started=stamp(at(6, failed_at)), ended=stamp(at(6.1, failed_at))),
        StageTiming(stage="log_fetch", attempt=1, started=stamp(at(7, failed_at)), ended=stamp(at(8, failed_at))),
        StageTiming(stage="preflight", attempt=1, started=stamp(at(20, failed_at)), ended=stamp(at(90, failed_at))),
        StageTiming(stage="log_fetch", attempt=2, started=stamp(at(100, failed_at)), ended=stamp(at(101, failed_at))),
        StageTiming(stage="verify", attempt=2, started=stamp(at(300, failed_at)), ended=stamp(at(healed_after_s, failed_at))),
    ]
    return incident(job, run_id, state="healed", failed_at=failed_at, ended_at=failed_at + timedelta(seconds=healed_after_s),
                    attempts=[first, second], llm_calls=calls, stages=stages,
                    reason="sales-daily-fix-2 run 105 succeeded")

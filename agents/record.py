"""The incident record: a complete, append-only account of one healing run.

One JSON file per incident under ``<data dir>/incidents/``, rewritten after every stage so that a
crash loses nothing. The dashboard and the benchmarks read these files; nothing else is their
source of truth for what happened. Secrets are redacted before a record is written. Listing
incidents and asking whether one exists go through the index beside them (`agents/record_index.py`:
one SQLite row per record, written with it, rebuilt from the files when in doubt).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

from agents.edits import Edit
from agents.files import private_dir
from agents.record_index import IncidentSummary, IndexEntry, RecordIndex
from agents.redact import redact
from agents.sandbox.report import SandboxReport
from agents.times import utc_now

IncidentState = Literal[
    "open",  # failed run seen, nothing done yet
    "fetching",  # log-fetch
    "diagnosing",
    "patching",
    "preflighting",  # the fix runs in a sandbox: outputs redirected, nothing of production touched
    "comparing",  # its outputs against the last good ones (and the user's check on them)
    "awaiting_approval",  # HEAL_MODE=approve: paused before redeploy (HEAL_PROMOTION=approve: before promotion)
    "promoting",  # a fix proven in another environment goes to the incident's own (agents/promote.py)
    "redeploying",
    "verifying",
    "healed",  # fix run succeeded, its outputs compared as the last good ones, the user's check passed
    "escalated",  # our code decided a human must look (attempts used up, unfixable, model down)
    "rejected",  # a human rejected the proposed fix
    "error",  # the healer itself failed (bad input, CDE unreachable); the reason says why
    # an anomaly (kind "anomaly", agents/anomalies.py): a succeeded run the detector flagged waits for a
    # person's choice (flagged); dismissed or marked expected it ends (dismissed); "heal now" makes it
    # a failure incident that goes through the graph from log-fetch
    "flagged",
    "dismissed",
]
TERMINAL_STATES: frozenset[str] = frozenset({"healed", "escalated", "rejected", "error", "dismissed"})
IncidentKind = Literal["failure", "anomaly"]
AnomalyDecision = Literal["dismiss", "expected", "heal"]
ANOMALY_DECISIONS: tuple[str, ...] = get_args(AnomalyDecision)

Category = Literal["code", "config", "transient", "data", "unknown"]
PatchKind = Literal["code", "config", "rerun"]


def incident_id(job: str, run_id: int) -> str:
    """The incident key: the failed run's job and id. Also the LangGraph thread id."""
    return f"{job}--{run_id}"


class StageTiming(BaseModel):
    stage: str
    attempt: int = 0
    environment: str = ""  # with environments: where the stage acted ("dev", "dev → prd"); "": no CDE, or one
    started: str
    ended: str | None = None
    duration_s: float | None = None
    note: str = ""


class LlmCall(BaseModel):
    stage: str
    attempt: int = 0
    mode: str = ""  # json_schema | function_calling | json_in_text
    prompt: list[dict[str, str]] = Field(default_factory=list)  # [{"role", "content"}]
    answer: str = ""
    error: str = ""
    prompt_tokens: int | None = None  # from the endpoint's usage
    completion_tokens: int | None = None
    estimated_prompt_tokens: int = 0  # offline estimate used for budgeting
    latency_s: float = 0.0


class Evidence(BaseModel):
    """What log-fetch gathered and diagnose distilled."""

    error_class: str | None = None
    message_parameters: dict[str, Any] = Field(default_factory=dict)
    suggestions: list[str] = Field(default_factory=list)
    user_frame: str | None = None  # last traceback frame in user code: 'File "...", line N, in f'
    user_line: int | None = None
    user_lines: list[int] = Field(default_factory=list)  # the application file's frames, failing one last
    site: str | None = None  # Spark's query context: '"__truediv__" was called from app.py:21'
    caused_by: str | None = None
    exception: str | None = None  # last "SomeError: message" line
    key_lines: list[str] = Field(default_factory=list)  # error lines found in the logs, for rules
    distilled: str = ""  # the text given to the model
    distilled_tokens: int = 0
    raw_log_bytes: int = 0
    log_types: list[str] = Field(default_factory=list)


class Diagnosis(BaseModel):
    category: Category
    root_cause: str
    evidence: list[str] = Field(default_factory=list)
    confidence: float = Field(ge=0.0, le=1.0)
    source: Literal["rule", "model"] = "model"
    rule: str | None = None
    # Spark's error condition the evidence names, and its category by Spark's SQLSTATE class and our
    # overrides (agents/remedies/conditions.py): set by our code for every diagnosis, rule's or model's
    condition: str | None = None
    condition_category: Category | None = None


class GuardVerdict(BaseModel):
    ok: bool
    rule: str  # e.g. "parses", "allowed-python", "not-a-no-op" (agents/guard)
    reason: str = ""


class Patch(BaseModel):
    kind: PatchKind
    explanation: str = ""
    code: str | None = None  # full new application file, for kind == "code"
    edits: list[Edit] = Field(default_factory=list)  # the model's edits that made `code` (none: a whole file)
    spark_changes: dict[str, Any] = Field(default_factory=dict)  # e.g. {"driverMemory": "2g"}
    conf_changes: dict[str, str] = Field(default_factory=dict)  # spark.conf keys
    source: Literal["rule", "model", "policy"] = "model"  # policy: a re-run or more memory it chose
    # a rule's fix: "safe" (a correct job's output unchanged) or "changes-results"; None for a model's
    applicability: Literal["safe", "changes-results"] | None = None


class ComparisonRow(BaseModel):
    """One line of a data comparison: an output's metric, last good against observed, and its verdict."""

    output: str  # the production name (table or path)
    metric: str  # written | rows | schema | nulls | constant | distinct | check
    column: str = ""
    last_good: str = ""
    observed: str = ""
    ok: bool
    note: str = ""  # why it failed, in words the next prompt and the escalation reuse


class Preflight(BaseModel):
    """The fix's run in a sandbox before it may touch production (agents/preflight.py)."""

    job: str
    environment: str = ""  # where it ran: "" the incident's own; else where its fixes are proven
    database: str = ""
    sample: str = "none"
    run_id: int | None = None
    status: str | None = None
    duration_s: float | None = None  # the run's time, start to end, as CDE reports it
    report: SandboxReport | None = None  # what the launcher wrote and measured
    check_job: str | None = None  # the user's check, run against the sandboxed outputs
    check_run_id: int | None = None
    check_passed: bool | None = None
    check_duration_s: float | None = None  # the check run's time, start to end


class Candidate(BaseModel):
    """One of the code fixes the model proposed in an attempt; they are tried in the sandbox in turn
    and the first whose pre-flight and data comparison pass is deployed."""

    number: int  # 1: the model's first proposal
    patch: Patch
    diff: str = ""
    accepted: bool = False  # the edits applied and the guard passed it
    preflight: Preflight | None = None
    comparison: list[ComparisonRow] = Field(default_factory=list)
    comparison_passed: bool | None = None
    verdict: str = ""  # rejected: ... | pre-flight failed | data comparison failed: ... | passed | not tried: ...


class PolicyChoice(BaseModel):
    """Which recovery action the attempt took, by which policy, and why (`agents/policy/decision.py`)."""

    action: str  # an Action value: rerun | rerun-backoff | raise-resources | rule-fix | model-patch | escalate
    policy: str  # static | learned
    reason: str = ""
    q_values: dict[str, float] = Field(default_factory=dict)  # the learned policy's estimates, by action
    overridden: str = ""  # the safety rule that replaced the policy's own choice
    state: dict[str, Any] = Field(default_factory=dict)  # the PolicyState it was chosen in


class Deployment(BaseModel):
    """The fix job's run in the environment where fixes are proven, before promotion: the same facts as
    the attempt's own fields hold for its run in the incident's environment (agents/verify.py fills both)."""

    environment: str
    fix_job: str | None = None
    fix_run_id: int | None = None
    fix_run_status: str | None = None
    fix_run_duration_s: float | None = None
    check_job: str | None = None
    check_run_id: int | None = None
    check_passed: bool | None = None
    check_run_duration_s: float | None = None
    production_stats_run_id: int | None = None
    production_stats_duration_s: float | None = None
    production_comparison: list[ComparisonRow] = Field(default_factory=list)


class Promotion(BaseModel):
    """A fix proven in one environment, promoted to the incident's own (agents/promote.py)."""

    source: str  # where it was proven (pre-flight, run, comparisons)
    target: str  # the incident's environment, where the promoted fix job runs
    mode: Literal["auto", "approve"]  # HEAL_PROMOTION when it was decided
    decided_by: str = ""  # "auto" or the approver
    decided_at: str | None = None
    # the target's outputs measured before the promoted run: the last good outputs there, which its run
    # is compared with (the source's data are not the target's)
    baseline_job: str | None = None
    baseline_run_id: int | None = None
    baseline_duration_s: float | None = None
    baseline: SandboxReport | None = None


class Attempt(BaseModel):
    number: int
    policy: PolicyChoice | None = None  # the action chosen for this attempt (set in patch)
    evidence: Evidence | None = None  # the failure this attempt answers (after attempt 1: the last fix run's)
    rule_finding: Diagnosis | None = None  # what the rules found in diagnose; patch applies its fix from it
    diagnosis: Diagnosis | None = None
    patch: Patch | None = None
    guard: list[GuardVerdict] = Field(default_factory=list)  # every verdict, rejected tries too
    fixed_code: str | None = None
    diff: str = ""
    fix_resource: str | None = None
    fix_job: str | None = None
    fix_run_id: int | None = None
    fix_run_status: str | None = None
    fix_run_duration_s: float | None = None  # the fix run's time, start to end, as CDE reports it (verify)
    candidates: list[Candidate] = Field(default_factory=list)  # the model's code fixes; patch..comparison: the current
    candidate: int = 1  # the candidate whose patch, pre-flight and comparison the fields here hold
    preflight: Preflight | None = None
    comparison: list[ComparisonRow] = Field(default_factory=list)  # the pre-flight's outputs against the last good
    comparison_passed: bool | None = None
    # why the data could not prove the fix although nothing failed (no output had a last good one to be
    # compared with): such a fix waits for a person's approval, whatever the mode
    unproven: str = ""
    check_job: str | None = None
    check_run_id: int | None = None
    check_passed: bool | None = None
    check_run_duration_s: float | None = None
    production_stats_run_id: int | None = None  # the launcher measuring the real outputs after the fix run
    production_stats_duration_s: float | None = None
    production_comparison: list[ComparisonRow] = Field(default_factory=list)
    verdict: str = ""  # healed | failed-again | check-failed | ...
    fix_log_excerpt: str = ""
    # with environments: the fix's run where fixes are proven (the fields above are then the promoted
    # run's, in the incident's environment), and the promotion between the two
    proof: Deployment | None = None
    promotion: Promotion | None = None


class AnomalyEvidence(BaseModel):
    """Why a succeeded run was flagged: the detector's judgement against the job's good runs."""

    judgement: dict[str, Any]  # agents.anomaly.Judgement.to_dict(): method, score, findings, summary
    features: dict[str, float] = Field(default_factory=dict)  # the run's (agents.anomaly.derive)
    # the job's runs for the plot, oldest first: {"run_id", "ended", "features": {name: value}, "flagged"}
    series: list[dict[str, Any]] = Field(default_factory=list)
    decision: AnomalyDecision | None = None  # a person's: dismiss | expected | heal
    decided_at: str | None = None


class FailedRun(BaseModel):
    id: int
    job: str
    status: str
    started: str | None = None
    ended: str | None = None
    user: str | None = None


class OriginalJob(BaseModel):
    name: str
    resource: str | None = None
    file_path: str | None = None  # path of the application file inside its resource
    code: str | None = None
    definition: dict[str, Any] = Field(default_factory=dict)
    effective_spec: dict[str, Any] = Field(default_factory=dict)


class IncidentRecord(BaseModel):
    incident_id: str
    job: str
    run_id: int
    kind: IncidentKind = "failure"  # anomaly: the run succeeded but the detector flagged what it did
    state: IncidentState = "open"
    reason: str = ""  # why it ended as it did (escalation, rejection, error)
    mode: Literal["auto", "approve"] = "auto"
    model: str | None = None  # None: rules only
    environment: str = "default"  # the CDE environment the job failed in (agents/environments.py)
    proven_in: str | None = None  # where its fixes are proven before promotion; None: in its own
    staged: list[str] = Field(default_factory=list)  # what was copied there for that ("job j copied from prd to dev")
    opened_at: str = Field(default_factory=utc_now)
    updated_at: str = Field(default_factory=utc_now)
    failed_run: FailedRun  # the run the incident is about (an anomaly's succeeded)
    anomaly: AnomalyEvidence | None = None  # kind "anomaly" only
    original: OriginalJob | None = None
    driver_log: str = ""  # tail of the failed run's driver log, for display
    evidence: Evidence | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    llm_calls: list[LlmCall] = Field(default_factory=list)
    stages: list[StageTiming] = Field(default_factory=list)

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def latest_attempt(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def runs_started(self) -> list[int]:
        """The runs the healer started for this incident (fix, check, pre-flight, measurement runs):
        none of them is ever a new incident."""
        runs = [(a.fix_run_id, a.check_run_id, a.production_stats_run_id) for a in self.attempts]
        runs += [(a.promotion.baseline_run_id,) for a in self.attempts if a.promotion]
        # runs in the environment where fixes are proven are another CDE's: their ids are not this one's
        runs += [(a.preflight.run_id, a.preflight.check_run_id) for a in self.attempts
                 if a.preflight and not a.preflight.environment]
        runs += [(c.preflight.run_id, c.preflight.check_run_id) for a in self.attempts for c in a.candidates
                 if c.preflight and not c.preflight.environment]
        return [rid for group in runs for rid in group if rid is not None]


def summarize(record: IncidentRecord) -> IncidentSummary:
    """The record's row in the incident list (and in the index)."""
    latest = record.latest_attempt
    return IncidentSummary(
        incident_id=record.incident_id, job=record.job, run_id=record.run_id, state=record.state,
        reason=record.reason, mode=record.mode, model=record.model, opened_at=record.opened_at,
        updated_at=record.updated_at, tries=len(record.attempts), verdict=latest.verdict if latest else "")


def index_entry(record: IncidentRecord) -> IndexEntry:
    return IndexEntry(summarize(record), tuple(record.runs_started))


# --- redaction ------------------------------------------------------------------------------


def _redact_value(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, list):
        return [_redact_value(v, secrets) for v in value]
    if isinstance(value, dict):
        return {k: _redact_value(v, secrets) for k, v in value.items()}
    return value


# --- storage --------------------------------------------------------------------------------


class RecordStore:
    """Reads and writes incident records under ``<data_dir>/incidents``, and their index.

    Writes are atomic (temp file + rename) so a reader never sees half a record; the index row is
    written right after the file, in the same `save`. Reading a record reads its file; listing,
    `exists` and the healer's own runs are index queries (the index opens on first use).
    """

    def __init__(self, data_dir: str | Path, secrets: Iterable[str] = ()) -> None:
        self.dir = private_dir(Path(data_dir) / "incidents")  # records are 0600 (mkstemp's mode)
        self._secrets = tuple(s for s in secrets if s)
        self.index = RecordIndex(self.dir, _read_entry)

    def path(self, incident: str) -> Path:
        return self.dir / f"{incident}.json"

    def save(self, record: IncidentRecord) -> None:
        record.updated_at = utc_now()
        data = _redact_value(record.model_dump(mode="json"), self._secrets)
        dir_before = self.index.dir_mtime_ns()
        path = self.path(record.incident_id)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
        os.replace(tmp, path)
        entry = index_entry(record)
        summary = replace(entry.summary, reason=redact(entry.summary.reason, self._secrets),
                          verdict=redact(entry.summary.verdict, self._secrets))  # the row says what the file says
        self.index.put(replace(entry, summary=summary), path.stat(), dir_before)

    def load(self, incident: str) -> IncidentRecord | None:
        path = self.path(incident)
        if not path.exists():
            return None
        return IncidentRecord.model_validate_json(path.read_text(encoding="utf-8"))

    def exists(self, incident: str) -> bool:
        return bool(self.index.existing([incident]))

    def known(self, incidents: Iterable[str]) -> set[str]:
        """Those of `incidents` that have a record (one index query)."""
        return self.index.existing(incidents)

    def open_incidents(self) -> list[str]:
        """Ids of the incidents not yet ended, newest first."""
        return self.index.not_in_states(TERMINAL_STATES)

    def started_by_healer(self, run_ids: Iterable[int]) -> set[int]:
        """Those of `run_ids` that the healer started for an incident."""
        return self.index.owned(run_ids)

    def summaries(self, since_seq: int = 0) -> list[IncidentSummary]:
        """Every incident's row (or those written after `since_seq`), newest first, from the index."""
        return self.index.summaries(since_seq)

    def all(self) -> list[IncidentRecord]:
        """Every record, read from its file, newest first (tools and tests; the watcher and the
        dashboard use the index)."""
        records = []
        for path in self.dir.glob("*.json"):
            if path.name.startswith("."):
                continue  # a write in flight
            try:
                records.append(IncidentRecord.model_validate_json(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue  # a record being replaced right now; the next poll sees it
        return sorted(records, key=lambda r: r.opened_at, reverse=True)


def _read_entry(path: Path) -> IndexEntry:
    """A record file's index entry (for the index's syncs); OSError or ValueError when unreadable."""
    record = IncidentRecord.model_validate_json(path.read_text(encoding="utf-8"))
    if record.incident_id != path.stem:
        raise ValueError(f"the record in {path.name} is incident {record.incident_id!r}")
    return index_entry(record)

"""What the dashboard shows, computed from incident records: pure functions, no Gradio, no I/O.

Every function takes records (or the healer's status) and returns text, Markdown or HTML that a
component displays as is; the incident list takes the records' summaries (the index's rows) or the
records themselves. All text from records and logs is HTML-escaped and passed through
`redact` once more, so a secret that slipped past the writer still never reaches the page.
"""

from __future__ import annotations

import functools
import html
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from agents.diffs import unified_diff
from agents.history import DayMetrics
from agents.record import TERMINAL_STATES, Attempt, Deployment, IncidentRecord, incident_id, summarize
from agents.record_index import IncidentSummary
from agents.redact import redact
from app import plots
from app.service import FailedRunRow, StatusStrip

INCIDENT_HEADERS = ["State", "Job", "Failed run", "Opened (UTC)", "Tries", "Verdict"]
MAX_EXCERPT_LINES = 60  # evidence lines plus context shown without opening the full log
EXCERPT_CONTEXT = 2  # lines of context around each evidence line
TAIL_LINES = 25  # shown when no log line matches the evidence
MIN_NEEDLE_CHARS = 6  # shorter evidence strings would mark half the log
ROWS_CACHED = 16_384  # incident table rows kept formatted
TABLES_CACHED = 8  # incident tables kept (one per incident shown on the open pages)

NO_INCIDENT = "No incident selected. The watcher opens one when a run of a watched job fails."

_STATE_LABELS = {
    "open": "open",
    "fetching": "fetching logs",
    "diagnosing": "diagnosing",
    "patching": "patching",
    "preflighting": "pre-flight in a sandbox",
    "comparing": "comparing outputs",
    "awaiting_approval": "awaiting approval",
    "redeploying": "redeploying",
    "verifying": "verifying",
    "promoting": "promoting",
    "healed": "healed",
    "escalated": "escalated",
    "rejected": "rejected",
    "error": "error",
    "flagged": "anomaly: your call",
    "dismissed": "dismissed",
}
_STATE_TONES = {
    "healed": "good",
    "escalated": "bad",
    "error": "bad",
    "rejected": "muted",
    "awaiting_approval": "wait",
    "flagged": "wait",
    "dismissed": "muted",
}


# Shown under a rule's fix whose applicability is "changes-results" (agents/remedies/registry.py).
CHANGES_RESULTS_NOTE = ("⚠ **Changes results**: this fix makes the job produce different data than the original "
                        "intended (e.g. malformed values become NULL). Review it before trusting the output.")


# --- small helpers --------------------------------------------------------------------------


def _esc(text: object) -> str:
    return html.escape(redact(str(text)), quote=True)


def parse_time(value: str | None) -> datetime | None:
    """Parses the records' UTC ISO timestamps ('2025-01-02T03:04:05.123456Z'); None when absent."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def short_time(value: str | None, zone: bool = True) -> str:
    parsed = parse_time(value)
    if parsed is None:
        return "—"
    return parsed.strftime("%Y-%m-%d %H:%M:%S" + (" UTC" if zone else ""))


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def state_label(state: str) -> str:
    return _STATE_LABELS.get(state, state)


def state_badge(state: str) -> str:
    tone = _STATE_TONES.get(state, "busy")
    return f'<span class="hd-badge hd-{tone}">{_esc(state_label(state))}</span>'


_CODE_SPAN = re.compile(r"(`[^`\n]+`)")


def md_escape(text: str) -> str:
    """Escapes Markdown syntax so free text (model answers, log lines) renders literally; balanced
    `code spans` stay code spans, since models and rules quote identifiers that way."""
    pieces = _CODE_SPAN.split(redact(text))
    return "".join(
        piece if i % 2 else re.sub(r"([\\`*_\[\]<>|#])", r"\\\1", piece) for i, piece in enumerate(pieces)
    )


def md_code_block(text: str, language: str = "") -> str:
    """A fenced block whose fence is longer than any backtick run inside the text."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{redact(text).rstrip()}\n{fence}"


# --- incident list --------------------------------------------------------------------------


Listed = IncidentSummary | IncidentRecord  # a row of the incident list: the index's summary, or a record


def _summary(item: Listed) -> IncidentSummary:
    return item if isinstance(item, IncidentSummary) else summarize(item)


def incident_verdict(item: Listed) -> str:
    incident = _summary(item)
    if incident.state == "healed":
        return "healed"
    if incident.state in TERMINAL_STATES:
        return incident.state + (f": {incident.reason}" if incident.reason else "")
    return incident.verdict or "—"


def incident_rows(items: list[Listed]) -> list[list[str]]:
    """Rows of the incident table, in the order given (the store returns newest first)."""
    return [list(_row(_summary(item))) for item in items]


@functools.lru_cache(maxsize=ROWS_CACHED)
def _row(r: IncidentSummary) -> tuple[str, ...]:
    """One row; a summary is immutable, so each is formatted once, not on every poll."""
    return (
        state_label(r.state),
        r.job,
        str(r.run_id),
        short_time(r.opened_at, zone=False),
        str(r.tries),
        redact(incident_verdict(r)),
    )


_ROW_TONES = {
    "good": "color: #15803d; font-weight: 600",
    "bad": "color: #c2410c; font-weight: 600",
    "wait": "color: #a16207; font-weight: 600",
    "busy": "color: #2563eb; font-weight: 600",
    "muted": "color: #64748b; font-weight: 600",
}
_SHOWN_ROW = "background: rgba(37, 99, 235, 0.12)"


_TABLES: list[tuple[list[Listed], str | None, dict[str, object]]] = []  # the last tables made, newest first
_TABLES_LOCK = threading.Lock()


def incident_table(records: list[Listed], shown: str | None) -> dict[str, object]:
    """The incident table's value: rows, headers and cell styling (state colours, the shown row).

    The same list (the very object: the service makes a new one when an incident changes, and a list
    given here is never changed afterwards) and shown incident give the same table object back, so
    polls of an unchanged list neither format nor fingerprint it again. Nobody may change the value."""
    with _TABLES_LOCK:
        for made_from, made_for, table in _TABLES:
            if made_from is records and made_for == shown:
                return table
    rows = incident_rows(records)
    styling = []
    for record in records:
        base = _SHOWN_ROW if record.incident_id == shown else ""
        state = _ROW_TONES[_STATE_TONES.get(record.state, "busy")]
        styling.append([f"{base}; {state}" if base else state] + [base] * (len(INCIDENT_HEADERS) - 1))
    table = {"headers": INCIDENT_HEADERS, "data": rows, "metadata": {"styling": styling} if rows else None}
    with _TABLES_LOCK:
        _TABLES.insert(0, (records, shown, table))
        del _TABLES[TABLES_CACHED:]
    return table


def incident_from_row(row: list[object]) -> str | None:
    """The incident id of a table row (job and failed run columns), None for a malformed row."""
    if len(row) < 3:
        return None
    job, run = str(row[1]), str(row[2])
    return incident_id(job, int(run)) if job and run.isdigit() else None


def incident_heading(record: IncidentRecord | None, wanted: str | None = None) -> str:
    """The line above the cards; `wanted` names an incident picked but not (yet) on disk."""
    if record is None:
        text = f"Incident {wanted}: no record yet." if wanted else NO_INCIDENT
        return f'<div class="hd-heading hd-empty">{_esc(text)}</div>'
    reason = f'<span class="hd-reason">{_esc(record.reason)}</span>' if record.reason else ""
    mode = "approve mode" if record.mode == "approve" else "auto mode"
    model = record.model or "rules only"
    where = (f"{record.environment}, fixes proven in {record.proven_in} · " if record.proven_in else "")
    return (
        f'<div class="hd-heading"><span class="hd-title">Incident {_esc(record.incident_id)}</span>'
        f"{state_badge(record.state)}{reason}"
        f'<span class="hd-meta">{_esc(where)}{_esc(mode)} · model: {_esc(model)} · updated '
        f"{_esc(short_time(record.updated_at))}</span></div>"
    )


# --- header cards ---------------------------------------------------------------------------


@dataclass(frozen=True)
class JobCard:
    """One of the two cards at the top: the original failed job, or the fix job."""

    title: str
    name: str
    resource: str
    run_label: str
    run_id: str
    status: str
    last_label: str
    last: str
    tone: str  # good | bad | wait | busy | muted


def _run_tone(status: str | None) -> str:
    status = (status or "").lower()
    if status == "succeeded":
        return "good"
    if status in ("failed", "killed"):
        return "bad"
    return "busy" if status else "muted"


def original_card(record: IncidentRecord) -> JobCard:
    original = record.original
    run = record.failed_run
    flagged = record.anomaly is not None  # a succeeded run the detector flagged
    return JobCard(
        title="Original job",
        name=record.job,
        resource=(original.resource if original and original.resource else "—"),
        run_label="Flagged run" if flagged else "Failed run",
        run_id=str(run.id),
        status=run.status,
        last_label="Ended at" if flagged else "Failed at",
        last=short_time(run.ended or run.started),
        tone=_run_tone(run.status),
    )


def fixed_card(record: IncidentRecord) -> JobCard:
    attempt = record.latest_attempt
    proof = attempt.proof if attempt is not None else None
    if attempt is not None and proof is not None and proof.fix_run_id is not None and attempt.fix_run_id is None:
        return _proof_card(record, attempt)
    if attempt is None or not attempt.fix_job or (attempt.fix_run_id is None and record.state != "redeploying"):
        pending = {
            "preflighting": "pre-flight in a sandbox",
            "comparing": "comparing outputs",
            "awaiting_approval": "awaiting approval",
            "promoting": "promoting",
            "escalated": "no fix deployed",
            "rejected": "fix rejected",
            "error": "no fix deployed",
        }.get(record.state, "not deployed yet")
        return JobCard(
            title="Fixed job",
            name=pending,
            resource="—",
            run_label="New run",
            run_id="—",
            status=state_label(record.state),
            last_label="Verdict",
            last=redact(incident_verdict(record)),
            tone=_STATE_TONES.get(record.state, "busy"),
        )
    status = attempt.fix_run_status or ("starting" if record.state == "redeploying" else "—")
    verdict = attempt.verdict or state_label(record.state)
    if attempt.check_passed is not None:
        verdict += " · check " + ("passed" if attempt.check_passed else "failed")
    tone = "good" if record.state == "healed" else _STATE_TONES.get(record.state) or _run_tone(status)
    where = f" in {record.environment}" if record.proven_in else ""
    return JobCard(
        title=f"Fixed job{where} (attempt {attempt.number})",
        name=attempt.fix_job,
        resource=attempt.fix_resource or "—",
        run_label="New run",
        run_id=str(attempt.fix_run_id) if attempt.fix_run_id is not None else "—",
        status=status,
        last_label="Verdict",
        last=verdict,
        tone=tone,
    )


def _proof_card(record: IncidentRecord, attempt: Attempt) -> JobCard:
    """The fix job's run where fixes are proven, until the promoted run starts in the incident's own."""
    proof = attempt.proof
    assert proof is not None
    status = proof.fix_run_status or "starting"
    verdict = attempt.verdict or state_label(record.state)
    if proof.check_passed is not None:
        verdict += " · check " + ("passed" if proof.check_passed else "failed")
    return JobCard(
        title=f"Fixed job in {proof.environment} (attempt {attempt.number})",
        name=proof.fix_job or attempt.fix_job or "—",
        resource=attempt.fix_resource or "—",
        run_label="New run",
        run_id=str(proof.fix_run_id),
        status=status,
        last_label="Verdict",
        last=verdict,
        tone=_STATE_TONES.get(record.state) or _run_tone(status),
    )


NO_COMPARISON = "No data comparison yet: the outputs of a fix are compared after its pre-flight in a sandbox."


def comparison_html(record: IncidentRecord | None) -> str:
    """The latest compared attempt's data comparison: output, metric, last good, observed, verdict;
    the pre-flight's rows, then the production run's."""
    attempt = next((a for a in reversed(record.attempts) if a.comparison or len(a.candidates) > 1),
                   None) if record else None
    if attempt is None:
        return f'<div class="hd-comparison hd-empty">{_esc(NO_COMPARISON)}</div>'
    preflight = attempt.preflight
    caption = (f"Attempt {attempt.number}: pre-flight {preflight.job} run {preflight.run_id} "
               f"({preflight.status or '—'}, {format_seconds(preflight.duration_s)}"
               f"{', inputs sampled ' + preflight.sample if preflight.sample != 'none' else ''}) into "
               f"{preflight.database}" if preflight else f"Attempt {attempt.number}")
    body = []
    proof_rows = attempt.proof.production_comparison if attempt.proof else []
    proven_in = attempt.proof.environment if attempt.proof else (preflight.environment if preflight else "")
    runs = ((f"pre-flight ({proven_in})" if proven_in else "pre-flight", attempt.comparison),
            (f"run in {proven_in}", proof_rows),
            (f"production ({record.environment})" if proven_in else "production", attempt.production_comparison))
    for label, rows in runs:
        for row in rows:
            verdict = "✓" if row.ok else "✗"
            body.append(
                f'<tr class="{"hd-ok" if row.ok else "hd-bad"}" title="{_esc(row.note)}"><td>{_esc(label)}</td>'
                f"<td>{_esc(row.output)}</td><td>{_esc(row.metric + (' ' + row.column if row.column else ''))}</td>"
                f"<td>{_esc(row.last_good)}</td><td>{_esc(row.observed)}</td><td>{verdict}</td></tr>")
    failed = [r.note for r in attempt.comparison + proof_rows + attempt.production_comparison if not r.ok and r.note]
    notes = "".join(f"<li>{_esc(n)}</li>" for n in failed)
    return (f'<div class="hd-comparison">{candidates_html(attempt)}'
            f'<div class="hd-comparison-caption">{_esc(caption)}</div>'
            "<table><thead><tr><th>Run</th><th>Output</th><th>Metric</th><th>Last good</th><th>Observed</th>"
            f"<th>Verdict</th></tr></thead><tbody>{''.join(body)}</tbody></table>"
            + (f'<ul class="hd-comparison-notes">{notes}</ul>' if notes else "") + "</div>")


def candidates_html(attempt: Attempt) -> str:
    """The model's candidate fixes of an attempt, when it proposed several: each one's change, its
    pre-flight and its verdict, in the order they were tried."""
    if len(attempt.candidates) < 2:
        return ""
    rows = []
    for candidate in attempt.candidates:
        preflight = candidate.preflight
        run = f"{preflight.job} run {preflight.run_id}" if preflight and preflight.run_id is not None else "—"
        tone = "hd-ok" if candidate.verdict == "passed" else ("hd-bad" if candidate.verdict else "")
        rows.append(f'<tr class="{tone}"><td>{candidate.number}</td><td>{_esc(candidate.patch.explanation)}</td>'
                    f"<td>{_esc(run)}</td><td>{_esc(candidate.verdict or 'waiting')}</td></tr>")
    return (f'<div class="hd-comparison-caption">Attempt {attempt.number}: {len(attempt.candidates)} candidate '
            "fixes, tried in the sandbox in turn</div><table class=\"hd-candidates\"><thead><tr><th>#</th>"
            f"<th>Change</th><th>Pre-flight</th><th>Verdict</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def card_html(card: JobCard | None, title: str = "") -> str:
    if card is None:
        return f'<div class="hd-card hd-muted"><div class="hd-card-title">{_esc(title)}</div>—</div>'
    rows = [
        ("Job", card.name),
        ("Resource", card.resource),
        (card.run_label, card.run_id),
        ("Status", card.status),
        (card.last_label, card.last),
    ]
    cells = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in rows)
    return (
        f'<div class="hd-card hd-tone-{_esc(card.tone)}"><div class="hd-card-title">{_esc(card.title)}</div>'
        f"<dl>{cells}</dl></div>"
    )


# --- code and diff --------------------------------------------------------------------------


def original_code(record: IncidentRecord | None) -> str:
    if record is None or record.original is None or record.original.code is None:
        return ""
    return record.original.code


def fixed_code(record: IncidentRecord | None) -> str:
    """The latest proposed or deployed application file; the original one for config/rerun fixes."""
    if record is None:
        return ""
    for attempt in reversed(record.attempts):
        if attempt.fixed_code is not None:
            return attempt.fixed_code
        if attempt.patch and attempt.patch.kind == "code" and attempt.patch.code is not None:
            return attempt.patch.code
        if attempt.patch and attempt.patch.kind in ("config", "rerun"):
            return original_code(record)
    return ""


def diff_text(record: IncidentRecord | None) -> str:
    """The unified diff of the latest fix; for configuration fixes, the changed settings."""
    if record is None or not record.attempts:
        return ""
    attempt = record.attempts[-1]
    if attempt.diff:
        return attempt.diff
    patch = attempt.patch
    if patch and patch.kind in ("config", "rerun"):
        lines = [f"@@ job configuration ({patch.kind}) @@"]
        lines += [f"+ {key}: {value}" for key, value in patch.spark_changes.items()]
        lines += [f"+ conf {key}={value}" for key, value in patch.conf_changes.items()]
        if patch.kind == "rerun":
            lines.append("  (no change: the same job is run again)")
        return "\n".join(lines)
    new, old = fixed_code(record), original_code(record)
    if not new or new == old:
        return ""
    name = (record.original.file_path if record.original else None) or "job.py"
    return unified_diff(old, new, name)


def diff_html(diff: str) -> str:
    if not diff.strip():
        return '<div class="hd-diff hd-empty">No change proposed yet.</div>'
    out = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            cls = "hd-d-file"
        elif line.startswith("@@"):
            cls = "hd-d-hunk"
        elif line.startswith("+"):
            cls = "hd-d-add"
        elif line.startswith("-"):
            cls = "hd-d-del"
        else:
            cls = "hd-d-ctx"
        out.append(f'<span class="{cls}">{_esc(line) or " "}</span>')
    return f'<pre class="hd-diff">{"".join(out)}</pre>'


# --- driver log -----------------------------------------------------------------------------


def evidence_needles(record: IncidentRecord) -> list[str]:
    """Strings whose presence marks a log line as evidence: distilled findings and quoted lines."""
    found: list[str] = []
    ev = record.evidence
    if ev is not None:
        if ev.error_class:
            found.append(f"[{ev.error_class}")
        found += [s for s in (ev.exception, ev.caused_by, ev.user_frame) if s]
    for attempt in record.attempts:
        if attempt.diagnosis:
            for quoted in attempt.diagnosis.evidence:
                found += quoted.splitlines()
    needles: list[str] = []
    for needle in (n.strip() for n in found):
        if len(needle) >= MIN_NEEDLE_CHARS and needle not in needles:
            needles.append(needle)
    return needles


def is_evidence(line: str, needles: list[str]) -> bool:
    stripped = line.strip()
    if not stripped:
        return False
    return any(n in stripped or (len(stripped) >= 20 and stripped in n) for n in needles)


def marked_lines(log: str, needles: list[str]) -> list[tuple[int, str, bool]]:
    """(line number from 1, text, is evidence) for every line of the log."""
    return [(i + 1, line, is_evidence(line, needles)) for i, line in enumerate(log.splitlines())]


def _log_html(lines: list[tuple[int, str, bool] | None], css: str) -> str:
    out = []
    for item in lines:
        if item is None:
            out.append('<span class="hd-gap">⋯</span>')
            continue
        number, text, marked = item
        cls = "hd-ev" if marked else "hd-ln"
        mark = "▶" if marked else " "
        out.append(
            f'<span class="{cls}"><span class="hd-no">{number:>4} {mark}</span> {_esc(text) or " "}</span>'
        )
    return f'<pre class="{css}">{"".join(out)}</pre>'


def log_excerpt_html(record: IncidentRecord | None) -> str:
    """The evidence lines with a little context, marked; the log's tail when nothing matches."""
    if record is None or not record.driver_log.strip():
        return '<div class="hd-log hd-empty">No driver log fetched yet.</div>'
    lines = marked_lines(record.driver_log, evidence_needles(record))
    hits = [i for i, (_, _, marked) in enumerate(lines) if marked]
    if hits:
        keep = sorted({j for i in hits for j in range(i - EXCERPT_CONTEXT, i + EXCERPT_CONTEXT + 1)
                       if 0 <= j < len(lines)})[:MAX_EXCERPT_LINES]
        note = f"{len(hits)} evidence line{'s' if len(hits) != 1 else ''} of {len(lines)}"
    else:
        keep = list(range(max(0, len(lines) - TAIL_LINES), len(lines)))
        note = f"last {len(keep)} of {len(lines)} lines (no line matched the evidence)"
    shown: list[tuple[int, str, bool] | None] = []
    for position, index in enumerate(keep):
        if (position == 0 and index > 0) or (position > 0 and index != keep[position - 1] + 1):
            shown.append(None)
        shown.append(lines[index])
    if keep and keep[-1] < len(lines) - 1:
        shown.append(None)
    return f'<div class="hd-note">{_esc(note)}</div>' + _log_html(shown, "hd-log")


def full_log_html(record: IncidentRecord | None) -> str:
    if record is None or not record.driver_log.strip():
        return '<div class="hd-log hd-empty">No driver log fetched yet.</div>'
    return _log_html(list(marked_lines(record.driver_log, evidence_needles(record))), "hd-log hd-log-full")


# --- reasoning trace ------------------------------------------------------------------------


def _confidence(value: float) -> str:
    return f"{value:.0%}"


def _deployment_lines(run: Attempt | Deployment, fix_job: str | None, where: str) -> list[str]:
    """A fix job's run and its output check, in one environment."""
    lines = [f"- Fix job `{fix_job}`{where}" + (f" run {run.fix_run_id}" if run.fix_run_id is not None else "")
             + (f": {run.fix_run_status}" if run.fix_run_status else "")]
    if run.check_job:
        result = {True: "passed", False: "failed", None: "pending"}[run.check_passed]
        lines.append(f"- Output check `{run.check_job}`{where}: {result}")
    return lines


def reasoning_markdown(record: IncidentRecord | None) -> str:
    """Diagnosis, every attempt with its patch and guard verdicts, verification, outcome, model calls."""
    if record is None:
        return NO_INCIDENT
    parts: list[str] = []
    ev = record.evidence
    if ev is not None:
        parts.append("### Evidence")
        facts = []
        if ev.error_class:
            facts.append(f"- **Error class:** `{ev.error_class}`")
        if ev.exception:
            facts.append(f"- **Exception:** {md_escape(ev.exception)}")
        if ev.user_frame:
            facts.append(f"- **In user code:** {md_escape(ev.user_frame)}")
        if ev.caused_by:
            facts.append(f"- **Caused by:** {md_escape(ev.caused_by)}")
        if ev.suggestions:
            facts.append("- **Spark suggests:** " + ", ".join(f"`{s.strip('`')}`" for s in ev.suggestions))
        if ev.raw_log_bytes:
            facts.append(
                f"- Distilled {ev.raw_log_bytes:,} bytes of logs ({', '.join(ev.log_types) or 'driver'}) "
                f"to about {ev.distilled_tokens:,} tokens"
            )
        parts.append("\n".join(facts) or "_nothing distilled yet_")
    for attempt in record.attempts:
        parts.append(f"### Attempt {attempt.number}")
        diagnosis = attempt.diagnosis
        if diagnosis is not None:
            by = f"rule `{diagnosis.rule}`" if diagnosis.source == "rule" and diagnosis.rule else diagnosis.source
            spark = (f"; Spark condition `{md_escape(diagnosis.condition)}` ({diagnosis.condition_category})"
                     if diagnosis.condition else "")
            parts.append(
                f"**Diagnosis** ({by}): category **{diagnosis.category}**, confidence "
                f"**{_confidence(diagnosis.confidence)}**{spark}\n\n{md_escape(diagnosis.root_cause)}"
            )
            if diagnosis.evidence:
                parts.append("Evidence lines:\n\n" + md_code_block("\n".join(diagnosis.evidence), "text"))
        if attempt.policy is not None:
            parts.append(policy_markdown(attempt))
        patch = attempt.patch
        if patch is not None:
            text = f"**Patch** ({patch.kind}, by {patch.source}" + (f", {patch.applicability}" if patch.applicability else "") + ")"
            parts.append(text + (f": {md_escape(patch.explanation)}" if patch.explanation else ""))
            if patch.applicability == "changes-results":
                parts.append(CHANGES_RESULTS_NOTE)
            changes = {**patch.spark_changes, **{f"conf {k}": v for k, v in patch.conf_changes.items()}}
            if changes:
                parts.append("\n".join(f"- `{k}` → `{v}`" for k, v in changes.items()))
        if attempt.guard:
            lines = [
                (f"- ✓ `{g.rule}`" if g.ok else f"- ✗ **rejected by** `{g.rule}`") + (f": {md_escape(g.reason)}" if g.reason else "")
                for g in attempt.guard
            ]
            parts.append("**Guard**\n\n" + "\n".join(lines))
        verification = []
        if attempt.preflight is not None and attempt.preflight.environment:
            pre = attempt.preflight
            verification.append(f"- Pre-flight `{pre.job}` in **{pre.environment}** run {pre.run_id}: {pre.status or '—'}")
        if attempt.proof is not None:
            verification += _deployment_lines(attempt.proof, attempt.fix_job, f" in **{attempt.proof.environment}**")
        if attempt.promotion is not None:
            promo = attempt.promotion
            decided = f"by {promo.decided_by}" if promo.decided_by else f"waiting ({promo.mode})"
            measured = (f"; the outputs in {promo.target} measured before it: `{promo.baseline_job}` run "
                        f"{promo.baseline_run_id}" if promo.baseline_run_id is not None else "")
            verification.append(f"- Promotion **{promo.source} → {promo.target}** {decided}{measured}")
        if attempt.fix_job and (attempt.fix_run_id is not None or attempt.proof is None):
            where = f" in **{record.environment}**" if attempt.proof is not None else ""
            verification += _deployment_lines(attempt, attempt.fix_job, where)
        if attempt.verdict:
            verification.append(f"- Verdict: **{md_escape(attempt.verdict)}**")
        if verification:
            parts.append("**Verification**\n\n" + "\n".join(verification))
        if attempt.fix_log_excerpt:
            parts.append("Fix run log:\n\n" + md_code_block(attempt.fix_log_excerpt, "text"))
    parts.append("### Outcome")
    outcome = f"**State:** {state_label(record.state)}"
    if record.reason:
        outcome += f" — {md_escape(record.reason)}"
    if not record.is_terminal:
        outcome += " (in progress)"
    parts.append(outcome)
    parts.append(model_calls_markdown(record))
    return "\n\n".join(p for p in parts if p)


def policy_markdown(attempt: Attempt) -> str:
    """Which recovery action the attempt took, by which policy, and why (its Q-values, or the safety
    rule that overrode its choice)."""
    choice = attempt.policy
    if choice is None:
        return ""
    text = f"**Action** (by the {md_escape(choice.policy)} policy): `{md_escape(choice.action)}`"
    if choice.reason:
        text += f" — {md_escape(choice.reason)}"
    lines = [text]
    if choice.q_values:
        ranked = sorted(choice.q_values.items(), key=lambda item: -item[1])
        lines.append("Q-values: " + ", ".join(f"`{md_escape(a)}` {q:+.2f}" for a, q in ranked))
    if choice.overridden:
        lines.append(f"⚠ **Overridden by a safety rule:** {md_escape(choice.overridden)}")
    return "\n\n".join(lines)


def outcomes_html(page: Page, window: int) -> str:
    """The run history's recovery plots over the last `window` days (app/plots.py)."""
    days, totals = page.metrics.get(window, ([], None))
    return plots.outcomes_html(window, days, totals)


def model_calls_markdown(record: IncidentRecord) -> str:
    if not record.llm_calls:
        return "### Model calls\n\n" + ("None (rules only)." if record.model is None else "None yet.")
    rows = ["| stage | attempt | mode | prompt tokens | completion tokens | latency | result |",
            "|---|---|---|---|---|---|---|"]
    for call in record.llm_calls:
        prompt = call.prompt_tokens if call.prompt_tokens is not None else f"~{call.estimated_prompt_tokens}"
        completion = call.completion_tokens if call.completion_tokens is not None else "—"
        result = f"error: {md_escape(call.error)}" if call.error else "ok"
        rows.append(
            f"| {call.stage} | {call.attempt} | {call.mode or '—'} | {prompt} | {completion} | "
            f"{format_seconds(call.latency_s)} | {result.replace(chr(10), ' ')} |"
        )
    total_prompt = sum(c.prompt_tokens or 0 for c in record.llm_calls)
    total_completion = sum(c.completion_tokens or 0 for c in record.llm_calls)
    total_latency = sum(c.latency_s for c in record.llm_calls)
    summary = (
        f"{len(record.llm_calls)} call{'s' if len(record.llm_calls) != 1 else ''} to "
        f"`{record.model or 'model'}`: {total_prompt:,} prompt + {total_completion:,} completion tokens, "
        f"{format_seconds(total_latency)}"
    )
    return "### Model calls\n\n" + summary + "\n\n" + "\n".join(rows)


# --- stage timeline -------------------------------------------------------------------------


@dataclass(frozen=True)
class StageRow:
    stage: str
    attempt: int
    seconds: float | None  # duration, or elapsed so far while running
    running: bool
    note: str
    environment: str = ""  # where the stage acted, with environments


def stage_rows(record: IncidentRecord, now: datetime) -> list[StageRow]:
    """Each stage with its duration; a stage not ended shows the time elapsed until `now`
    (or no time at all when the incident ended without closing it)."""
    rows = []
    for timing in record.stages:
        started, ended = parse_time(timing.started), parse_time(timing.ended)
        running = False
        if timing.duration_s is not None:
            seconds: float | None = timing.duration_s
        elif started and ended:
            seconds = (ended - started).total_seconds()
        elif started and not record.is_terminal:
            seconds, running = max(0.0, (now - started).total_seconds()), True  # clocks may differ
        else:
            seconds = None
        rows.append(StageRow(timing.stage, timing.attempt, seconds, running, redact(timing.note), timing.environment))
    return rows


def timeline_html(record: IncidentRecord | None, now: datetime) -> str:
    if record is None or not record.stages:
        return '<div class="hd-timeline hd-empty">No stage has started yet.</div>'
    rows = stage_rows(record, now)
    longest = max((r.seconds or 0.0) for r in rows) or 1.0
    items = []
    for row in rows:
        width = max(2.0, 100.0 * (row.seconds or 0.0) / longest)
        label = f"{row.stage}" + (f" #{row.attempt}" if row.attempt else "") + (f" · {row.environment}"
                                                                               if row.environment else "")
        time = format_seconds(row.seconds) + (" so far" if row.running else "")
        cls = "hd-stage hd-running" if row.running else "hd-stage"
        items.append(
            f'<div class="{cls}" title="{_esc(row.note)}"><span class="hd-stage-name">{_esc(label)}</span>'
            f'<span class="hd-bar"><span style="width:{width:.0f}%"></span></span>'
            f'<span class="hd-stage-time">{_esc(time)}</span></div>'
        )
    first = parse_time(record.stages[0].started)
    ends = [parse_time(s.ended) for s in record.stages if s.ended]
    last = now if not record.is_terminal else max((e for e in ends if e), default=None)
    total = format_seconds(max(0.0, (last - first).total_seconds())) if first and last else "—"
    word = "elapsed" if not record.is_terminal else "total"
    return (
        f'<div class="hd-timeline">{"".join(items)}'
        f'<div class="hd-stage hd-total"><span class="hd-stage-name">{word}</span><span></span>'
        f'<span class="hd-stage-time">{_esc(total)}</span></div></div>'
    )


# --- status strip ---------------------------------------------------------------------------


def mask_url(url: str) -> str:
    """Drops user info and the query string from a URL: both can carry credentials."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    if parts.username or parts.password:
        host = f"***@{host}"
    return urlunsplit((parts.scheme, host, parts.path, "***" if parts.query else "", ""))


def status_html(strip: StatusStrip | None, secrets: tuple[str, ...] = (), error: str = "") -> str:
    """The strip at the top: CDE, model, mode, watched jobs and the watcher's health; `error` says
    why there is no strip."""
    if strip is None:
        note = f'<div class="hd-note">{_esc(redact(error, secrets))}</div>' if error else ""
        return '<div class="hd-status hd-bad">Healer status unavailable.</div>' + note
    watcher = strip.watcher
    if watcher.alive:
        health = f"watching · {watcher.cycles} cycles · last poll {short_time(watcher.last_poll)}"
        tone = "good"
    else:
        health, tone = "watcher stopped", "bad"
    if watcher.last_error:
        health += f" · last error: {watcher.last_error}"
        tone = "bad" if not watcher.alive else "wait"
    items = [
        ("CDE", mask_url(strip.cde_url)),
        *([("Environment", strip.environment)] if strip.environment else []),
        ("User", strip.user or "—"),
        ("Model", strip.model or "rules only"),
        ("Mode", strip.mode),
        ("Jobs", ", ".join(strip.watched_jobs) or "all jobs"),
    ]
    cells = "".join(
        f'<span class="hd-status-item"><b>{_esc(k)}</b> {_esc(redact(v, secrets))}</span>' for k, v in items
    )
    watcher_cell = (
        f'<span class="hd-status-item hd-watch hd-{tone}"><b>Watcher</b> {_esc(redact(health, secrets))}</span>'
    )
    return f'<div class="hd-status">{cells}{watcher_cell}</div>'


# --- heal now -------------------------------------------------------------------------------


def failed_run_choices(rows: list[FailedRunRow]) -> list[tuple[str, str]]:
    """(label, value) pairs for the "Heal now" picker; the value is the incident id."""
    choices = []
    for row in rows:
        done = " · already has an incident" if row.has_incident else ""
        label = f"{row.job} · run {row.run_id} · failed {short_time(row.ended)}{done}"
        choices.append((label, incident_id(row.job, row.run_id)))
    return choices


def parse_incident_id(value: str) -> tuple[str, int]:
    """The inverse of `incident_id`; raises ValueError with a clear message on anything else."""
    job, sep, run = (value or "").rpartition("--")
    if not sep or not job or not run.isdigit():
        raise ValueError(f"not an incident id (<job>--<run id>): {value!r}")
    return job, int(run)


# --- the whole page -------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """What one refresh of the page is computed from: every panel of the page is a function of it."""

    records: list[Listed]  # every incident, newest first (summaries from the index)
    record: IncidentRecord | None  # the incident shown
    now: datetime
    wanted: str | None = None  # the incident the user picked; None follows the newest
    record_file: Path | None = None  # the shown incident's record on disk
    status: StatusStrip | None = None
    status_error: str = ""  # why there is no status
    # the run history's metrics by window (days): the days oldest first, and the window's totals
    metrics: Mapping[int, tuple[list[DayMetrics], DayMetrics | None]] = field(default_factory=dict)

    @property
    def shown(self) -> str | None:
        return self.record.incident_id if self.record else self.wanted


def shown_incident(records: list[Listed], wanted: str | None) -> str | None:
    """The incident to show: the one picked (whether or not it has a record yet), else the newest."""
    if wanted:
        return wanted
    return records[0].incident_id if records else None


def record_download(page: Page) -> tuple[str, str] | None:
    """The record file to offer, with the record's update time: a rewritten record is a new download."""
    if page.record is None or page.record_file is None:
        return None
    return str(page.record_file), page.record.updated_at


def awaiting_approval(record: IncidentRecord | None) -> str:
    """The incident whose fix waits for approval on this page, or "" (the approval box is hidden)."""
    return record.incident_id if record is not None and record.state == "awaiting_approval" else ""


def approval_note_html(awaiting: str) -> str:
    """The approval box's note: it names the incident the buttons act on."""
    if not awaiting:
        return ""
    return (f'<div class="hd-approval-note">The fix for incident {html.escape(awaiting)} is waiting for '
            "your approval before it is deployed.</div>")


# --- anomalies (agents/anomalies.py) ----------------------------------------------------------


def flagged_anomaly(record: IncidentRecord | None) -> str:
    """The anomaly waiting for a person's choice on this page, or "" (its box is hidden)."""
    return record.incident_id if record is not None and record.state == "flagged" else ""


def anomaly_note_html(flagged: str) -> str:
    if not flagged:
        return ""
    run_id = parse_incident_id(flagged)[1]
    return (f'<div class="hd-anomaly-note">Run {run_id} succeeded but did what '
            "this job's good runs never did. Heal it now (a fix, proven on data like any other), dismiss it as a "
            "false alarm, or mark it as expected: the new normal. Dismissed and expected runs teach the "
            "detector.</div>")


def _number(value: object) -> str:
    if not isinstance(value, int | float):
        return "–"
    return f"{value:,.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:,.2f}"


def anomaly_html(record: IncidentRecord | None) -> str:
    """An anomaly's evidence: the detector's summary, its findings against the job's good runs, and a
    plot of those figures over the job's runs. Empty for a failure incident."""
    if record is None or record.anomaly is None:
        return ""
    evidence = record.anomaly
    judgement = evidence.judgement
    findings = [f for f in judgement.get("findings", []) if isinstance(f, dict)]
    rows = "".join(
        f"<tr><td>{_esc(f.get('label') or f.get('feature'))}</td><td class='hd-num'>{_number(f.get('value'))}</td>"
        f"<td class='hd-num'>{_number(f.get('low'))} – {_number(f.get('high'))}</td>"
        f"<td class='hd-num'>{_number(f.get('median'))}</td>"
        f"<td>{_esc(f.get('why', ''))}</td></tr>" for f in findings)
    method = {"guard": "a robust guard", "forest": "the job's Isolation Forest"}.get(
        str(judgement.get("method")), str(judgement.get("method", "")))
    decided = (f"<div class='hd-muted'>Decision: {_esc(evidence.decision)} at {_esc(short_time(evidence.decided_at))}"
               "</div>") if evidence.decision else ""
    table = ("<table class='hd-anomaly-findings'><thead><tr><th>Figure</th><th>This run</th><th>Normal range</th>"
             f"<th>Median</th><th>Why</th></tr></thead><tbody>{rows}</tbody></table>") if rows else ""
    plot = plots.anomaly_svg(evidence.series, findings)
    return (f"<div class='hd-anomaly' data-run='{record.run_id}'>"
            f"<div class='hd-anomaly-summary'>⚠ {_esc(judgement.get('summary', record.reason))}</div>"
            f"<div class='hd-muted'>Judged by {_esc(method)} against {_esc(judgement.get('history_runs', '?'))} good "
            f"runs of {_esc(record.job)}.</div>{decided}{table}"
            f"<div class='hd-anomaly-plot'>{plot}</div></div>")


# --- questions (agents/ops) -------------------------------------------------------------------


def answer_markdown(question: str, text: str, sql: list[str], source: str) -> str:
    """An answer to an operator's question, with the queries that computed its numbers."""
    how = {"model": "tool chosen by the model, numbers computed by SQL",
           "pattern": "matched without a model, numbers computed by SQL",
           "help": "not a question this assistant can answer"}.get(source, source)
    parts = [f"**Q:** {md_escape(question)}", md_escape(redact(text)), f"*{md_escape(how)}*"]
    if sql:
        parts.append("Query:\n" + md_code_block("\n\n".join(sql), "sql"))
    return "\n\n".join(parts)


def is_live(record: IncidentRecord | None) -> bool:
    return record is not None and record.state not in TERMINAL_STATES

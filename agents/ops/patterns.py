"""Questions answered without a model: a few regular expressions, each mapped to a query tool.

They cover the questions operators ask most (failures of a job in a window, top failing jobs, MTTR,
escalations and why, root causes of recent failures, anomalies, one incident, the latest runs); the
first pattern that matches wins. Anything else gets the help answer (what can be asked), never an
error. A job is found by its name in the question (the history's jobs, longest first), else as the
word after "of", "for" or "job" when it looks like a job name (it has a '-', '_', '.' or a digit),
so a misspelt job is reported as unknown rather than silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

EXAMPLES = (
    "How many runs of {job} failed in the last 24 hours?",
    "What was the root cause of last night's failures?",
    "Which jobs were escalated this week and why?",
    "What is the MTTR over the last 7 days?",
    "Top failing jobs this month",
    "Any anomalies this week?",
    "What happened to {job}'s latest incident?",
    "Show the last 10 runs of {job}",
)

_I = re.I
_INCIDENT_ID = re.compile(r"(?<![\w.-])([A-Za-z0-9][\w.-]*--\d+)\b")
_ANOMALY = re.compile(r"\banomal(?:y|ies|ous)\b", _I)
_ESCALATION = re.compile(r"\bescalat\w*", _I)
_MTTR = re.compile(r"\bmttr\b|\btime to (?:recover|repair|resolve|restore|heal)\w*|\brecovery time\b", _I)
_ROOT_CAUSE = re.compile(r"\broot[- ]?causes?\b|\bwhat caused\b|\bwhy did\b.*\bfail|\bcauses? of\b.*\bfail", _I)
_TOP = re.compile(r"\btop\b(?:\s+(\d+))?.*\bfail|\bmost\b.*\bfail|\bfail\w*\b.*\bmost\b|\bworst\b", _I)
_TOP_N = re.compile(r"\btop\s+(\d+)\b", _I)
_HOW_MANY = re.compile(r"\bhow many\b|\bcount\b|\bnumber of\b", _I)
_LIST = re.compile(r"\b(?:list|show)\b.*\bruns?\b|\b(?:last|latest|recent)\s+(?:\d+\s+)?runs\b|\brunning\b.*\bnow\b", _I)
_LAST_N_RUNS = re.compile(r"\b(?:last|latest|recent)\s+(\d+)\s+runs\b", _I)
_INCIDENT = re.compile(r"\bwhat happened\b|\bwent wrong\b|\b(?:latest|last)\s+incident\b", _I)
_STATUSES = (
    (re.compile(r"\bfail(?:ed|ures?|ing|s)?\b|\berrors?\b", _I), "failed"),
    (re.compile(r"\bsucce(?:ed|eded|ssful|ss)\b", _I), "succeeded"),
    (re.compile(r"\bkill(?:ed)?\b", _I), "killed"),
    (re.compile(r"\brunning\b", _I), "running"),
)
_CATEGORY = re.compile(r"\b(code|config|configuration|transient|data)\s+(?:failures?|errors?|problems?|issues?)\b", _I)
_WINDOWS = (
    (re.compile(r"\blast night\b|\bovernight\b|\btonight\b", _I), lambda m: "last-night"),
    (re.compile(r"\byesterday\b", _I), lambda m: "yesterday"),
    (re.compile(r"\btoday\b|\bthis morning\b", _I), lambda m: "today"),
    (re.compile(r"\b(?:last|past|previous)\s+(\d+)\s*(?:hours?|hrs?|h)\b", _I), lambda m: f"{m.group(1)}h"),
    (re.compile(r"\b(?:last|past|previous)\s+(\d+)\s*(?:days?|d)\b", _I), lambda m: f"{m.group(1)}d"),
    (re.compile(r"\b(?:last|past|previous)\s+(\d+)\s*weeks?\b", _I), lambda m: f"{int(m.group(1)) * 7}d"),
    (re.compile(r"\b(\d+)\s*h\b", _I), lambda m: f"{m.group(1)}h"),
    (re.compile(r"\b(?:last|past|previous)\s+hour\b", _I), lambda m: "1h"),
    (re.compile(r"\b(?:last|past|previous)\s+day\b", _I), lambda m: "24h"),
    (re.compile(r"\bfortnight\b", _I), lambda m: "14d"),
    (re.compile(r"\b(?:this|last|past|previous)\s+week\b|\bweekly\b", _I), lambda m: "7d"),
    (re.compile(r"\b(?:this|last|past|previous)\s+month\b|\bmonthly\b", _I), lambda m: "30d"),
)
_JOB_AFTER = re.compile(r"\b(of|for|job|did|does)\s+(?:the\s+)?(?:(job)\s+)?([A-Za-z0-9][\w.-]*)", _I)


@dataclass(frozen=True)
class Match:
    """A tool call the question maps to (`tool` None: the help answer)."""

    tool: str | None
    args: dict[str, Any] = field(default_factory=dict)
    pattern: str = ""  # which pattern matched, for tests and the record


def match(question: str, jobs: Sequence[str] = ()) -> Match:
    """The tool call `question` asks for, with the arguments it names (tools' defaults for the rest)."""
    job = named_job(question, jobs)
    with_job = {"job": job} if job else {}
    window = window_in(question)
    with_window = {"window": window} if window else {}
    if found := _INCIDENT_ID.search(question):
        return Match("incident", {"incident_id": found.group(1)}, "incident id")
    if _ANOMALY.search(question):
        return Match("anomalies", {**with_window, **with_job}, "anomalies")
    if _ESCALATION.search(question):
        return Match("escalations", {**with_window, **with_job}, "escalations")
    if _MTTR.search(question):
        return Match("mttr", {**with_window, **with_job}, "mttr")
    if _ROOT_CAUSE.search(question):
        return Match("failures_root_causes", {**with_window, **with_job}, "root causes")
    if _TOP.search(question) and not job:
        top = _TOP_N.search(question)
        return Match("top_failing_jobs", {**with_window, **({"limit": int(top.group(1))} if top else {})},
                     "top failing jobs")
    if _HOW_MANY.search(question):
        category = _CATEGORY.search(question)
        args: dict[str, Any] = {**with_window, **with_job}
        status = next((s for pattern, s in _STATUSES if pattern.search(question)), None)
        if category:
            args["category"] = "config" if category.group(1).lower().startswith("config") else category.group(1).lower()
            status = status or "failed"
        if status:
            args["status"] = status
        return Match("count_runs", args, "how many")
    if _LIST.search(question):
        last = _LAST_N_RUNS.search(question)
        args = {**with_window, **with_job, **({"limit": int(last.group(1))} if last else {})}
        if re.search(r"\brunning\b", question, _I):
            args["status"] = "running"
        return Match("list_runs", args, "list runs")
    if _INCIDENT.search(question):
        if job:
            return Match("incident", {"job": job}, "latest incident")
        return Match("failures_root_causes", with_window, "what went wrong")
    return Match(None)


def named_job(question: str, jobs: Sequence[str]) -> str | None:
    """The job the question names: a known one (longest first), else a word that looks like a job name."""
    for job in sorted(jobs, key=len, reverse=True):
        if re.search(rf"(?<![\w.-]){re.escape(job)}(?![\w-]|\.\w)", question, _I):
            return job
    for found in _JOB_AFTER.finditer(question):
        word = found.group(3).rstrip(".")
        if found.group(2) or found.group(1).lower() == "job" or re.search(r"[-_.\d]", word):
            if not re.fullmatch(r"\d+[hd]?|\d+", word):  # "of 24h", "for 7 days"
                return word
    return None


def window_in(question: str) -> str | None:
    """The window the question names (the first form of the docstring table it uses), or None."""
    for pattern, window in _WINDOWS:
        if found := pattern.search(question):
            return window(found)
    return None


def help_text(jobs: Sequence[str] = ()) -> str:
    """What can be asked, with a job of the history in the examples."""
    job = jobs[0] if jobs else "sales-daily"
    lines = ["I can answer questions about the run history, for example:"]
    lines += [f"- {example.format(job=job)}" for example in EXAMPLES]
    lines.append("Windows: the last N hours or days, today, yesterday, last night, this week (7 days), "
                 "this month (30 days).")
    return "\n".join(lines)

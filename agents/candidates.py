"""Candidates: the model's alternative code fixes of one attempt, tried in the sandbox in turn.

patch records every candidate the model proposed (`Attempt.candidates`, rejected ones with why) and
keeps the accepted ones' code in the checkpoint (`candidate_codes`: the record's copies are
redacted). The attempt's own fields (patch, diff, pre-flight, comparison) hold the candidate being
tried (`Attempt.candidate`). When its pre-flight or its data comparison fails and another accepted
candidate is left, pre-flight and compare move on to it within the same attempt, without a
production run and without asking the model again; when none is left, the attempt has failed.
The first candidate that passes is the one deployed; those after it are marked not tried (and
their pre-flights, when started side by side, are stopped).

Shared by preflight and compare (stages never import each other).
"""

from __future__ import annotations

from typing import Any

from langgraph.types import Command

from agents.record import Attempt, Candidate
from agents.state import HealState


def suffix(number: int) -> str:
    """What a candidate adds to the fix's resource and pre-flight names: nothing for the first,
    so a single fix keeps the plain `<job>-fix-<n>` names."""
    return "" if number <= 1 else f"-c{number}"


def current(attempt: Attempt) -> Candidate | None:
    return next((c for c in attempt.candidates if c.number == attempt.candidate), None)


def waiting(attempt: Attempt) -> list[Candidate]:
    """Accepted candidates after the current one, not yet judged, in order."""
    return [c for c in attempt.candidates if c.accepted and c.number > attempt.candidate and not c.verdict]


def keep_current(attempt: Attempt, verdict: str) -> None:
    """The current candidate's results, from the attempt's fields into its entry."""
    entry = current(attempt)
    if entry is None:
        return
    entry.preflight = attempt.preflight.model_copy(deep=True) if attempt.preflight else None
    entry.comparison = list(attempt.comparison)
    entry.comparison_passed = attempt.comparison_passed
    entry.verdict = verdict


def move_on(state: HealState, attempt: Attempt, verdict: str) -> Command | None:
    """After the current candidate failed (`verdict`): the next accepted one goes to pre-flight,
    or None when none is left."""
    keep_current(attempt, verdict)
    left = waiting(attempt)
    if not left:
        return None
    following = left[0]
    codes: dict[str, Any] = state.get("candidate_codes") or {}
    attempt.candidate = following.number
    attempt.patch = following.patch.model_copy(deep=True)
    attempt.diff = following.diff
    attempt.fixed_code = following.patch.code
    attempt.preflight = following.preflight.model_copy(deep=True) if following.preflight else None
    attempt.comparison, attempt.comparison_passed, attempt.unproven, attempt.verdict = [], None, "", ""
    return Command(goto="preflight", update={"fixed_code": codes.get(str(following.number))})


def passed(attempt: Attempt) -> list[int]:
    """The current candidate passed: it is kept as passed, those after it as not tried. Returns the
    pre-flight runs started for those (side by side) that the caller should stop."""
    keep_current(attempt, "passed")
    started: list[int] = []
    for entry in waiting(attempt):
        entry.verdict = f"not tried: candidate {attempt.candidate} passed first"
        if entry.preflight and entry.preflight.run_id is not None and entry.preflight.status is None:
            started.append(entry.preflight.run_id)
    return started


def summary(attempt: Attempt) -> str:
    """The candidates and their verdicts, for the next prompt and the escalation reason."""
    return "; ".join(f"candidate {c.number} ({c.patch.explanation[:120]}): {c.verdict or 'not tried'}"
                     for c in attempt.candidates)


def all_failed(attempt: Attempt) -> str:
    """For the next attempt's feedback: every candidate's verdict, when there were several."""
    if len(attempt.candidates) < 2:
        return ""
    return f" All {len(attempt.candidates)} candidates failed: {summary(attempt)}."

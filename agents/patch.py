"""patch: the smallest change that removes the cause, validated before it can be deployed.

Where a rule knows the remedy (Spark's message names it), its fixer writes the patch without a
model. Otherwise the model proposes one; the guard checks every proposal and its reasons are fed
back for another try, up to `max_patch_tries`. LLM output is untrusted until the guard passes it.
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.types import Command

from agents import prompts, untrusted
from agents.budget import context_note, shown_code
from agents.choice import choose, policy_state
from agents.diffs import config_diff, unified_diff
from agents.distill import summary
from agents.errors import EditsDoNotApply, LLMError, PromptTooLarge
from agents.guard import check_patch
from agents.guard.config import CONF_KEYS, REMEDY_ONLY_KEYS
from agents.policy.decision import RERUNS, Action, StaticPolicy
from agents.record import Attempt, Candidate, Diagnosis, Evidence, IncidentRecord, Patch
from agents.remedies import fix_by_rules
from agents.remedies.resources import more_memory
from agents.stage import apply_spark_changes, current_attempt, current_evidence
from agents.state import Deps, HealState


def patch(state: HealState, deps: Deps, record: IncidentRecord) -> Command[Literal["preflight", "escalate"]]:
    attempt = current_attempt(record, state["attempt"])
    diagnosis = attempt.diagnosis
    assert diagnosis is not None, "patch runs after diagnose"
    base_code = state.get("base_code") or ""
    earlier = [a.patch for a in record.attempts if a.patch is not None and a.number < attempt.number]
    attempt.patch, attempt.candidates, attempt.candidate = None, [], 1
    attempt.guard = []  # a re-run after a crash judges again; verdicts of the lost run are not kept twice
    accepted: list[Candidate] = []
    rejections: list[str] = []

    evidence = current_evidence(state, record)
    base_spark = state.get("base_spark") or {}
    ruled = _rule_diagnosis(diagnosis, attempt.rule_finding)
    proposal = (fix_by_rules(ruled, evidence, base_code, base_spark)
                if ruled is not None and (deps.settings.deterministic_fixes or deps.llm is None) else None)
    known = policy_state(record, attempt, diagnosis, proposal.kind if proposal else None, deps)
    decision = choose(known, deps, attempt)
    action = decision.action
    if proposal is not None and proposal.kind == "rerun" and known.reruns_left == 0:
        _judge(proposal, base_code, base_spark, earlier, deps, attempt.guard, rejections, diagnosis)  # says why not
    if action is Action.ESCALATE and decision.policy != StaticPolicy.name:
        return _escalate(f"the {decision.policy} policy escalated at attempt {attempt.number}: {decision.reason}")
    if action in (*RERUNS, Action.RAISE_RESOURCES):
        chosen = _policy_patch(action, base_spark, rejections)
        if chosen is not None and _judge(chosen, base_code, base_spark, earlier, deps, attempt.guard, rejections,
                                         diagnosis) is not None:
            accepted = [Candidate(number=1, patch=chosen, accepted=True)]
    if action is Action.RULE_FIX and proposal is not None and _judge(
            proposal, base_code, base_spark, earlier, deps, attempt.guard, rejections, diagnosis) is not None:
        accepted = [Candidate(number=1, patch=proposal, accepted=True,  # a rule's fix stays alone
                              diff=_code_diff(record, proposal) if proposal.kind == "code" else "")]
    # the model: when chosen, or after a rule's fix the guard refused (the static order's fallback)
    if not accepted and deps.llm is not None and action in (Action.MODEL_PATCH, Action.RULE_FIX):
        try:
            accepted = _ask_model(state, deps, record, diagnosis, earlier, attempt, rejections)
        except LLMError as exc:
            return _escalate(f"the model could not propose a patch: {exc}")
        except PromptTooLarge as exc:
            return _escalate(f"no patch from the model: {exc}")
    if not accepted:
        why = "; ".join(rejections[-3:]) or (
            f"rule {diagnosis.rule!r} matched but has no safe fix here, and no model is configured"
            if diagnosis.rule else "no rule knows a fix for this failure and no model is configured")
        return _escalate(f"no acceptable patch for attempt {attempt.number}: {why}")

    original = record.original
    assert original is not None
    first = accepted[0]
    attempt.patch, attempt.candidate = first.patch, first.number
    if first.patch.kind == "code":
        codes = {str(c.number): c.patch.code for c in accepted}
        attempt.fixed_code, attempt.diff = first.patch.code, first.diff
        return Command(goto="preflight", update={"fixed_code": first.patch.code, "candidate_codes": codes})
    attempt.candidates = []  # a config or rerun patch is one fix, not a candidate among others
    attempt.fixed_code = base_code
    new_spark = apply_spark_changes(state.get("base_spark") or {}, first.patch)
    attempt.diff = (config_diff(original.definition.get("spark") or {}, new_spark)
                    if first.patch.kind == "config" else "")
    return Command(goto="preflight", update={"fixed_code": base_code, "candidate_codes": {}})


def _policy_patch(action: Action, base_spark: dict[str, Any], rejections: list[str]) -> Patch | None:
    """The patch of a policy action that needs neither a rule nor the model: a re-run, or more memory."""
    if action is Action.RAISE_RESOURCES:
        found = more_memory(base_spark)
        if found is None:
            rejections.append("raise-resources: driver and executor memory are at their caps already")
        return found
    wait = "after a back-off" if action is Action.RERUN_BACKOFF else "at once"
    return Patch(kind="rerun", explanation=f"The recovery policy re-runs the job unchanged, {wait}.",
                 source="policy", applicability="safe")


def _rule_diagnosis(diagnosis: Diagnosis, found: Diagnosis | None) -> Diagnosis | None:
    """The rule's own diagnosis when a rule made it, or when the model agrees with the rule that
    matched in diagnose (`found`): then the rule's fixer may write the patch."""
    if diagnosis.source == "rule":
        return diagnosis
    if found is not None and found.rule == diagnosis.rule and found.category == diagnosis.category:
        return found
    return None


def _judge(proposal: Patch, base_code: str, base_spark: dict[str, Any], earlier: list[Patch], deps: Deps,
           verdicts: list, rejections: list[str], diagnosis: Diagnosis) -> Patch | None:
    reruns = sum(1 for p in earlier if p.kind == "rerun")
    if proposal.kind == "rerun" and reruns >= deps.settings.max_reruns:
        rejections.append(f"{proposal.source} patch rejected: the job was already re-run {reruns} times "
                          f"unchanged (HEAL_MAX_RERUNS={deps.settings.max_reruns})")
        return None
    results = check_patch(base_code, proposal, previous=earlier, job_spark=base_spark,
                          max_changed_share=deps.settings.max_changed_share, diagnosis=diagnosis)
    verdicts.extend(results)
    failed = [v for v in results if not v.ok]
    if failed:
        rejections.append(f"{proposal.source} patch rejected: " + "; ".join(f"{v.rule}: {v.reason}" for v in failed))
        return None
    return proposal


def _ask_model(state: HealState, deps: Deps, record: IncidentRecord, diagnosis: Diagnosis,
               earlier: list[Patch], attempt: Attempt, rejections: list[str]) -> list[Candidate]:
    """The model's proposals, each applied and judged: the accepted ones in the model's order (code
    fixes are candidates, up to HEAL_CANDIDATES; config and rerun patches come alone). Every
    candidate is recorded on the attempt, rejected ones with why. Answers that only ask to see more
    of the file get those lines in the next prompt, HEAL_MAX_LINE_REQUESTS times at most."""
    assert deps.llm is not None
    settings = deps.settings
    base_code = state.get("base_code") or ""
    evidence = current_evidence(state, record)
    requested: list[tuple[int, int]] = []
    tries = 0
    while tries < settings.max_patch_tries:
        messages = _patch_messages(state, deps, record, diagnosis, evidence, rejections, requested)
        try:
            answer, calls = deps.llm.structured("patch", messages, prompts.PatchAnswer, attempt=state["attempt"])
        except LLMError as exc:
            record.llm_calls.extend(exc.calls)
            raise
        record.llm_calls.extend(calls)
        wanted = answer.line_request()
        if wanted is not None and len(requested) < settings.max_line_requests:
            requested.append(wanted)  # a look at more of the file is not a try
            continue
        tries += 1
        if wanted is not None:
            rejections.append(f"no more lines can be shown (HEAL_MAX_LINE_REQUESTS={settings.max_line_requests}): "
                              "answer with the change now")
            continue
        if answer.kind != "code":
            judged = _judge(answer.config_patch(), base_code, state.get("base_spark") or {}, earlier, deps,
                            attempt.guard, rejections, diagnosis)
            if judged is not None:
                return [Candidate(number=1, patch=judged, accepted=True)]
            continue
        found = _candidates(answer, base_code, state, deps, record, diagnosis, earlier, attempt, rejections)
        if any(c.accepted for c in found):
            attempt.candidates = found
            return [c for c in found if c.accepted]
    return []


def _candidates(answer: prompts.PatchAnswer, base_code: str, state: HealState, deps: Deps, record: IncidentRecord,
                diagnosis: Diagnosis, earlier: list[Patch], attempt: Attempt,
                rejections: list[str]) -> list[Candidate]:
    """Each code proposal of the answer applied to the file and judged by the guard."""
    proposals = answer.proposals(deps.settings.candidates)
    found: list[Candidate] = []
    for number, (explanation, edits, whole_file) in enumerate(proposals, start=1):
        label = f"candidate {number}: " if len(proposals) > 1 else ""
        try:
            proposal = prompts.code_patch(base_code, explanation, edits, whole_file)
        except EditsDoNotApply as exc:
            rejections.append(f"{label}the edits do not apply: " + "; ".join(exc.problems))
            found.append(Candidate(number=number, patch=Patch(kind="code", explanation=explanation, edits=edits),
                                   verdict="rejected: its edits do not apply"))
            continue
        reasons: list[str] = []
        judged = _judge(proposal, base_code, state.get("base_spark") or {}, earlier, deps, attempt.guard,
                        reasons, diagnosis)
        rejections.extend(label + r for r in reasons)
        found.append(Candidate(
            number=number, patch=proposal, accepted=judged is not None, diff=_code_diff(record, proposal),
            verdict="" if judged is not None else "rejected by the guard: " + "; ".join(reasons)))
    return found


def _code_diff(record: IncidentRecord, patch: Patch) -> str:
    """The unified diff from the original application file to the patch's code."""
    original = record.original
    assert original is not None
    return unified_diff(original.code or "", patch.code or "", original.file_path or "app.py")


def _patch_messages(state: HealState, deps: Deps, record: IncidentRecord, diagnosis: Diagnosis, evidence: Evidence,
                    rejections: list[str], requested: list[tuple[int, int]]) -> list[dict[str, str]]:
    """The patch prompt: the code shown is the failure's context within HEAL_CODE_TOKEN_BUDGET, plus
    the lines the model asked for, all within HEAL_PROMPT_TOKEN_BUDGET."""
    settings = deps.settings
    system = prompts.render("system")
    config = diagnosis.category in ("config", "unknown")
    error = summary(evidence.distilled)  # the error without its log excerpts: those went into the diagnosis
    values = dict(
        job=record.job,
        rejections=prompts.render("rejections", rejections="\n".join(f"- {r}" for r in rejections[-6:]))
        if rejections else "",
        alternatives=(f" If unsure, add up to {settings.candidates - 1} other fixes as `alternatives`, best "
                      "first: each is tried in a sandbox." if settings.candidates > 1 else ""),
        config=("`spark_changes` (driverMemory, driverCores, executorMemory, executorCores, numExecutors) "
                "and/or `conf_changes` for these spark.conf keys only: "
                + ", ".join(sorted(set(CONF_KEYS) - REMEDY_ONLY_KEYS)) if config else
                "`spark_changes` for the job's memory and cores, `conf_changes` for Spark settings"),
    )

    def data(code: str, note: str) -> str:
        return prompts.incident_data([
            ("Diagnosis", untrusted.defuse(_diagnosis_text(diagnosis, error))),
            ("The error, from the driver log", error or "(no driver log)"),
        ], code=code, code_note=note, spark=state.get("base_spark"), feedback=state.get("feedback"))

    context = shown_code(state.get("base_code") or "", evidence, settings,
                         system + prompts.render("patch", data=data("", ""), **values), requested)
    return [{"role": "system", "content": system},
            {"role": "user", "content": prompts.render("patch", data=data(context.text, context_note(context)),
                                                       **values)}]


def _diagnosis_text(diagnosis: Diagnosis, error: str) -> str:
    """The diagnosis in a line: its evidence only where the error shown below does not say it."""
    parts = [f"category {diagnosis.category}", diagnosis.root_cause]
    if diagnosis.condition:
        parts.append(f"Spark condition {diagnosis.condition}")
    new = [e[:200] for e in diagnosis.evidence[:3] if e.strip() and e.strip() not in error]
    if new:
        parts.append("evidence: " + " | ".join(new))
    return "; ".join(parts)


def _escalate(reason: str) -> Command:
    return Command(goto="escalate", update={"reason": reason})

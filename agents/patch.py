"""patch: the smallest change that removes the cause, validated before it can be deployed.

Where a rule knows the remedy (Spark's message names it), its fixer writes the patch without a
model. Otherwise the model proposes one; the guard checks every proposal and its reasons are fed
back for another try, up to `max_patch_tries`. LLM output is untrusted until the guard passes it.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from langgraph.types import Command

from agents import prompts, untrusted
from agents.budget import room_for_code
from agents.diffs import config_diff, unified_diff
from agents.errors import LLMError, PromptTooLarge
from agents.guard import check_patch
from agents.guard.config import CONF_KEYS, REMEDY_ONLY_KEYS
from agents.prompts import number_lines
from agents.record import Diagnosis, IncidentRecord, Patch
from agents.remedies import fix_by_rules
from agents.stage import apply_spark_changes, current_attempt, current_evidence
from agents.state import Deps, HealState
from agents.tokens import estimate_tokens


def patch(state: HealState, deps: Deps, record: IncidentRecord) -> Command[Literal["preflight", "escalate"]]:
    attempt = current_attempt(record, state["attempt"])
    diagnosis = attempt.diagnosis
    assert diagnosis is not None, "patch runs after diagnose"
    base_code = state.get("base_code") or ""
    earlier = [a.patch for a in record.attempts if a.patch is not None and a.number < attempt.number]
    attempt.patch = None
    attempt.guard = []  # a re-run after a crash judges again; verdicts of the lost run are not kept twice
    accepted: Patch | None = None
    rejections: list[str] = []

    evidence = current_evidence(state, record)
    ruled = _rule_diagnosis(diagnosis, attempt.rule_finding)
    if ruled is not None and (deps.settings.deterministic_fixes or deps.llm is None):
        proposal = fix_by_rules(ruled, evidence, base_code, state.get("base_spark") or {})
        if proposal is not None:
            accepted = _judge(proposal, base_code, state.get("base_spark") or {}, earlier, deps,
                              attempt.guard, rejections, diagnosis)
    if accepted is None and deps.llm is not None:
        try:
            accepted = _ask_model(state, deps, record, diagnosis, earlier, attempt.guard, rejections)
        except LLMError as exc:
            return _escalate(f"the model could not propose a patch: {exc}")
        except PromptTooLarge as exc:
            return _escalate(f"no patch from the model: {exc}")
    if accepted is None:
        why = "; ".join(rejections[-3:]) or (
            f"rule {diagnosis.rule!r} matched but has no safe fix here, and no model is configured"
            if diagnosis.rule else "no rule knows a fix for this failure and no model is configured")
        return _escalate(f"no acceptable patch for attempt {attempt.number}: {why}")

    attempt.patch = accepted
    original = record.original
    assert original is not None
    if accepted.kind == "code":
        attempt.fixed_code = accepted.code
        attempt.diff = unified_diff(original.code or "", accepted.code or "", original.file_path or "app.py")
        return Command(goto="preflight", update={"fixed_code": accepted.code})
    attempt.fixed_code = base_code
    new_spark = apply_spark_changes(state.get("base_spark") or {}, accepted)
    attempt.diff = (config_diff(original.definition.get("spark") or {}, new_spark)
                    if accepted.kind == "config" else "")
    return Command(goto="preflight", update={"fixed_code": base_code})


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
               earlier: list[Patch], verdicts: list, rejections: list[str]) -> Patch | None:
    assert deps.llm is not None
    base_code = state.get("base_code") or ""
    evidence = current_evidence(state, record)
    system = prompts.render("system")
    for _ in range(deps.settings.max_patch_tries):
        template = "patch_retry" if rejections else "patch"
        values = dict(
            job=record.job,
            diagnosis=untrusted.block("diagnosis", untrusted.defuse(diagnosis.model_dump_json(indent=2))),
            evidence=untrusted.block("driver log", evidence.distilled or "(no driver log)"),
            spark=untrusted.block("job settings", json.dumps(state.get("base_spark") or {}, indent=2, sort_keys=True)),
            feedback=untrusted.block("earlier attempts", state.get("feedback") or "none"),
            rejections="\n".join(f"- {r}" for r in rejections) or "none",
            conf_keys=", ".join(sorted(set(CONF_KEYS) - REMEDY_ONLY_KEYS)),
        )
        empty = untrusted.block("application code", "")
        room = room_for_code(deps.settings.prompt_token_budget, system + prompts.render(template, code=empty, **values))
        code = untrusted.block("application code", number_lines(base_code))
        if estimate_tokens(code) > room:  # the model must see, and return, the whole file
            raise PromptTooLarge(
                f"the application file (about {estimate_tokens(code)} tokens) does not fit the prompt budget "
                f"of {deps.settings.prompt_token_budget} tokens (HEAL_PROMPT_TOKEN_BUDGET)")
        messages = [{"role": "system", "content": system},
                    {"role": "user", "content": prompts.render(template, code=code, **values)}]
        try:
            answer, calls = deps.llm.structured("patch", messages, prompts.PatchAnswer, attempt=state["attempt"])
        except LLMError as exc:
            record.llm_calls.extend(exc.calls)
            raise
        record.llm_calls.extend(calls)
        accepted = _judge(answer.to_patch(), base_code, state.get("base_spark") or {}, earlier, deps,
                          verdicts, rejections, diagnosis)
        if accepted is not None:
            return accepted
    return None


def _escalate(reason: str) -> Command:
    return Command(goto="escalate", update={"reason": reason})

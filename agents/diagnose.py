"""diagnose: what went wrong, from the distilled evidence.

Deterministic rules for well-known signatures run first. With a model configured, the model
makes the diagnosis and is handed the rules' findings; without one, the rules' diagnosis stands
alone. Whether to give up is decided here, by our code: missing data cannot be healed by a patch.
"""

from __future__ import annotations

from typing import Literal

from langgraph.types import Command

from agents import prompts, untrusted
from agents.budget import DIAGNOSIS_CODE_SHARE, context_note, shown_code
from agents.errors import LLMError, PromptTooLarge
from agents.record import Diagnosis, Evidence, IncidentRecord
from agents.remedies import diagnose_by_rules
from agents.remedies.conditions import category_of
from agents.stage import current_attempt, current_evidence
from agents.state import Deps, HealState

UNFIXABLE = ("data",)  # categories no code or configuration change can heal


def diagnose(state: HealState, deps: Deps, record: IncidentRecord) -> Command[Literal["patch", "escalate"]]:
    evidence = current_evidence(state, record)
    code = state.get("base_code") or ""
    spark = state.get("base_spark") or {}
    attempt = current_attempt(record, state["attempt"])
    found = diagnose_by_rules(evidence, code, spark)
    attempt.rule_finding = found
    if found is not None and found.category in UNFIXABLE:  # our code decides, whatever a model would say
        attempt.diagnosis = _with_condition(found, evidence)
        return _escalate(f"not healable by a code or configuration change ({found.category}): {found.root_cause}")

    if deps.llm is None:
        if found is None:
            named = (f" (Spark condition {evidence.error_class}, category "
                     f"{category_of(evidence.error_class, evidence.exception or '')})" if evidence.error_class else "")
            reason = (f"no deterministic rule matches this failure{named} and no model is configured "
                      "(set LLM_ENDPOINT_BASE_URL to let a model diagnose it)")
            if not evidence.distilled.strip():
                reason = "the run left no driver log to diagnose, and no model is configured"
            return _escalate(reason)
        diagnosis = found
    else:
        try:
            diagnosis = ask_model(state, deps, record, evidence, found)
        except LLMError as exc:
            return _escalate(f"the model could not diagnose the failure: {exc}")
        except PromptTooLarge as exc:
            return _escalate(f"no diagnosis from the model: {exc}")
        diagnosis = _rule_stands(diagnosis, found)
    attempt.diagnosis = _with_condition(diagnosis, evidence)
    if diagnosis.category in UNFIXABLE:
        return _escalate(f"not healable by a code or configuration change ({diagnosis.category}): "
                         f"{diagnosis.root_cause}")
    return Command(goto="patch")


def ask_model(state: HealState, deps: Deps, record: IncidentRecord, evidence: Evidence,
              found: Diagnosis | None) -> Diagnosis:
    def data(code: str, note: str) -> str:
        return prompts.incident_data([
            ("Evidence from the driver log", evidence.distilled or "(the run left no driver log)"),
            ("Rule findings", _findings(found)),
        ], code=code, code_note=note, spark=state.get("base_spark"), feedback=state.get("feedback"))

    system = prompts.render("system")
    context = shown_code(state.get("base_code") or "", evidence, deps.settings,
                         system + prompts.render("diagnose", job=record.job, data=data("", "")),
                         share=DIAGNOSIS_CODE_SHARE)
    messages = [{"role": "system", "content": system},
                {"role": "user", "content": prompts.render("diagnose", job=record.job,
                                                           data=data(context.text, context_note(context, can_ask=False)))}]
    try:
        answer, calls = deps.llm.structured("diagnose", messages, prompts.DiagnosisAnswer,  # type: ignore[union-attr]
                                            attempt=state["attempt"])
    except LLMError as exc:
        record.llm_calls.extend(exc.calls)
        raise
    record.llm_calls.extend(calls)
    diagnosis = answer.to_diagnosis()
    diagnosis.rule = found.rule if found else None
    return diagnosis


def _rule_stands(model: Diagnosis, found: Diagnosis | None) -> Diagnosis:
    """The model's diagnosis, unless it would give up (a `data` problem) where a rule recognised
    Spark's error condition as one a change fixes: then the rule's diagnosis stands, saying so.
    Giving up is our code's call, and a rule matches the condition itself, not a reading of it."""
    if found is None or model.category not in UNFIXABLE or found.category in UNFIXABLE:
        return model
    return found.model_copy(update={"root_cause": f"{found.root_cause} (The model judged it a {model.category} "
                                    f"problem: {model.root_cause[:300]} The rule's finding stands.)"})


def _with_condition(diagnosis: Diagnosis, evidence: Evidence) -> Diagnosis:
    """The diagnosis naming Spark's error condition and its category: our code's, whoever diagnosed."""
    diagnosis.condition = evidence.error_class
    diagnosis.condition_category = category_of(evidence.error_class, evidence.exception or "")
    return diagnosis


def _findings(found: Diagnosis | None) -> str:
    if found is None:
        return "No deterministic rule matched."
    # the finding quotes the job's data (its evidence lines are the log's, shown just above)
    return untrusted.defuse(f"Rule {found.rule!r} matched: category {found.category}, {found.root_cause}")


def _escalate(reason: str) -> Command:
    return Command(goto="escalate", update={"reason": reason})

"""The model wrapper, through langchain-openai and real HTTP, against the scripted server; and the
prompt templates it is fed with."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from agents import prompts
from agents.config import Settings
from agents.errors import InvalidInput, LLMBadAnswer, LLMUnavailable
from agents.llm import HealerLLM, extract_json_object
from agents.prompts import DiagnosisAnswer, PatchAnswer
from bench.scripted_llm import ScriptedLLM

API_KEY = "sk-test-4f7c1d2e9a8b"
GOOD = {"category": "code", "root_cause": "column customer_id was renamed", "evidence": ["[UNRESOLVED_COLUMN]"], "confidence": 0.8}
MESSAGES = [
    {"role": "system", "content": "You heal Spark jobs."},
    {"role": "user", "content": "Diagnose: [UNRESOLVED_COLUMN.WITH_SUGGESTION] customer_id"},
]


def make_llm(server: ScriptedLLM, **options) -> HealerLLM:
    settings = {"timeout_s": 10.0, "max_retries": 0, **options}
    return HealerLLM(server.base_url, API_KEY, "scripted-model", **settings)


def assert_no_secret(*texts: object) -> None:
    for text in texts:
        assert API_KEY not in str(text)


# --- the modes ---------------------------------------------------------------------------------


def test_json_schema_answer_is_validated_and_recorded(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.add(GOOD, prompt_tokens=321, completion_tokens=45)
    llm = make_llm(scripted_llm)
    answer, calls = llm.structured("diagnose", MESSAGES, DiagnosisAnswer, attempt=2)
    assert answer == DiagnosisAnswer(**GOOD)
    assert answer.to_diagnosis().source == "model"

    [request] = scripted_llm.requests
    assert request.path == "/v1/chat/completions"
    assert request.mode == "json_schema"
    assert request.body["response_format"]["json_schema"]["name"] == "DiagnosisAnswer"
    assert request.body["temperature"] == 0
    assert request.headers["authorization"] == f"Bearer {API_KEY}"

    [call] = calls
    assert (call.stage, call.attempt, call.mode) == ("diagnose", 2, "json_schema")
    assert call.prompt == MESSAGES
    assert json.loads(call.answer) == GOOD
    assert (call.prompt_tokens, call.completion_tokens) == (321, 45)
    assert call.estimated_prompt_tokens > 0 and call.latency_s >= 0 and call.error == ""
    assert_no_secret(call.model_dump_json(), repr(llm))


def test_rejected_json_schema_falls_back_to_function_calling_and_is_remembered(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.reject_json_schema = True
    scripted_llm.add(GOOD).add(GOOD)
    llm = make_llm(scripted_llm)
    answer, calls = llm.structured("diagnose", MESSAGES, DiagnosisAnswer)
    assert answer.category == "code"
    assert [c.mode for c in calls] == ["json_schema", "function_calling"]
    assert "json_schema" in calls[0].error and "500" in calls[0].error
    second = scripted_llm.requests[1]
    assert second.body["tools"][0]["function"]["name"] == "DiagnosisAnswer"
    assert second.body["tool_choice"]["function"]["name"] == "DiagnosisAnswer"
    assert llm.mode == "function_calling"

    _, calls = llm.structured("diagnose", MESSAGES, DiagnosisAnswer)
    assert [c.mode for c in calls] == ["function_calling"]  # starts where it worked last time
    assert len(scripted_llm.requests) == 3


def test_a_configured_mode_is_used_from_the_first_call(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.reject_json_schema = True  # never asked: LLM_STRUCTURED_OUTPUT=function_calling
    scripted_llm.add(GOOD)
    llm = make_llm(scripted_llm, mode="function_calling")
    _, calls = llm.structured("diagnose", MESSAGES, DiagnosisAnswer)
    assert [c.mode for c in calls] == ["function_calling"] and len(scripted_llm.requests) == 1


def test_max_tokens_is_sent(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.add(GOOD)
    make_llm(scripted_llm, max_tokens=900).structured("diagnose", MESSAGES, DiagnosisAnswer)
    assert scripted_llm.requests[0].body["max_tokens"] == 900


def test_without_a_system_role_the_instructions_head_the_user_message(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.add(GOOD).add(GOOD)
    make_llm(scripted_llm, system_role=False).structured("diagnose", MESSAGES, DiagnosisAnswer)
    [only] = scripted_llm.requests[0].body["messages"]
    assert only == {"role": "user", "content": MESSAGES[0]["content"] + "\n\n" + MESSAGES[1]["content"]}
    make_llm(scripted_llm).structured("diagnose", MESSAGES, DiagnosisAnswer)  # the default keeps the roles
    assert [m["role"] for m in scripted_llm.requests[1].body["messages"]] == ["system", "user"]


@pytest.mark.parametrize(("given", "read"), [(0.7, 0.7), (1, 1.0), (85, 0.85), (100, 1.0)])
def test_a_confidence_given_as_a_percentage_is_read_as_one(given: float, read: float) -> None:
    assert DiagnosisAnswer(**{**GOOD, "confidence": given}).confidence == pytest.approx(read)


@pytest.mark.parametrize("given", [-0.1, 101, 1e9])
def test_a_confidence_out_of_any_range_is_refused(given: float) -> None:
    with pytest.raises(ValueError):
        DiagnosisAnswer(**{**GOOD, "confidence": given})


def test_no_tool_support_falls_back_to_json_in_text(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.reject_json_schema = True
    scripted_llm.tools = "rejected"
    scripted_llm.add("Here is the diagnosis:\n```json\n" + json.dumps(GOOD) + "\n```\nHope it helps.")
    llm = make_llm(scripted_llm)
    answer, calls = llm.structured("diagnose", MESSAGES, DiagnosisAnswer)
    assert answer == DiagnosisAnswer(**GOOD)
    assert [c.mode for c in calls] == ["json_schema", "function_calling", "json_in_text"]
    last = scripted_llm.requests[-1]
    assert last.mode == "json_in_text" and "response_format" not in last.body and "tools" not in last.body
    # The schema travels in the last user message.
    assert '"root_cause"' in last.body["messages"][-1]["content"]
    assert last.body["messages"][-1]["content"].startswith(MESSAGES[-1]["content"])
    assert llm.mode == "json_in_text"


def test_a_server_that_ignores_tools_is_answered_from_its_text(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.tools = "ignored"
    scripted_llm.add(GOOD)
    llm = make_llm(scripted_llm, mode="function_calling")
    answer, calls = llm.structured("diagnose", MESSAGES, DiagnosisAnswer)
    assert answer.category == "code"
    assert [c.mode for c in calls] == ["json_in_text"]
    assert llm.mode == "json_in_text"


def test_patch_answer_by_function_calling(scripted_llm: ScriptedLLM) -> None:
    patch = {"kind": "config", "explanation": "more memory", "spark_changes": {"driverMemory": "2g", "driverCores": "2"}}
    scripted_llm.add(patch)
    answer, _ = make_llm(scripted_llm, mode="function_calling").structured("patch", MESSAGES, PatchAnswer)
    converted = answer.to_patch()
    assert converted.kind == "config" and converted.source == "model" and converted.code is None
    assert converted.spark_changes == {"driverMemory": "2g", "driverCores": 2}


# --- bad answers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("I think the column was renamed.", "no JSON object"),
        ('{"category": "code", "root_cause": "trunc', "not valid"),
        ({"category": "bug", "root_cause": "x", "evidence": [], "confidence": 2}, "does not match the schema"),
    ],
)
def test_a_malformed_answer_is_asked_again_with_the_error(scripted_llm: ScriptedLLM, bad, problem: str) -> None:
    scripted_llm.add(bad).add(GOOD)
    answer, calls = make_llm(scripted_llm).structured("diagnose", MESSAGES, DiagnosisAnswer)
    assert answer == DiagnosisAnswer(**GOOD)
    assert len(calls) == 2 and problem in calls[0].error and calls[1].error == ""
    retry = scripted_llm.requests[1].body["messages"]
    assert retry[-2]["role"] == "assistant" and retry[-2]["content"] == calls[0].answer
    assert retry[-1]["role"] == "user" and problem in retry[-1]["content"]
    assert calls[1].prompt[-1]["content"] == retry[-1]["content"]


def test_a_malformed_tool_call_is_asked_again(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.add('{"category": "code", "root_cause": ').add({"category": "code"}).add(GOOD)
    answer, calls = make_llm(scripted_llm, mode="function_calling").structured("diagnose", MESSAGES, DiagnosisAnswer)
    assert answer.category == "code"
    assert [bool(c.error) for c in calls] == [True, True, False]
    assert "Field required" in calls[1].error
    assert "function `DiagnosisAnswer`" in scripted_llm.requests[2].body["messages"][-1]["content"]


def test_an_answer_cut_at_the_token_limit_is_asked_again(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.add('{"category": "code"', finish_reason="length").add(GOOD)
    _, calls = make_llm(scripted_llm, mode="json_in_text").structured("diagnose", MESSAGES, DiagnosisAnswer)
    assert "cut off" in calls[0].error and len(calls) == 2


def test_always_malformed_ends_in_llm_bad_answer(scripted_llm: ScriptedLLM) -> None:
    for _ in range(3):
        scripted_llm.add("no idea")
    llm = make_llm(scripted_llm, max_structured_retries=2)
    with pytest.raises(LLMBadAnswer) as caught:
        llm.structured("diagnose", MESSAGES, DiagnosisAnswer)
    assert len(caught.value.calls) == 3 and len(scripted_llm.requests) == 3
    assert all("no JSON object" in c.error for c in caught.value.calls)
    assert scripted_llm.remaining == 0


def test_no_retries_means_one_answer(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.add("no idea").add(GOOD)
    with pytest.raises(LLMBadAnswer):
        make_llm(scripted_llm, max_structured_retries=0).structured("diagnose", MESSAGES, DiagnosisAnswer)
    assert scripted_llm.remaining == 1


# --- the endpoint failing ------------------------------------------------------------------------


def test_503_is_llm_unavailable(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.down = "503"
    with pytest.raises(LLMUnavailable, match="503") as caught:
        make_llm(scripted_llm).structured("diagnose", MESSAGES, DiagnosisAnswer)
    assert len(caught.value.calls) == 1 and "503" in caught.value.calls[0].error
    assert len(scripted_llm.requests) == 1  # a 503 is not taken for a missing feature


def test_the_http_client_retries_before_giving_up(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.down = "503"
    with pytest.raises(LLMUnavailable):
        make_llm(scripted_llm, max_retries=1).structured("diagnose", MESSAGES, DiagnosisAnswer)
    assert len(scripted_llm.requests) == 2


def test_refused_connections_are_llm_unavailable() -> None:
    server = ScriptedLLM().start()
    llm = make_llm(server)
    server.stop()
    with pytest.raises(LLMUnavailable, match="cannot connect"):
        llm.structured("diagnose", MESSAGES, DiagnosisAnswer)


def test_a_timeout_is_llm_unavailable(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.add(GOOD, delay_s=3)
    with pytest.raises(LLMUnavailable, match="timed out") as caught:
        make_llm(scripted_llm, timeout_s=0.5).structured("diagnose", MESSAGES, DiagnosisAnswer)
    assert "timed out" in caught.value.calls[0].error


def test_a_trickling_endpoint_is_cut_off_at_the_total_deadline(scripted_llm: ScriptedLLM) -> None:
    """One byte every 0.2 s never trips a per-read timeout; LLM_TIMEOUT_S bounds the whole request,
    the HTTP client's retries (LLM_MAX_RETRIES, 2 by default) included."""
    from agents.llm import llm_from_settings as healer_llm  # the model client as the healer builds it

    scripted_llm.add(GOOD, trickle_s=0.2).add(GOOD, trickle_s=0.2).add(GOOD, trickle_s=0.2)
    settings = Settings.from_env({"JOBS_API_URL": "http://127.0.0.1:9/dex/api/v1", "CDE_TOKEN": "unused",
                                  "LLM_ENDPOINT_BASE_URL": scripted_llm.base_url, "LLM_CDP_TOKEN": API_KEY,
                                  "LLM_TIMEOUT_S": "1"}, dotenv=None)
    llm = healer_llm(settings)
    started = time.monotonic()
    try:
        with pytest.raises(LLMUnavailable, match="no complete answer within 1 s") as caught:
            llm.structured("diagnose", MESSAGES, DiagnosisAnswer)
    finally:
        elapsed = time.monotonic() - started
        llm.close()
    assert elapsed < 5, f"gave up after {elapsed:.1f} s"  # a bound, not a benchmark: about 1 s
    [call] = caught.value.calls
    assert "no complete answer within 1 s" in call.error and call.latency_s < 5
    assert len(scripted_llm.requests) == 1  # a request past its deadline is not retried
    for watchdog in [t for t in threading.enumerate() if t.name == "model-call-deadline"]:
        watchdog.join(timeout=5)
        assert not watchdog.is_alive(), "a deadline timer outlived its request"


def test_an_auth_failure_never_shows_the_key(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.add_error(401, f"Incorrect API key provided: {API_KEY}")
    with pytest.raises(LLMUnavailable) as caught:
        make_llm(scripted_llm).structured("diagnose", MESSAGES, DiagnosisAnswer)
    assert "401" in str(caught.value)
    assert_no_secret(caught.value, caught.value.calls[0].model_dump_json())


def test_the_key_is_redacted_from_answers_and_prompts(scripted_llm: ScriptedLLM) -> None:
    leaked = dict(GOOD, root_cause=f"the key is {API_KEY}")
    scripted_llm.add(leaked)
    messages = [{"role": "user", "content": f"never say {API_KEY}"}]
    answer, calls = make_llm(scripted_llm).structured("diagnose", messages, DiagnosisAnswer)
    assert_no_secret(calls[0].model_dump_json())


# --- bad input ---------------------------------------------------------------------------------


def test_bad_input_is_a_clear_error(scripted_llm: ScriptedLLM) -> None:
    with pytest.raises(InvalidInput, match="http"):
        HealerLLM("ftp://x", API_KEY, "m")
    with pytest.raises(InvalidInput, match="mode"):
        HealerLLM(scripted_llm.base_url, API_KEY, "m", mode="xml")  # type: ignore[arg-type]
    llm = make_llm(scripted_llm)
    with pytest.raises(InvalidInput, match="role"):
        llm.structured("diagnose", [{"role": "tool", "content": "x"}], DiagnosisAnswer)
    with pytest.raises(InvalidInput, match="no messages"):
        llm.structured("diagnose", [], DiagnosisAnswer)
    with pytest.raises(InvalidInput, match="pydantic"):
        llm.structured("diagnose", MESSAGES, dict)  # type: ignore[arg-type]
    assert scripted_llm.requests == []


def test_extract_json_object() -> None:
    assert extract_json_object('{"a": 1}') == {"a": 1}
    assert extract_json_object('Sure! {"a": {"b": [1, 2]}} and more text {"c": 3}') == {"a": {"b": [1, 2]}}
    assert extract_json_object("```json\n{\"a\": 2}\n```") == {"a": 2}
    with pytest.raises(ValueError, match="no JSON object"):
        extract_json_object("nothing here")
    with pytest.raises(ValueError, match="not valid"):
        extract_json_object('{"a": ')


# --- prompts -------------------------------------------------------------------------------------

# The values the stage nodes pass to each template.
STAGE_VALUES = {
    "system": {},
    "diagnose": {"job": "sql-select-fail", "data": '<untrusted kind="incident" id="1">\n## Job settings\n{}'},
    "patch": {"job": "j", "data": "## Diagnosis\ncategory code", "rejections": "- parses: bad",
              "config": "spark.sql.shuffle.partitions", "alternatives": " Up to 2 alternatives."},
    "rejections": {"rejections": "- parses: bad"},
    "json_answer": {"schema": "{}"},
    "structured_retry": {"error": "bad", "expected": "a single JSON object"},
    "ops_ask": {"now": "2026-03-16 09:30 UTC", "tools": "- count_runs(job, status, window)",
                "windows": "24h, 7d, today", "jobs": "sales-daily"},
}


def test_every_template_renders_with_the_stage_values() -> None:
    assert sorted(STAGE_VALUES) == prompts.template_names()
    for name, values in STAGE_VALUES.items():
        text = prompts.render(name, **values)
        assert "$" not in text.replace("$$", "")
        for value in values.values():
            assert value in text


def test_render_errors_name_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="needs a value for: data"):
        prompts.render("diagnose", **{k: v for k, v in STAGE_VALUES["diagnose"].items() if k != "data"})
    with pytest.raises(InvalidInput, match="no prompt template 'nope'"):
        prompts.render("nope")
    with pytest.raises(InvalidInput, match="bad prompt template name"):
        prompts.render("../secrets")
    (tmp_path / "cost.md").write_text("It costs $ 5.\n")
    with pytest.raises(InvalidInput, match="stray '\\$' on line 1"):
        prompts.render("cost", directory=tmp_path)


def test_render_shows_structures_as_json_and_numbers_code() -> None:
    text = prompts.render("json_answer", schema={"type": "object"})
    assert '"type": "object"' in text
    assert prompts.render("structured_retry", error=None, expected="x").startswith("Your answer could not be used: (none)")
    assert prompts.number_lines("a = 1\nb = 2") == "1| a = 1\n2| b = 2"

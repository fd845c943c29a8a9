"""The only code that speaks to the model: structured answers from any OpenAI-compatible endpoint.

``HealerLLM.structured(stage, messages, Schema, attempt=n)`` returns a validated ``Schema``
instance and the ``LlmCall`` record of every request it made. It asks for structure in the
strongest way the endpoint supports and remembers what worked:

1. ``json_schema``: ``response_format`` with the JSON schema (OpenAI structured outputs, vLLM, NIM);
2. ``function_calling``: the schema as a forced tool call, when the server rejects json_schema
   (llama.cpp's server answers HTTP 500);
3. ``json_in_text``: the schema in the prompt and the JSON object taken from the answer's text
   (also from a ```json fence), when the server has no tool calling either.

Every answer is validated with pydantic here. An invalid answer is shown back to the model with the
validation error, at most ``max_structured_retries`` times. Errors: ``LLMUnavailable`` (down,
timeout, auth — after the HTTP client's own ``max_retries``) and ``LLMBadAnswer`` (no valid answer
within the limit); both carry the calls made. The API key never appears in records or errors.

Secrets never reach the model: every message is redacted before it is sent (``agents.redact``:
the key, the workload password and CDE token passed as ``secrets``, and anything that looks like a
credential), with placeholders that are put back into the validated answer.

``timeout_s`` (``LLM_TIMEOUT_S``) is a total deadline per request to the model, retries included:
from sending it until the last byte of its answer, the openai client's ``max_retries`` retries
all within the same ``timeout_s``. A slow or trickling endpoint is cut off then, and the call fails
with ``LLMUnavailable`` ("no complete answer within N s"); a re-ask after an invalid answer is a new
request with a new deadline. How the deadline is kept (httpx alone has none): ``agents/deadline.py``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import openai
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, ValidationError

from agents import prompts
from agents.deadline import call_deadline, deadline_http_client, ran_out_of_time
from agents.errors import InvalidInput, LLMBadAnswer, LLMUnavailable
from agents.record import LlmCall
from agents.redact import Redactor, redact
from agents.tokens import estimate_tokens

if TYPE_CHECKING:
    from agents.config import Settings

Mode = Literal["json_schema", "function_calling", "json_in_text"]
MODES: tuple[Mode, ...] = ("json_schema", "function_calling", "json_in_text")
MAX_JSON_STARTS = 50  # "{" positions tried when digging a JSON object out of free text
MAX_ERROR_CHARS = 1_500  # of a validation error shown back to the model
MAX_RECORDED_ANSWER_CHARS = 200_000

# HTTP statuses with which servers reject a request feature (rather than being down).
_FEATURE_REJECTION_STATUSES = frozenset({400, 415, 422, 500, 501})
_FEATURE_WORDS: dict[str, tuple[str, ...]] = {
    "json_schema": ("response_format", "json_schema", "schema", "grammar", "structured"),
    "function_calling": ("tool", "function", "jinja"),
}
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n(.*?)```", re.S)

T = TypeVar("T", bound=BaseModel)


class _BadAnswer(Exception):
    """An answer that did not validate; the message is shown back to the model."""


class _ModeUnsupported(Exception):
    """The endpoint does not support the current mode."""


def extract_json_object(text: str) -> Any:
    """The first JSON object in ``text``: a ```json fence's content, the whole text, or the first
    ``{...}`` that parses. Raises ``ValueError`` when there is none."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        stripped = candidate.strip()
        try:
            return json.loads(stripped)
        except ValueError:
            pass
        start = stripped.find("{")
        for _ in range(MAX_JSON_STARTS):
            if start < 0:
                break
            try:
                value, _end = decoder.raw_decode(stripped, start)
                return value
            except ValueError:
                start = stripped.find("{", start + 1)
    raise ValueError("the answer contains no JSON object" if "{" not in text else "the answer's JSON is not valid (truncated?)")


def _short_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for error in exc.errors(include_url=False):
            where = ".".join(str(p) for p in error.get("loc", ())) or "(root)"
            parts.append(f"{where}: {error.get('msg')}")
        return "; ".join(parts)[:MAX_ERROR_CHARS]
    return str(exc)[:MAX_ERROR_CHARS]


def _as_message_dicts(messages: Sequence[Mapping[str, str] | BaseMessage]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    roles = {"human": "user", "ai": "assistant", "system": "system"}
    for message in messages:
        if isinstance(message, BaseMessage):
            out.append({"role": roles.get(message.type, message.type), "content": str(message.content)})
        elif isinstance(message, Mapping) and isinstance(message.get("content"), str):
            role = message.get("role")
            if role not in ("system", "user", "assistant"):
                raise InvalidInput(f"message role must be system, user or assistant, not {role!r}")
            out.append({"role": role, "content": message["content"]})
        else:
            raise InvalidInput("messages must be {'role', 'content'} dicts or langchain messages")
    if not out:
        raise InvalidInput("no messages to send to the model")
    return out


def _restored(answer: T, redactor: Redactor) -> T:
    """The answer with the secrets the model saw as placeholders put back (in every string)."""
    if not redactor.masked:
        return answer

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return redactor.restore(value)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        return value

    return type(answer).model_validate(walk(answer.model_dump()))


def _without_system_role(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The messages with the system ones put at the head of the first user message: for chat
    templates that have no system role and drop those messages."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [dict(m) for m in messages if m["role"] != "system"]
    if not system:
        return rest
    for message in rest:
        if message["role"] == "user":
            message["content"] = system + "\n\n" + message["content"]
            return rest
    return [{"role": "user", "content": system}, *rest]


def _to_langchain(messages: list[dict[str, str]]) -> list[BaseMessage]:
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m["role"]](content=m["content"]) for m in messages]


class HealerLLM:
    """A chat model behind an OpenAI-compatible endpoint, asked for validated structured answers."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        model: str,
        timeout_s: float = 120.0,
        max_retries: int = 2,
        temperature: float = 0.0,
        *,
        max_structured_retries: int = 2,
        max_tokens: int | None = None,
        mode: Mode | None = None,
        system_role: bool = True,
        secrets: Iterable[str] = (),
    ) -> None:
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise InvalidInput(f"the model endpoint must be an http(s) URL, got {base_url!r}")
        if timeout_s <= 0 or max_retries < 0 or max_structured_retries < 0 or (max_tokens is not None and max_tokens < 1):
            raise InvalidInput("timeout_s and max_tokens must be positive; max_retries and max_structured_retries "
                               "not negative")
        if mode is not None and mode not in MODES:
            raise InvalidInput(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.base_url = base_url
        self.model = model
        self.timeout_s = timeout_s
        self.max_structured_retries = max_structured_retries
        self._secrets = tuple(s for s in (api_key, *secrets) if s)  # ours: never sent, never recorded
        self._mode_index = MODES.index(mode) if mode else 0
        self.system_role = system_role
        self._http = deadline_http_client(timeout_s, base_url)
        # The key lives only inside the client (a SecretStr there); never on this object's surface.
        self._chat = ChatOpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            model=model,
            temperature=temperature,
            # A runaway answer is cut off (then re-asked, shorter). Sent as `max_tokens`, which every
            # OpenAI-compatible server reads (llama.cpp ignores the newer max_completion_tokens).
            extra_body={"max_tokens": max_tokens} if max_tokens else None,
            timeout=timeout_s,
            max_retries=max_retries,
            use_responses_api=False,  # chat completions: what every OpenAI-compatible server serves
            http_client=self._http,
        )

    def close(self) -> None:
        """Closes the HTTP client (its connections); the object is not used afterwards."""
        self._http.close()

    def __repr__(self) -> str:
        return f"HealerLLM(base_url={self.base_url!r}, model={self.model!r}, mode={self.mode!r})"

    @property
    def mode(self) -> Mode:
        """The structured-output mode the next call starts with (the last one that worked)."""
        return MODES[self._mode_index]

    # --- the one public call ---------------------------------------------------------------

    def structured(
        self,
        stage: str,
        messages: Sequence[Mapping[str, str] | BaseMessage],
        schema: type[T],
        *,
        attempt: int = 0,
    ) -> tuple[T, list[LlmCall]]:
        """A validated ``schema`` instance answering ``messages``, and a record of every call made.

        Raises ``LLMUnavailable`` when the endpoint cannot be reached or refuses us, and
        ``LLMBadAnswer`` when no valid answer came within ``max_structured_retries`` re-asks.
        """
        if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
            raise InvalidInput("schema must be a pydantic model class")
        # Secrets never reach the model: masked with placeholders, put back into the answer.
        redactor = Redactor(self._secrets)
        base = [{"role": m["role"], "content": redactor.redact(m["content"])} for m in _as_message_dicts(messages)]
        if not self.system_role:
            base = _without_system_role(base)
        calls: list[LlmCall] = []
        conversation: list[dict[str, str]] = []  # re-asks appended after the base messages
        bad_answers = 0
        # Each mode is tried once more than the re-ask limit at most; modes only move forward.
        max_requests = len(MODES) + self.max_structured_retries + 1
        for _ in range(max_requests):
            mode = self.mode
            sent = self._prepare(mode, base, schema) + conversation
            call = LlmCall(stage=stage, attempt=attempt, mode=mode, prompt=self._redacted(sent))
            call.estimated_prompt_tokens = estimate_tokens(
                "".join(m["content"] for m in sent)
                + (json.dumps(prompts.compact_schema(schema)) if mode != "json_in_text" else "")
            )
            calls.append(call)
            started = time.monotonic()
            try:
                return _restored(self._ask(mode, sent, schema, call), redactor), calls
            except _ModeUnsupported as exc:
                call.error = self._clean(f"{mode} not supported by the endpoint: {exc}")
                if self._mode_index + 1 >= len(MODES):
                    raise LLMBadAnswer(f"the endpoint supports no structured-output mode: {call.error}", calls) from None
                self._mode_index += 1
                conversation = []  # a fresh start in the new mode
            except _BadAnswer as exc:
                bad_answers += 1
                call.error = self._clean(str(exc))
                if bad_answers > self.max_structured_retries:
                    raise LLMBadAnswer(
                        f"no valid {schema.__name__} from the model after {bad_answers} answers; last problem: {call.error}",
                        calls,
                    ) from None
                conversation = conversation + [
                    {"role": "assistant", "content": call.answer or "(empty answer)"},
                    {"role": "user", "content": self._reask(mode, schema, str(exc))},
                ]
            except openai.APIError as exc:
                call.error = self._clean(self._describe_api_error(exc))
                raise LLMUnavailable(f"the model endpoint failed: {call.error}", calls) from None
            finally:
                call.latency_s = round(time.monotonic() - started, 3)
        raise LLMBadAnswer(f"no valid {schema.__name__} within {max_requests} requests", calls)

    # --- modes ---------------------------------------------------------------------------------

    def _prepare(self, mode: Mode, base: list[dict[str, str]], schema: type[BaseModel]) -> list[dict[str, str]]:
        """The messages for ``mode``: in json_in_text the schema joins the last user message."""
        if mode != "json_in_text":
            return list(base)
        instructions = prompts.render("json_answer", schema=json.dumps(prompts.compact_schema(schema)))
        messages = list(base)
        for i in range(len(messages) - 1, -1, -1):
            if messages[i]["role"] == "user":
                messages[i] = {"role": "user", "content": messages[i]["content"] + "\n\n" + instructions}
                return messages
        return messages + [{"role": "user", "content": instructions}]

    def _reask(self, mode: Mode, schema: type[BaseModel], error: str) -> str:
        expected = (
            f"a call of the function `{schema.__name__}` with arguments"
            if mode == "function_calling"
            else "a single JSON object"
        )
        return prompts.render("structured_retry", error=error, expected=expected)

    def _ask(self, mode: Mode, sent: list[dict[str, str]], schema: type[T], call: LlmCall) -> T:
        if mode == "json_schema":
            response_format = {
                "name": schema.__name__,
                "description": (schema.__doc__ or "").strip(),
                "schema": prompts.compact_schema(schema),
                "strict": False,
            }
            runnable: Any = self._chat.with_structured_output(response_format, method="json_schema", include_raw=True)
        elif mode == "function_calling":
            runnable = self._chat.with_structured_output(schema, method="function_calling", include_raw=True)
        else:
            runnable = self._chat
        try:
            with call_deadline(self.timeout_s):
                output = runnable.invoke(_to_langchain(sent))
        except openai.APIStatusError as exc:
            if mode in _FEATURE_WORDS and self._rejects_feature(exc, mode):
                raise _ModeUnsupported(self._describe_api_error(exc)) from None
            raise
        except openai.LengthFinishReasonError:
            raise _BadAnswer("the answer was cut off at the token limit; answer more briefly") from None
        except openai.ContentFilterFinishReasonError:
            raise _BadAnswer("the answer was stopped by the endpoint's content filter") from None
        raw: AIMessage = output["raw"] if isinstance(output, dict) else output
        self._record_usage(call, raw)
        if mode == "function_calling" and not (raw.tool_calls or raw.invalid_tool_calls):
            return self._without_tool_call(raw, schema, call)
        if mode == "function_calling":
            text = self._tool_arguments(raw, call)
        else:
            text = raw.content if isinstance(raw.content, str) else json.dumps(raw.content)
            call.answer = self._clean(text[:MAX_RECORDED_ANSWER_CHARS])
        if raw.response_metadata.get("finish_reason") == "length":
            raise _BadAnswer("the answer was cut off at the token limit; answer more briefly")
        try:
            value = extract_json_object(text)
        except ValueError as exc:
            raise _BadAnswer(str(exc)) from None
        if not isinstance(value, dict):
            raise _BadAnswer("the answer must be a JSON object, not " + type(value).__name__)
        try:
            return schema.model_validate(value)
        except ValidationError as exc:
            raise _BadAnswer("the JSON does not match the schema: " + _short_error(exc)) from None

    def _tool_arguments(self, raw: AIMessage, call: LlmCall) -> str:
        if raw.tool_calls:
            text = json.dumps(raw.tool_calls[0]["args"])
        else:
            text = str(raw.invalid_tool_calls[0].get("args") or "")
        call.answer = self._clean(text[:MAX_RECORDED_ANSWER_CHARS])
        return text

    def _without_tool_call(self, raw: AIMessage, schema: type[T], call: LlmCall) -> T:
        """A server without tool calling answered in text: use it if it is valid, and move on to
        JSON-in-text mode for the next calls either way."""
        content = raw.content if isinstance(raw.content, str) else json.dumps(raw.content)
        call.answer = self._clean(content[:MAX_RECORDED_ANSWER_CHARS])
        try:
            value = extract_json_object(content)
            result = schema.model_validate(value)
        except (ValueError, ValidationError):
            raise _ModeUnsupported("the answer has no tool call") from None
        call.mode = "json_in_text"
        self._mode_index = MODES.index("json_in_text")
        return result

    # --- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _rejects_feature(exc: openai.APIStatusError, mode: str) -> bool:
        message = str(exc).lower()
        return exc.status_code in _FEATURE_REJECTION_STATUSES and any(w in message for w in _FEATURE_WORDS[mode])

    def _describe_api_error(self, exc: openai.APIError) -> str:
        if ran_out_of_time(exc):
            return f"timed out: no complete answer within {self.timeout_s:g} s"
        if isinstance(exc, openai.APITimeoutError):
            return "request timed out"
        if isinstance(exc, openai.APIConnectionError):
            return "cannot connect to the endpoint"
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return f"HTTP {exc.status_code}: the endpoint refused the credentials"
        if isinstance(exc, openai.APIStatusError):
            return f"HTTP {exc.status_code}: {exc.message}"
        return f"{type(exc).__name__}: {exc}"

    @staticmethod
    def _record_usage(call: LlmCall, raw: AIMessage) -> None:
        usage = raw.usage_metadata or {}
        call.prompt_tokens = usage.get("input_tokens")
        call.completion_tokens = usage.get("output_tokens")

    def _clean(self, text: str) -> str:
        return redact(text, self._secrets)

    def _redacted(self, messages: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{"role": m["role"], "content": self._clean(m["content"])} for m in messages]


def llm_from_settings(settings: Settings) -> HealerLLM | None:
    """The model client the settings name, or None when no endpoint is configured (rules only)."""
    if not settings.model_configured:
        return None
    return HealerLLM(
        base_url=settings.llm_base_url or "",
        api_key=settings.llm_api_key or "not-needed",
        model=settings.llm_model_id or "default",
        timeout_s=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries,
        max_structured_retries=settings.max_structured_retries,
        max_tokens=settings.llm_max_tokens,
        mode=None if settings.llm_structured_output == "auto" else settings.llm_structured_output,
        system_role=settings.llm_system_role,
        secrets=settings.secrets,
    )

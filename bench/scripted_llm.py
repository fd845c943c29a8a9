"""A scripted OpenAI-compatible chat server: the one test double at the model boundary.

It ships with the benchmark (`python -m bench heal --model scripted` replays the known-good fixes
through it); the tests import it from here (tests may import bench, never the reverse).

A real HTTP server (stdlib ``ThreadingHTTPServer``) on a free loopback port. It serves
``POST /v1/chat/completions`` (and ``/chat/completions``) by replaying a queue of recorded answers
and records every request for assertions. Behaviours a test can switch on:

- ``reject_json_schema``: answer ``response_format: json_schema`` requests with HTTP 500 and the
  message llama.cpp's server gives;
- ``tools``: "supported" (answer with a tool call when the request has tools), "rejected"
  (HTTP 500 as llama.cpp without --jinja), or "ignored" (answer plain text anyway);
- malformed answers are simply scripted as such (no JSON, truncated, wrong schema);
- ``delay_s`` per answer (to trigger client timeouts);
- ``trickle_s`` per answer: the headers at once, then the body one byte every ``trickle_s`` seconds,
  padded with leading spaces to last ``trickle_for_s`` (60): no per-read timeout ever fires;
- ``down``: "503" (every request gets HTTP 503) or ``stop()`` (connections refused).

Usage::

    with ScriptedLLM() as llm:
        llm.add('{"category": "code", ...}', prompt_tokens=120, completion_tokens=40)
        ... HealerLLM(base_url=llm.base_url, api_key="test-key", model="scripted") ...
        assert llm.requests[0].body["messages"][0]["role"] == "system"
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from agents.tokens import estimate_tokens

LLAMA_CPP_JSON_SCHEMA_ERROR = (
    'response_format type must be one of "text" or "json_object", but got: json_schema'
)
LLAMA_CPP_TOOLS_ERROR = "tools param requires --jinja flag"
EXHAUSTED_ERROR = "scripted LLM: no answer left in the script"


@dataclass
class Answer:
    """One scripted reply: ``text`` is the answer's content (or a tool call's arguments)."""

    text: str
    prompt_tokens: int | None = None  # None: counted from the request, as a server does (see `usage`)
    completion_tokens: int | None = None  # None: counted from `text`
    delay_s: float = 0.0
    status: int = 200  # non-200: an error reply with ``text`` as the message
    finish_reason: str | None = None  # default: "stop", or "tool_calls" for a tool call
    trickle_s: float = 0.0  # > 0: send the body one byte at a time, this many seconds apart
    trickle_for_s: float = 60.0  # ... padded so that the whole body takes this long
    reply: Callable[[Request], str] | None = None  # computes ``text`` from the request (a model echoing)


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def mode(self) -> str:
        """How the client asked for structure: json_schema | function_calling | json_in_text."""
        response_format = self.body.get("response_format") or {}
        if response_format.get("type") == "json_schema":
            return "json_schema"
        if self.body.get("tools"):
            return "function_calling"
        return "json_in_text"


@dataclass
class _Script:
    answers: deque[Answer] = field(default_factory=deque)
    requests: list[Request] = field(default_factory=list)
    reject_json_schema: bool = False
    tools: Literal["supported", "rejected", "ignored"] = "supported"
    down: Literal["", "503"] = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # keep test output clean

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except ConnectionError:
            pass  # the client gave up (timeout test); nothing to tell it

    def _error(self, status: int, message: str) -> None:
        kind = "server_error" if status >= 500 else "invalid_request_error"
        self._reply(status, {"error": {"code": status, "message": message, "type": kind}})

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._reply(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
        else:
            self._error(404, f"no route {self.path}")

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        script = self.server.script
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._error(404, f"no route {self.path}")
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._error(400, "request body is not JSON")
            return
        request = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        with script.lock:
            script.requests.append(request)
            if script.down == "503":
                answer: Answer | None = None
            elif request.mode == "json_schema" and script.reject_json_schema:
                answer = Answer(LLAMA_CPP_JSON_SCHEMA_ERROR, status=500)
            elif request.body.get("tools") and script.tools == "rejected":
                answer = Answer(LLAMA_CPP_TOOLS_ERROR, status=500)
            else:
                answer = script.answers.popleft() if script.answers else Answer(EXHAUSTED_ERROR, status=500)
        if answer is None:
            self._error(503, "service unavailable")
            return
        if answer.reply is not None:
            answer = replace(answer, text=answer.reply(request))
        if answer.delay_s:
            time.sleep(answer.delay_s)
        if answer.status != 200:
            self._error(answer.status, answer.text)
            return
        if answer.trickle_s:
            self._trickle(self._completion(request, answer), answer)
            return
        self._reply(200, self._completion(request, answer))

    def _trickle(self, payload: dict[str, Any], answer: Answer) -> None:
        """A slow-drip server: every byte arrives in time for a per-read timeout, the answer never does."""
        data = json.dumps(payload).encode()
        data = b" " * max(0, int(answer.trickle_for_s / answer.trickle_s) - len(data)) + data  # JSON allows it
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            for i in range(len(data)):
                self.wfile.write(data[i:i + 1])
                time.sleep(answer.trickle_s)
        except ConnectionError:
            pass  # the client gave up (the deadline test); nothing to tell it

    def _completion(self, request: Request, answer: Answer) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": answer.text}
        finish = answer.finish_reason or "stop"
        tools = request.body.get("tools") or []
        if tools and self.server.script.tools == "supported":
            choice = request.body.get("tool_choice")
            name = (
                choice["function"]["name"]
                if isinstance(choice, dict) and "function" in choice
                else tools[0]["function"]["name"]
            )
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": f"call_{len(self.server.script.requests)}",
                        "type": "function",
                        "function": {"name": name, "arguments": answer.text},
                    }
                ],
            }
            finish = answer.finish_reason or "tool_calls"
        return {
            "id": f"chatcmpl-scripted-{len(self.server.script.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.body.get("model", "scripted"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": usage(request, answer),
        }


def usage(request: Request, answer: Answer) -> dict[str, int]:
    """The answer's usage: scripted figures when given, else counted as open servers count them
    (llama.cpp, vLLM): the messages and the tools, which their chat templates put into the prompt,
    but not a `json_schema` response format, which constrains decoding without entering the prompt;
    and what it wrote. Four characters a token, the healer's offline estimate (no tokenizer here)."""
    sent = "".join(str(m.get("content") or "") for m in request.body.get("messages") or [])
    sent += json.dumps(request.body.get("tools") or "") if request.mode == "function_calling" else ""
    prompt = answer.prompt_tokens if answer.prompt_tokens is not None else estimate_tokens(sent)
    completion = answer.completion_tokens if answer.completion_tokens is not None else estimate_tokens(answer.text)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    script: _Script


class ScriptedLLM:
    """The scripted server; start with ``with ScriptedLLM() as llm`` or ``start()`` / ``stop()``."""

    def __init__(self) -> None:
        self._script = _Script()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- lifecycle ---
    def start(self) -> ScriptedLLM:
        self._server = _Server(("127.0.0.1", self.port), _Handler)
        self._server.script = self._script
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="scripted-llm", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops serving: the port then refuses connections (the "endpoint down" case)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ScriptedLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # --- script ---
    def add(self, text: str | dict[str, Any], **options: Any) -> ScriptedLLM:
        """Queues an answer: a JSON string (or a dict, dumped) or any text; see ``Answer`` for options."""
        if not isinstance(text, str):
            text = json.dumps(text)
        with self._script.lock:
            self._script.answers.append(Answer(text, **options))
        return self

    def add_reply(self, reply: Callable[[Request], str | dict[str, Any]], **options: Any) -> ScriptedLLM:
        """Queues an answer computed from the request it answers (e.g. code echoing what the model saw)."""
        def text(request: Request) -> str:
            value = reply(request)
            return value if isinstance(value, str) else json.dumps(value)
        return self.add("", reply=text, **options)

    def add_error(self, status: int, message: str) -> ScriptedLLM:
        return self.add(message, status=status)

    @property
    def remaining(self) -> int:
        return len(self._script.answers)

    @property
    def requests(self) -> list[Request]:
        with self._script.lock:
            return list(self._script.requests)

    @property
    def reject_json_schema(self) -> bool:
        return self._script.reject_json_schema

    @reject_json_schema.setter
    def reject_json_schema(self, value: bool) -> None:
        self._script.reject_json_schema = value

    @property
    def tools(self) -> str:
        return self._script.tools

    @tools.setter
    def tools(self, value: Literal["supported", "rejected", "ignored"]) -> None:
        if value not in ("supported", "rejected", "ignored"):
            raise ValueError(f"tools must be supported, rejected or ignored, not {value!r}")
        self._script.tools = value

    @property
    def down(self) -> str:
        return self._script.down

    @down.setter
    def down(self, value: Literal["", "503"]) -> None:
        if value not in ("", "503"):
            raise ValueError("down must be '' or '503' (use stop() to refuse connections)")
        self._script.down = value

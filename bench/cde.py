"""`python -m bench cde`: the local CDE's figures at scale, against a trivial endpoint served the same way.

Every server is a separate process (`python -m cde_local`, `python -m bench.trivial_server`) so the
clients of this process do not share its interpreter. The parts:

- **API latency**: with `jobs` jobs and `runs` runs stored (`cde_local.fill`), p50/p99 and requests/s
  of a filtered run list (`status[eq]failed`, 100 a page), a run's description and the trivial
  endpoint, with 1 and with 50 concurrent keep-alive clients. The ratio to the trivial endpoint is the
  figure; absolute numbers move with the machine's load.
- **Listing all runs**: every page of 100, at a quarter, half and all of `runs`: the time per run
  stays flat when listing is linear.
- **Restart**: from starting `python -m cde_local` on the filled data directory to its first answer.
- **Watcher**: an idle cycle of a healer watching that CDE with `records` incident records (every
  failed run already has its incident): HTTP calls counted at the server (its access log), and the
  cycle's time. Before it, the first cycle and the cycles that catch up on the lookback's succeeded
  runs (the anomaly scan reads their event logs, `HEAL_ANOMALY_MAX_FETCH` a cycle), counted apart.
- **Runs** (Spark; `--no-spark` skips them): what a run through the local CDE adds over a bare
  `spark-submit` of the same script, and the wall time of 4 scenarios' runs one after another against
  all at once.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from agents.config import Settings
from agents.healer import Healer
from agents.record import FailedRun, IncidentRecord, RecordStore, incident_id
from bench.errors import BenchUsageError
from cde_client import CdeClient
from cde_client.auth import derive_token_url
from cde_local.fill import fill_store

DEFAULT_OUT = Path("bench/results")
USER, PASSWORD = "bench-user", "bench-password-4821"
START_TIMEOUT_S = 60.0
LIST_PATH = "/dex/api/v1/job-runs?filter=status%5Beq%5Dfailed&limit=100&orderby=ID&orderasc=false"
SCENARIOS = ("tutorial", "divide_by_zero", "python_keyerror", "union_mismatch")
RUN_TIMEOUT_S = 900.0

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CdeBenchOptions:
    out_dir: Path = DEFAULT_OUT
    jobs: int = 1000
    runs: int = 10000
    records: int = 10000
    clients: tuple[int, ...] = (1, 50)
    requests: int = 1000  # per measurement, shared by the clients
    idle_cycles: int = 5
    spark: bool = True
    repeats: int = 3  # runs for the run-overhead part
    distill_mb: int = 100  # the driver log given to the distiller


@dataclass
class Latency:
    name: str
    clients: int
    requests: int
    p50_ms: float
    p99_ms: float
    per_s: float


@dataclass
class CdeBenchResult:
    figures: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    json_path: Path | None = None
    md_path: Path | None = None
    interrupted: bool = False


def _say(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- servers ----------------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def requests_logged(self, pattern: str) -> int:
        """Access-log lines of requests whose request line matches `pattern` (uvicorn's access log)."""
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return sum(1 for line in text.splitlines() if re.search(pattern, line))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_server(argv: list[str], log: Path, url_prefix: str) -> tuple[Server, float]:
    """Starts a server process, waits for the line that names its URL; (server, seconds to that line)."""
    started = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(url_prefix):
                return Server(process, line[len(url_prefix):].strip(), log), time.perf_counter() - started
        if process.poll() is not None:
            raise BenchUsageError(f"{' '.join(argv)} exited {process.returncode}: {log.read_text()[-2000:]}")
        time.sleep(0.02)
    process.kill()
    raise BenchUsageError(f"{' '.join(argv)} did not start in {START_TIMEOUT_S:.0f} s")


def start_cde(data_dir: Path, log: Path, *extra: str) -> tuple[Server, float]:
    argv = [sys.executable, "-m", "cde_local", "--data-dir", str(data_dir), "--port", "0",
            "--user", f"{USER}:{PASSWORD}", *extra]
    return start_server(argv, log, "JOBS_API_URL=")


@contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        server.stop()


def bearer(jobs_api_url: str) -> str:
    """A token from the CDE's Knox route, as every client gets one."""
    reply = requests.get(derive_token_url(jobs_api_url), auth=(USER, PASSWORD), timeout=30)
    reply.raise_for_status()
    return reply.json()["access_token"]


# --- latency ----------------------------------------------------------------------------------


def measure(name: str, base_url: str, paths: Callable[[random.Random], str], clients: int, requests: int,
            headers: dict[str, str]) -> Latency:
    """`requests` GETs shared by `clients` threads, each on its own keep-alive connection."""
    netloc = urlsplit(base_url).netloc
    per_client = max(1, requests // clients)
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)
    errors: list[str] = []

    def client(seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection(netloc, timeout=120)
        mine: list[float] = []
        barrier.wait()
        try:
            for _ in range(per_client):
                t0 = time.perf_counter()
                conn.request("GET", paths(rng), headers=headers)
                response = conn.getresponse()
                response.read()
                mine.append(time.perf_counter() - t0)
                if response.status != 200:
                    errors.append(f"{response.status}")
        finally:
            conn.close()
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise BenchUsageError(f"{name}: {len(errors)} requests failed (HTTP {errors[0]})")
    latencies.sort()
    return Latency(name, clients, len(latencies), 1000 * statistics.median(latencies),
                   1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], len(latencies) / wall)


def api_latency(cde: Server, trivial: Server, options: CdeBenchOptions, run_ids: list[int]) -> list[Latency]:
    auth = {"Authorization": f"Bearer {bearer(cde.url)}"}
    base = cde.url.split("/dex/api/v1")[0]
    rows = []
    for clients in options.clients:
        for name, server_url, path, headers in (
            ("trivial endpoint", trivial.url, lambda rng: "/ping", {}),
            ("run list, failed, 100 a page", base, lambda rng: LIST_PATH, auth),
            ("run description", base, lambda rng: f"/dex/api/v1/job-runs/{rng.choice(run_ids)}", auth),
        ):
            measure(name, server_url, path, clients, min(50, options.requests), headers)  # warm up
            row = measure(name, server_url, path, clients, options.requests, headers)
            _say(f"{name}, {clients} client(s): p50 {row.p50_ms:.1f} ms, p99 {row.p99_ms:.1f} ms, "
                 f"{row.per_s:.0f}/s")
            rows.append(row)
    return rows


# --- listing, restart, watcher ----------------------------------------------------------------


def list_all_runs(jobs_api_url: str) -> tuple[int, float]:
    client = CdeClient(jobs_api_url, user=USER, password=PASSWORD)
    client.list_jobs(filters=["name[eq]none"])  # the token, outside the timing
    t0 = time.perf_counter()
    runs = client.list_runs(order_by="ID", ascending=True)
    return len(runs), time.perf_counter() - t0


def fill_records(healer_dir: Path, failed: list[tuple[str, int]], total: int) -> None:
    """An incident for every failed run, then more of other jobs up to `total` (all ended)."""
    store = RecordStore(healer_dir)  # as the healer keeps them under HEALER_DATA_DIR
    now = datetime.now(timezone.utc)
    pairs = list(failed[:total])
    pairs += [(f"retired-job-{i % 500:03d}", 1_000_000 + i) for i in range(total - len(pairs))]
    for job, run_id in pairs:
        store.save(IncidentRecord(
            incident_id=incident_id(job, run_id), job=job, run_id=run_id, state="healed",
            failed_run=FailedRun(id=run_id, job=job, status="failed"),
            opened_at=(now - timedelta(hours=1)).isoformat()))


MAX_CATCH_UP_CYCLES = 50  # a start over a busy lookback: the anomaly scan reads HEAL_ANOMALY_MAX_FETCH logs a cycle


def watcher_cycles(cde: Server, healer_dir: Path, cycles: int) -> dict[str, Any]:
    """The watcher's first cycle, the cycles that catch up on the lookback's succeeded runs (their event
    logs, read for the anomaly scan a bounded number a cycle), then `cycles` idle ones."""
    env = {"JOBS_API_URL": cde.url, "WORKLOAD_USER": USER, "WORKLOAD_PASSWORD": PASSWORD,
           "HEALER_DATA_DIR": str(healer_dir), "HEAL_MODE": "auto"}
    healer = Healer(Settings.from_env(env, dotenv=None))
    pattern = r'"GET /dex/api/v1/'

    def cycle() -> tuple[float, int]:
        before = cde.requests_logged(pattern)
        t0 = time.perf_counter()
        healer.watched_cycle()
        seconds = time.perf_counter() - t0
        time.sleep(0.3)  # the access log line is written after the answer
        return seconds, cde.requests_logged(pattern) - before

    first_s, first_calls = cycle()
    catch_up: list[int] = []
    calls = first_calls
    while calls > 1 and len(catch_up) < MAX_CATCH_UP_CYCLES:
        _, calls = cycle()
        if calls > 1:
            catch_up.append(calls)
    times, calls_list = [], []
    for _ in range(cycles):
        seconds, calls = cycle()
        times.append(seconds)
        calls_list.append(calls)
    if healer.watch_status.last_error:
        raise BenchUsageError(f"the watcher's cycle failed: {healer.watch_status.last_error}")
    return {"first_cycle_s": first_s, "first_cycle_calls": first_calls, "catch_up_cycle_calls": catch_up,
            "idle_cycle_ms_median": 1000 * statistics.median(times), "idle_cycle_ms_max": 1000 * max(times),
            "idle_cycle_calls": calls_list}


# --- distillation ---------------------------------------------------------------------------

ERROR_TAIL = (
    'Traceback (most recent call last):\n  File "/app/mount/report.py", line 12, in <module>\n'
    '    report = spark.sql("SELECT customer_id FROM accounts")\n'
    "pyspark.errors.exceptions.captured.AnalysisException: [UNRESOLVED_COLUMN.WITH_SUGGESTION] A column, "
    "variable, or function parameter with name `customer_id` cannot be resolved. Did you mean one of the "
    "following? [`account_id`, `balance`]. SQLSTATE: 42703\n")


def distill_large_log(megabytes: int = 100) -> dict[str, Any]:
    """A driver log of `megabytes` MB of INFO chatter ending in an error, through the distiller."""
    from agents.distill import distill

    chatter = "26/11/21 08:53:33 INFO BlockManager: Removed broadcast_7_piece0 on localhost:34031 in memory\n"
    log = chatter * (megabytes * 1_000_000 // len(chatter)) + ERROR_TAIL
    t0 = time.perf_counter()
    evidence = distill(log, "", token_budget=250, app_file_name="report.py")
    seconds = time.perf_counter() - t0
    if evidence.error_class != "UNRESOLVED_COLUMN.WITH_SUGGESTION":
        raise BenchUsageError(f"the distiller missed the error of the large log: {evidence.error_class!r}")
    return {"megabytes": round(len(log) / 1e6, 1), "seconds": seconds}


# --- Spark runs -------------------------------------------------------------------------------

TRIVIAL_JOB = 'from pyspark.sql import SparkSession\nspark = SparkSession.builder.getOrCreate()\n' \
              'print("rows", spark.range(1000).count())\nspark.stop()\n'


def run_overhead(work: Path, repeats: int) -> dict[str, Any]:
    """A trivial script: bare spark-submit against the same script as a job of the local CDE."""
    from cde_local.config import LocalCdeConfig
    from cde_local.runner import spark_home

    script = work / "trivial_job.py"
    script.write_text(TRIVIAL_JOB)
    config = LocalCdeConfig(data_dir=work / "bare")
    submit = spark_home(sys.executable) / "bin" / "spark-submit"
    bare_argv = [str(submit), "--master", config.spark_master, "--conf", "spark.ui.enabled=false",
                 "--conf", f"spark.driver.extraJavaOptions={' '.join(config.driver_jvm_flags)}", str(script)]
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    server, _ = start_cde(work / "cde-runs", work / "cde-runs.log")
    bare, through = [], []
    with running(server):
        client = CdeClient(server.url, user=USER, password=PASSWORD)
        client.create_resource("trivial-files")
        client.upload_file("trivial-files", "trivial_job.py", script.read_bytes())
        client.create_job({"name": "trivial", "type": "spark", "mounts": [{"resourceName": "trivial-files"}],
                           "spark": {"file": "trivial_job.py"}})
        client.wait_run(client.run_job("trivial"), timeout_s=RUN_TIMEOUT_S, poll_s=0.1)  # metastore, caches
        for i in range(repeats):
            t0 = time.perf_counter()
            done = subprocess.run(bare_argv, env=env, cwd=work, capture_output=True, timeout=RUN_TIMEOUT_S)
            bare.append(time.perf_counter() - t0)
            if done.returncode != 0:
                raise BenchUsageError(f"bare spark-submit failed: {done.stderr.decode()[-2000:]}")
            t0 = time.perf_counter()
            run = client.wait_run(client.run_job("trivial"), timeout_s=RUN_TIMEOUT_S, poll_s=0.1)
            through.append(time.perf_counter() - t0)
            if run.status != "succeeded":
                raise BenchUsageError(f"the trivial job's run {run.id} ended {run.status}")
            _say(f"run overhead {i + 1}/{repeats}: bare {bare[-1]:.1f} s, through the local CDE {through[-1]:.1f} s")
    return {"bare_s": bare, "local_cde_s": through,
            "added_s_median": statistics.median(through) - statistics.median(bare)}


def scenarios_side_by_side(work: Path) -> dict[str, Any]:
    """The 4 scenarios' application runs one after another, then all at once (default concurrency)."""
    from sample_jobs import get_scenario, install_scenario, run_job_and_wait

    server, _ = start_cde(work / "cde-scenarios", work / "cde-scenarios.log")
    with running(server):
        client = CdeClient(server.url, user=USER, password=PASSWORD)
        scenarios = [get_scenario(name) for name in SCENARIOS]
        setups_done: set[str] = set()
        for scenario in scenarios:
            install_scenario(client, scenario)
            for job in scenario.setup_runs:
                if job not in setups_done:
                    run_job_and_wait(client, job, timeout_s=RUN_TIMEOUT_S)
                    setups_done.add(job)
        t0 = time.perf_counter()
        for scenario in scenarios:
            run_job_and_wait(client, scenario.app_job, timeout_s=RUN_TIMEOUT_S)
        one_by_one = time.perf_counter() - t0
        _say(f"4 scenarios one after another: {one_by_one:.1f} s")
        t0 = time.perf_counter()
        ids = [client.run_job(scenario.app_job) for scenario in scenarios]
        for run_id in ids:
            client.wait_run(run_id, timeout_s=RUN_TIMEOUT_S, poll_s=0.2)
        together = time.perf_counter() - t0
        _say(f"4 scenarios at once: {together:.1f} s")
    return {"scenarios": list(SCENARIOS), "one_after_another_s": one_by_one, "at_once_s": together,
            "max_concurrent_runs": os.cpu_count() or 1}


# --- the benchmark ----------------------------------------------------------------------------


def run_cde_bench(options: CdeBenchOptions) -> CdeBenchResult:
    if options.jobs < 1 or options.runs < 4 or options.records < 0:
        raise BenchUsageError("need at least 1 job, 4 runs and no negative record count")
    result = CdeBenchResult()
    figures = result.figures
    figures["stored"] = {"jobs": options.jobs, "runs": options.runs, "records": options.records}
    work = Path(tempfile.mkdtemp(prefix="bench-cde-"))
    try:
        _say(f"filling a local CDE with {options.jobs} jobs and {options.runs} runs")
        data = work / "cde"
        filled = fill_store(data, jobs=options.jobs, runs=options.runs, user=USER, password=PASSWORD)
        trivial, _ = start_server([sys.executable, "-m", "bench.trivial_server"], work / "trivial.log", "URL=")
        with running(trivial):
            cde, _ = start_cde(data, work / "cde.log")
            with running(cde):
                rows = api_latency(cde, trivial, options, filled.run_ids)
                figures["latency"] = [row.__dict__ for row in rows]
                _say(f"filling {options.records} incident records")
                fill_records(work / "healer", filled.failed, options.records)
                figures["watcher"] = watcher_cycles(cde, work / "healer", options.idle_cycles)
                _say(f"watcher: {figures['watcher']}")
            restarts = []
            for _ in range(3):
                server, seconds = start_cde(data, work / "restart.log")
                with running(server):
                    t0 = time.perf_counter()
                    CdeClient(server.url, user=USER, password=PASSWORD).list_jobs(filters=["name[eq]x"])
                    restarts.append(seconds + time.perf_counter() - t0)
            figures["restart_s"] = restarts
            _say(f"restart with {options.jobs} jobs, {options.runs} runs: {min(restarts):.2f}-{max(restarts):.2f} s")
        listing = []
        for share in (4, 2, 1):
            n = options.runs // share
            d = work / f"list-{n}"
            fill_store(d, jobs=options.jobs, runs=n, user=USER, password=PASSWORD)
            server, _ = start_cde(d, work / f"list-{n}.log")
            with running(server):
                count, seconds = list_all_runs(server.url)
            listing.append({"runs": count, "seconds": seconds, "us_per_run": 1e6 * seconds / max(1, count)})
            _say(f"listing all {count} runs: {seconds:.2f} s")
        figures["list_all"] = listing
        figures["distill"] = distill_large_log(options.distill_mb)
        _say(f"distilling a {figures['distill']['megabytes']} MB log: {figures['distill']['seconds']:.1f} s")
        if options.spark:
            figures["run_overhead"] = run_overhead(work, options.repeats)
            figures["side_by_side"] = scenarios_side_by_side(work)
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result.text = format_figures(figures)
    options.out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"cde-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}"
    result.json_path = options.out_dir / f"{stem}.json"
    result.md_path = options.out_dir / f"{stem}.md"
    result.json_path.write_text(json.dumps(figures, indent=2) + "\n")
    result.md_path.write_text(f"# {stem}\n\n```\n{result.text}\n```\n")
    return result


def format_figures(figures: dict[str, Any]) -> str:
    lines = []
    stored = figures.get("stored", {})
    lines.append(f"stored: {stored.get('jobs')} jobs, {stored.get('runs')} runs, {stored.get('records')} incident records")
    rows = figures.get("latency", [])
    if rows:
        lines.append(f"{'request':32} {'clients':>7} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>7} {'p50 ×trivial':>13}")
        trivial = {r["clients"]: r["p50_ms"] for r in rows if r["name"] == "trivial endpoint"}
        for r in rows:
            ratio = r["p50_ms"] / trivial[r["clients"]] if trivial.get(r["clients"]) else float("nan")
            lines.append(f"{r['name']:32} {r['clients']:>7} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
                         f"{r['per_s']:>7.0f} {ratio:>13.1f}")
    for entry in figures.get("list_all", []):
        lines.append(f"listing all {entry['runs']:>6} runs: {entry['seconds']:6.2f} s ({entry['us_per_run']:.0f} µs a run)")
    if "restart_s" in figures:
        restarts = figures["restart_s"]
        lines.append(f"restart to first answer: median {statistics.median(restarts):.2f} s (of {len(restarts)})")
    watcher = figures.get("watcher")
    if watcher:
        catch_up = watcher.get("catch_up_cycle_calls") or []
        lines.append(f"watcher: first cycle {watcher['first_cycle_s']:.2f} s, {watcher['first_cycle_calls']} calls; "
                     + (f"then {len(catch_up)} cycles catching up on the lookback's succeeded runs (calls "
                        f"{catch_up}); " if catch_up else "")
                     + f"idle cycle median {watcher['idle_cycle_ms_median']:.0f} ms (max "
                     f"{watcher['idle_cycle_ms_max']:.0f}), calls {watcher['idle_cycle_calls']}")
    if "distill" in figures:
        lines.append(f"distilling a {figures['distill']['megabytes']} MB driver log: {figures['distill']['seconds']:.1f} s")
    overhead = figures.get("run_overhead")
    if overhead:
        lines.append(f"run through the local CDE vs bare spark-submit: +{overhead['added_s_median']:.2f} s "
                     f"(median {statistics.median(overhead['local_cde_s']):.1f} s vs "
                     f"{statistics.median(overhead['bare_s']):.1f} s)")
    side = figures.get("side_by_side")
    if side:
        lines.append(f"4 scenarios ({', '.join(side['scenarios'])}): one after another {side['one_after_another_s']:.1f} s, "
                     f"at once {side['at_once_s']:.1f} s (max {side['max_concurrent_runs']} runs at once)")
    return "\n".join(lines)

"""`python -m bench heal`: every sample scenario through the self-healing agent, as a table.

For each scenario: load it into a CDE (the data generators shared by several scenarios run once),
take its failed application run, heal it with a fresh `Healer` and its own HEALER_DATA_DIR, and
compute the row from the incident record and the run durations the CDE reports
(`bench/figures.py`). A scenario that errors becomes a row with the error; the others still run.

Model modes: "scripted" (the scripted OpenAI-compatible server `bench/scripted_llm.py`, the one the
tests use too, answering with each scenario's known-good fix from `bench/fixes/`; with `deceptive`,
one row per known-WRONG fix of `bench/deceptive/<scenario>/<variant>/`, the model's only patch, rules'
fixes off, one attempt: none may end healed, the "false heals" figure; the row's reason says what
stopped it, the guard or the data comparison), "env" (a real
endpoint from the LLM_* variables; rules only when they are not set), "none" (rules only). The
environment and ./.env are read by `agents.config.load_environment`, as the healer reads them.

Every wait has a limit: each Spark run (loading and healing) `run_timeout_s`, python-env builds
`ENV_BUILD_TIMEOUT_S`, model calls the healer's LLM_TIMEOUT_S.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from agents.config import Settings, env_name, load_environment
from agents.errors import ConfigError
from agents.healer import Healer, make_client
from agents.record import IncidentRecord, RecordStore, incident_id
from agents.times import utc_stamp
from bench import scripted
from bench.errors import BenchUsageError, ScenarioSkipped
from bench.figures import (
    HealRow,
    ScenarioInfo,
    error_row,
    healer_run_ids,
    row_from_record,
    sandbox_run_ids,
    summarize,
)
from bench.report import format_table, write_reports
from bench.scripted_llm import ScriptedLLM
from cde_client import CdeClient, CdeError
from sample_jobs import Scenario, fail_again, list_scenarios, load_scenario

ModelMode = Literal["scripted", "env", "none"]
CdeMode = Literal["local", "env"]

BENCH_USER, BENCH_PASSWORD = "bench-user", "bench-password-4821"
SCRIPTED_KEY = "bench-scripted-key-7315"  # the scripted server ignores it; the healer must redact it
RUN_TIMEOUT_S = 900.0  # one Spark run (10-30 s normally; much more on a busy shared machine)
ENV_BUILD_TIMEOUT_S = 900.0  # one python-env build
RUN_POLL_S = "1"  # the healer's look at a fix run: finer than the product's 3 s, so time is not lost
SCRIPTED_LLM_TIMEOUT_S = "30"
DEFAULT_OUT = Path("bench/results")
CDE_SETTINGS = ("jobs_api_url", "workload_user", "workload_password", "cde_token", "token_url")  # --cde env
FORCED = {"HEAL_MODE": "auto"}  # approve mode would pause every incident for a human

Progress = Callable[[str], None]


@dataclass(frozen=True)
class HealBenchOptions:
    scenarios: tuple[str, ...] = ()  # empty: every scenario
    out_dir: Path = DEFAULT_OUT
    model: ModelMode = "scripted"
    cde: CdeMode = "local"
    keep_data: Path | None = None
    run_timeout_s: float = RUN_TIMEOUT_S
    deceptive: bool = False  # scripted model only: the known-wrong fixes of bench/deceptive, one row each


@dataclass
class HealBenchResult:
    rows: list[HealRow]
    meta: dict[str, Any]
    table: str
    json_path: Path
    md_path: Path
    interrupted: bool = False


def progress_to_stderr(message: str) -> None:
    """The benchmarks' progress lines, time-stamped, on stderr (the table goes to stdout)."""
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def select_scenarios(names: tuple[str, ...]) -> list[Scenario]:
    """The scenarios asked for (all when none), in the order asked; unknown names are an error. Anomaly
    scenarios (silent failures: their runs succeed) have no failed run to heal and are left out."""
    catalogue = [s for s in list_scenarios() if not s.is_anomaly]
    if not names:
        return catalogue
    by_name = {s.name: s for s in catalogue}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise BenchUsageError(f"unknown scenario(s) {', '.join(unknown)}; available: {', '.join(by_name)} "
                              "(anomaly scenarios succeed: nothing to heal)")
    return [by_name[n] for n in dict.fromkeys(names)]


def model_variables(mode: ModelMode, env: Mapping[str, str]) -> tuple[dict[str, str], str]:
    """(LLM_* variables for the healer, a label) for the modes that do not start a server."""
    if mode == "env":
        llm = {k: v for k, v in env.items() if k.startswith("LLM_") and v}
        if not llm.get("LLM_ENDPOINT_BASE_URL"):
            return {}, "env: LLM_ENDPOINT_BASE_URL not set, rules only"
        return llm, f"env: {llm.get('LLM_MODEL_ID') or 'default model'} at {llm['LLM_ENDPOINT_BASE_URL']}"
    if mode == "none":
        return {}, "none: rules only"
    return {}, "scripted: known-good fixes from bench/fixes through the scripted OpenAI-compatible server"


def healer_environment(cde_vars: Mapping[str, str], data_dir: Path, model_vars: Mapping[str, str],
                       env: Mapping[str, str], run_timeout_s: float) -> dict[str, str]:
    """The environment a user would give the healer: the caller's HEAL_* tuning, then ours."""
    values = {"HEAL_RUN_POLL_S": RUN_POLL_S}
    values.update({k: v for k, v in env.items() if k.startswith("HEAL_")})
    values.update(cde_vars)
    values.update(model_vars)
    values.update(FORCED, HEALER_DATA_DIR=str(data_dir), HEAL_RUN_TIMEOUT_S=str(run_timeout_s))
    return values


@dataclass
class _Context:
    options: HealBenchOptions
    env: dict[str, str]
    client: CdeClient
    cde_vars: dict[str, str]
    healer_root: Path
    model_vars: dict[str, str]
    progress: Progress
    generated: set[str] = field(default_factory=set)  # data generators already run in this CDE
    loaded: set[str] = field(default_factory=set)  # scenarios loaded in this CDE (deceptive rows re-run the app)

    def durations(self, record: IncidentRecord | None) -> dict[int, float | None]:
        """Seconds from start to end of the failed run and of every run the healer started."""
        if record is None:
            return {}
        fixes, checks = healer_run_ids(record)
        preflights, sandboxed = sandbox_run_ids(record)
        result: dict[int, float | None] = {}
        for run_id in [record.run_id, *fixes, *checks, *preflights, *sandboxed]:
            try:
                run = self.client.get_run(run_id)
            except CdeError:
                result[run_id] = None
                continue
            ok = run.started is not None and run.ended is not None
            result[run_id] = round((run.ended - run.started).total_seconds(), 3) if ok else None  # type: ignore[operator]
        return result


def _load_failed_run(ctx: _Context, scenario: Scenario) -> int:
    if scenario.name in ctx.loaded:  # loaded for an earlier row: one more failure, the last good output restored
        again = fail_again(ctx.client, scenario, progress=ctx.progress, run_timeout_s=ctx.options.run_timeout_s)
        if again.status != "failed" or again.app_run_id is None:
            raise ScenarioSkipped(f"the application run {again.app_run_id} of {scenario.app_job} ended "
                                  f"{again.status}, not failed")
        return again.app_run_id
    ctx.loaded.add(scenario.name)
    result = load_scenario(ctx.client, scenario, skip_setup=ctx.generated, progress=ctx.progress,
                           run_timeout_s=ctx.options.run_timeout_s, env_timeout_s=ENV_BUILD_TIMEOUT_S)
    ctx.generated.update(scenario.setup_runs)
    if result.status != "failed" or result.app_run_id is None:
        raise ScenarioSkipped(f"the application run {result.app_run_id} of {scenario.app_job} ended "
                              f"{result.status}, not failed: nothing to heal")
    return result.app_run_id


DECEPTIVE_REQUESTS = 8  # replies the deceptive model has ready: a diagnosis, patch tries, their retries


def _start_scripted(answers: list[dict[str, Any]] | scripted.DeceptiveModel) -> ScriptedLLM:
    llm = ScriptedLLM().start()
    if isinstance(answers, scripted.DeceptiveModel):
        for _ in range(DECEPTIVE_REQUESTS):
            llm.add_reply(answers)
        return llm
    for answer in answers:
        llm.add(answer)
    return llm


def _heal(ctx: _Context, scenario: Scenario, run_id: int, data_dir: Path,
          variant: Path | None = None) -> tuple[IncidentRecord, int | None]:
    """Heals the run with a fresh Healer; (its record, scripted answers left unused or None)."""
    llm = None
    if ctx.options.model == "scripted":
        llm = _start_scripted(scripted.DeceptiveModel(scenario, variant) if variant else scripted.answers(scenario))
    try:
        model_vars = dict(ctx.model_vars)
        if variant is not None:  # the model's wrong patch is the one tried (not a rule's fix), once
            model_vars.update(HEAL_DETERMINISTIC_FIXES="false", HEAL_MAX_ATTEMPTS="1")
        if llm is not None:
            model_vars.update(LLM_ENDPOINT_BASE_URL=llm.base_url, LLM_MODEL_ID="scripted",
                              LLM_CDP_TOKEN=SCRIPTED_KEY, LLM_TIMEOUT_S=SCRIPTED_LLM_TIMEOUT_S)
        env = healer_environment(ctx.cde_vars, data_dir, model_vars, ctx.env, ctx.options.run_timeout_s)
        healer = Healer(Settings.from_env(env, dotenv=None))
        try:
            record = healer.heal(scenario.app_job, run_id, progress=lambda node: ctx.progress(f"  stage {node}"))
        finally:
            healer.close()
            healer.deps.client.close()
        return record, (llm.remaining if llm is not None and variant is None else None)
    finally:
        if llm is not None:
            llm.stop()


def bench_scenario(ctx: _Context, scenario: Scenario, variant: Path | None = None) -> HealRow:
    """One scenario's row (of one known-wrong fix: `variant`); every error becomes the row's error."""
    label = f"{scenario.name}/{variant.name}" if variant else scenario.name
    info = ScenarioInfo(label, scenario.failure_class, scenario.expected)
    if ctx.options.model == "scripted":
        try:
            scripted.answers(scenario)  # no known fix: say so before spending Spark runs
        except ScenarioSkipped as exc:
            return error_row(info, str(exc))
    try:
        run_id = _load_failed_run(ctx, scenario)
    except ScenarioSkipped as exc:
        return error_row(info, str(exc))
    except Exception as exc:  # a broken scenario must not stop the benchmark
        return error_row(info, f"loading failed: {type(exc).__name__}: {exc}")
    ctx.progress(f"  {scenario.app_job} run {run_id} failed as expected; healing it")
    data_dir = ctx.healer_root / label.replace("/", "--")
    try:
        record, unused = _heal(ctx, scenario, run_id, data_dir, variant)
    except BenchUsageError:
        raise
    except Exception as exc:  # the healer crashed: keep what its record says
        partial = _saved_record(data_dir, scenario.app_job, run_id)
        row = error_row(info, f"healing raised {type(exc).__name__}: {exc}", partial, ctx.durations(partial))
        row.run_id = run_id
        return row
    row = row_from_record(info, record, ctx.durations(record), deceptive=variant is not None)
    row.unused_answers = unused
    return row


def bench_items(options: HealBenchOptions, scenarios: list[Scenario]) -> list[tuple[Scenario, Path | None]]:
    """What to run: each scenario once, or with `deceptive` each known-wrong fix of each scenario."""
    if not options.deceptive:
        return [(s, None) for s in scenarios]
    items = [(s, v) for s in scenarios for v in scripted.deceptive_variants(s)]
    if not items:
        raise BenchUsageError("no deceptive fixes for the scenarios asked (bench/deceptive/<scenario>/<variant>/)")
    return items


def _saved_record(data_dir: Path, job: str, run_id: int) -> IncidentRecord | None:
    try:
        return RecordStore(data_dir).load(incident_id(job, run_id))
    except (OSError, ValueError):
        return None


def _cde_variables(options: HealBenchOptions, env: Mapping[str, str]) -> dict[str, str]:
    names = [env_name(s) for s in CDE_SETTINGS]
    cde_vars = {k: env[k] for k in names if env.get(k)}
    if not cde_vars.get("JOBS_API_URL"):
        raise BenchUsageError("--cde env needs JOBS_API_URL (and WORKLOAD_USER, WORKLOAD_PASSWORD) "
                              "in the environment or in ./.env")
    return cde_vars


def _check_settings(cde_vars: Mapping[str, str], model_vars: Mapping[str, str], env: Mapping[str, str],
                    options: HealBenchOptions) -> None:
    """The healer's settings as each scenario will build them, validated once before any Spark run."""
    placeholders = {"JOBS_API_URL": "http://127.0.0.1:1/dex/api/v1", "WORKLOAD_USER": BENCH_USER,
                    "WORKLOAD_PASSWORD": BENCH_PASSWORD}
    model = dict(model_vars)
    if options.model == "scripted":
        model.update(LLM_ENDPOINT_BASE_URL="http://127.0.0.1:1/v1", LLM_TIMEOUT_S=SCRIPTED_LLM_TIMEOUT_S)
    try:
        Settings.from_env(healer_environment(cde_vars or placeholders, Path("."), model, env, options.run_timeout_s),
                          dotenv=None)
    except ConfigError as exc:
        raise BenchUsageError(f"the healer's settings are invalid: {exc}") from None


def run_heal_bench(options: HealBenchOptions, *, environ: Mapping[str, str] | None = None,
                   dotenv: Path | None = Path(".env"), progress: Progress = progress_to_stderr) -> HealBenchResult:
    """Runs the benchmark and writes its reports; raises BenchUsageError before any work on bad input."""
    if options.run_timeout_s <= 0:
        raise BenchUsageError("the run timeout must be positive")
    if options.deceptive and options.model != "scripted":
        raise BenchUsageError("--deceptive replays known-wrong fixes through the scripted model: use --model scripted")
    scenarios = select_scenarios(options.scenarios)
    env = load_environment(environ, dotenv)
    model_vars, model_label = model_variables(options.model, env)
    if options.model == "env" and not model_vars:
        progress("LLM_ENDPOINT_BASE_URL is not set: the benchmark runs on the rules alone")
    cde_vars = _cde_variables(options, env) if options.cde == "env" else {}
    _check_settings(cde_vars, model_vars, env, options)

    started = datetime.now(timezone.utc)
    temp_root = None
    root = options.keep_data
    if root is None:
        temp_root = Path(tempfile.mkdtemp(prefix="bench-heal-"))
        root = temp_root
    root = root.expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    cde = None
    rows: list[HealRow] = []
    interrupted = False
    load_before = os.getloadavg()
    try:
        if options.cde == "local":
            from cde_local import LocalCde, LocalCdeConfig, LocalCdeError

            try:
                cde = LocalCde(LocalCdeConfig(
                    data_dir=root / "cde", users={BENCH_USER: BENCH_PASSWORD}, run_timeout_s=options.run_timeout_s,
                    pyenv_pip_args=("--no-index",),  # offline: python envs come from the main environment's packages
                )).start()
            except LocalCdeError as exc:  # e.g. another local CDE holds --keep-data's directory
                raise BenchUsageError(f"cannot start the local CDE in {root / 'cde'}: {exc}") from None
            cde_vars = {"JOBS_API_URL": cde.jobs_api_url, "WORKLOAD_USER": BENCH_USER,
                        "WORKLOAD_PASSWORD": BENCH_PASSWORD}
            progress(f"local CDE at {cde.jobs_api_url} (data in {root / 'cde'})")
        try:
            client = make_client(Settings.from_env({**cde_vars, "HEALER_DATA_DIR": str(root)}, dotenv=None))
        except ConfigError as exc:
            raise BenchUsageError(str(exc)) from None
        try:
            client.info()  # reachable, and the credentials work: otherwise every scenario would fail alike
        except CdeError as exc:
            client.close()
            raise BenchUsageError(f"cannot use the CDE at {cde_vars['JOBS_API_URL']}: {exc}") from None
        ctx = _Context(options=options, env=env, client=client, cde_vars=cde_vars,
                       healer_root=root / "healer", model_vars=model_vars, progress=progress)
        items = bench_items(options, scenarios)
        try:
            for number, (scenario, variant) in enumerate(items, 1):
                progress(f"[{number}/{len(items)}] {scenario.summary()}" + (f" — wrong fix {variant.name}"
                                                                          if variant else ""))
                began = time.monotonic()
                row = bench_scenario(ctx, scenario, variant)
                rows.append(row)
                progress(f"  → {row.outcome}{'' if row.right else ' (NOT as expected)'} "
                         f"in {time.monotonic() - began:.0f} s{': ' + row.error if row.error else ''}")
        except KeyboardInterrupt:
            interrupted = True
            progress("interrupted: writing the rows done so far")
        finally:
            client.close()
    finally:
        if cde is not None:
            cde.stop()
        if temp_root is not None:
            shutil.rmtree(temp_root, ignore_errors=True)

    finished = datetime.now(timezone.utc)
    summary = summarize(rows)
    meta: dict[str, Any] = {
        "started": utc_stamp(started),
        "finished": utc_stamp(finished),
        "duration_s": round((finished - started).total_seconds(), 1),
        "model": model_label,
        "cde": "local (in-process, real Spark)" if options.cde == "local" else cde_vars["JOBS_API_URL"],
        "scenarios": [s.name for s in scenarios],
        "deceptive": options.deceptive,
        "interrupted": interrupted,
        "healer_settings": {k: v for k, v in healer_environment({}, Path("."), {}, env, options.run_timeout_s).items()
                            if k != "HEALER_DATA_DIR"},
        "load_average": {"start": [round(x, 2) for x in load_before],
                         "end": [round(x, 2) for x in os.getloadavg()]},
        "cpus": os.cpu_count(),
    }
    if options.keep_data is not None:
        meta["data"] = str(root)
    table = format_table(rows, summary)
    stem = "heal-" + started.strftime("%Y%m%d-%H%M%S")
    json_path, md_path = write_reports(options.out_dir, stem, rows, summary, meta)
    return HealBenchResult(rows=rows, meta=meta, table=table, json_path=json_path, md_path=md_path,
                           interrupted=interrupted)

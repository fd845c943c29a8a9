"""`python -m bench anomaly [--jobs 200] [--days 60] [--seed 1] [--rate 0.03] [--window 30] [--out DIR]
[--write-detector PATH]`: the anomaly detector (`agents.anomaly`) on a generated fleet history with silent
failures injected. `--write-detector` also writes the detector artefact (`agents/anomaly/artefact.py`:
the parameters judged with, this run's figures) for the model registry (`python -m app policy register
--detector PATH`).

**The generated history.** Each job has its own scale (1e3..1e8 rows read a day, log-uniform), share
of rows written, bytes per row read and written, shuffle (none for a fifth of the jobs), spill (a
quarter of the jobs spill), peak memory, duration (20 s..1 h) and noise: the day's volume varies
by a log-normal factor of sigma 5-20% (the job's noise level), the duration by 0.8-1.3x that, the
rows written by a third of it on top, the bytes per written row by 1-5%. 40% of the jobs have a
weekly pattern (weekend volume x0.4-0.8), 40% grow slowly (0.2-1% a day), 2% of the runs are a
legitimate bump (volume x1.1-1.35: month end, a holiday), 5% of the runs retry 1-3 failed tasks.

**Silent failures** are injected into `--rate` (3%) of the runs after each job's first
`WARMUP_DAYS` (15), their kind drawn evenly: `zero_rows` (0 rows written, a few KB of empty files,
shuffle x0.3-1, duration x0.6-1), `explosion` (rows and bytes read and written, shuffle, spill and
duration x10 with 10% noise, peak memory x2-4), `null_column` (bytes written x0.5-0.7, rows
unchanged), `slow` (duration x4).

**The judging** is what the healer would do: each run (from its `as_features`-shaped counters,
through `derive`) is judged against the job's last `--window` (30) good runs, oldest first. An
injected failure never joins the history (an operator would not mark it expected); an ordinary run
always does, flagged or not (the operator marks a false alarm expected).

**Figures.** An alarm on an injected run is a true alarm, on an ordinary run a false one.
precision = true / (true + false alarms); recall = true alarms / injected runs (overall and per
kind); false alarms per 1,000 ordinary runs judged (those with at least 3 good runs before them: the
others cannot raise one). The judging time per run (median, p95), and apart the runs whose forest
was fitted (the cost), in wall-clock and in this process's CPU time (the machine may be shared);
the evidence runs that the forest's score cleared. Deterministic for a seed (times aside).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from agents.anomaly import DEFAULT_PARAMETERS, DetectorParameters, Judgement, derive, judge
from agents.anomaly import artefact as detector_artefact
from agents.anomaly.detector import MIN_GUARD_HISTORY
from bench.errors import BenchUsageError

DEFAULT_OUT = Path("bench/results")
KINDS: tuple[str, ...] = ("zero_rows", "explosion", "null_column", "slow")
ORDINARY = "ordinary"
WARMUP_DAYS = 15  # no failure is injected into a job's first runs
WINDOW = 30  # good runs a run is judged against
BUMP_RATE, RETRY_RATE = 0.02, 0.05
TARGET = 0.9  # the precision and recall the detector should reach on the default settings
EXAMPLES = 12  # false alarms and misses quoted in the reports

Progress = Callable[[str], None]


@dataclass(frozen=True)
class AnomalyOptions:
    out_dir: Path = DEFAULT_OUT
    jobs: int = 200
    days: int = 60
    seed: int = 1
    rate: float = 0.03  # share of the runs after WARMUP_DAYS that are silent failures
    window: int = WINDOW
    write_detector: Path | None = None  # also write the detector artefact (parameters + these figures) here

    @property
    def parameters(self) -> DetectorParameters:
        """The detector's parameters this run judges with: the defaults, over `window` runs."""
        return replace(DEFAULT_PARAMETERS, window=self.window)


# --- the generated history ---------------------------------------------------------------------------

@dataclass(frozen=True)
class JobProfile:
    """What a job does on an ordinary weekday at day 0, and how it varies."""

    rows: float  # rows read
    selectivity: float  # rows written / rows read
    read_bpr: float  # bytes per row read
    write_bpr: float  # bytes per row written
    bpr_noise: float  # sigma (log) of the bytes per row written
    shuffle: float  # shuffle bytes / bytes read; 0: no shuffle
    spill: float  # spilled bytes / shuffle bytes; 0: never spills
    memory: float  # peak execution memory, bytes
    seconds: float
    noise: float  # sigma (log) of the day's volume
    duration_noise: float  # sigma (log) of the duration
    weekend: float  # volume factor on days 5 and 6 of each week; 1: no weekly pattern
    growth: float  # daily growth of the volume; 0: none
    tables: int  # tables written (0: writes by path)


def job_profile(rng: np.random.Generator) -> JobProfile:
    noise = rng.uniform(0.05, 0.20)
    return JobProfile(
        rows=10 ** rng.uniform(3, 8), selectivity=10 ** rng.uniform(-1.3, 0), read_bpr=10 ** rng.uniform(1.7, 3.3),
        write_bpr=10 ** rng.uniform(1.5, 3), bpr_noise=rng.uniform(0.01, 0.05),
        shuffle=0.0 if rng.random() < 0.2 else rng.uniform(0.1, 1.5),
        spill=rng.uniform(0.2, 2.0) if rng.random() < 0.25 else 0.0, memory=10 ** rng.uniform(7, 10),
        seconds=10 ** rng.uniform(1.3, 3.56), noise=noise, duration_noise=noise * rng.uniform(0.8, 1.3),
        weekend=rng.uniform(0.4, 0.8) if rng.random() < 0.4 else 1.0,
        growth=rng.uniform(0.002, 0.01) if rng.random() < 0.4 else 0.0, tables=int(rng.integers(0, 4)))


def ordinary_run(job: JobProfile, day: int, rng: np.random.Generator) -> dict[str, float]:
    """One ordinary run's counters, shaped as `agents.telemetry.as_features` gives them."""
    volume = math.exp(rng.normal(0, job.noise)) * (1 + job.growth) ** day
    if day % 7 in (5, 6):
        volume *= job.weekend
    if rng.random() < BUMP_RATE:
        volume *= rng.uniform(1.1, 1.35)
    rows_read = max(1.0, round(job.rows * volume))
    bytes_read = rows_read * job.read_bpr * math.exp(rng.normal(0, 0.02))
    rows_written = max(1.0, round(rows_read * job.selectivity * math.exp(rng.normal(0, job.noise / 3))))
    shuffle = bytes_read * job.shuffle * math.exp(rng.normal(0, 0.05))
    spilled = shuffle * job.spill * math.exp(rng.normal(0, 0.3))
    return {
        "rows_read": rows_read, "bytes_read": round(bytes_read), "rows_written": rows_written,
        "bytes_written": round(rows_written * job.write_bpr * math.exp(rng.normal(0, job.bpr_noise))),
        "shuffle_read_bytes": round(shuffle), "shuffle_write_bytes": round(shuffle * math.exp(rng.normal(0, 0.02))),
        "memory_spilled_bytes": round(0.6 * spilled), "disk_spilled_bytes": round(0.4 * spilled),
        "peak_execution_memory": round(job.memory * volume ** 0.5 * math.exp(rng.normal(0, 0.1))),
        "duration_s": job.seconds * (0.3 + 0.7 * volume) * math.exp(rng.normal(0, job.duration_noise)),
        "failed_tasks": float(rng.integers(1, 4)) if rng.random() < RETRY_RATE else 0.0,
        "tables_written": float(job.tables),
    }


def inject(kind: str, run: dict[str, float], rng: np.random.Generator) -> dict[str, float]:
    """`run` turned into a silent failure of `kind` (see the module's docstring)."""
    out = dict(run)
    if kind == "zero_rows":
        out["rows_written"], out["bytes_written"] = 0.0, float(rng.integers(0, 4000))
        out["shuffle_read_bytes"] *= rng.uniform(0.3, 1.0)
        out["shuffle_write_bytes"] *= rng.uniform(0.3, 1.0)
        out["duration_s"] *= rng.uniform(0.6, 1.0)
    elif kind == "explosion":
        factor = 10 * math.exp(rng.normal(0, 0.1))
        for name in ("rows_read", "bytes_read", "rows_written", "bytes_written", "shuffle_read_bytes",
                     "shuffle_write_bytes", "memory_spilled_bytes", "disk_spilled_bytes", "duration_s"):
            out[name] *= factor
        out["peak_execution_memory"] *= rng.uniform(2, 4)
    elif kind == "null_column":
        out["bytes_written"] = round(out["bytes_written"] * rng.uniform(0.5, 0.7))
    elif kind == "slow":
        out["duration_s"] *= 4
    else:
        raise ValueError(f"unknown kind of failure {kind!r}")
    return out


# --- the judging ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    job: int
    day: int
    kind: str  # ordinary | one of KINDS
    history_runs: int
    anomalous: bool
    method: str
    forest: bool  # the forest was fitted
    seconds: float  # wall clock
    cpu_seconds: float  # this process's CPU: the same, less what other processes on the machine took
    summary: str


def judge_fleet(options: AnomalyOptions, progress: Progress, outcomes: list[Outcome]) -> bool:
    """Judges every run of the generated fleet into `outcomes`; False when interrupted (Ctrl-C)."""
    parameters = options.parameters
    try:
        for job in range(options.jobs):
            rng = np.random.default_rng([options.seed, job])
            profile, history = job_profile(rng), []
            for day in range(options.days):
                counters = ordinary_run(profile, day, rng)
                kind = ORDINARY
                if day >= WARMUP_DAYS and rng.random() < options.rate:
                    kind = KINDS[int(rng.integers(len(KINDS)))]
                    counters = inject(kind, counters, rng)
                run = derive(counters)
                clock, cpu = time.perf_counter(), time.process_time()
                verdict: Judgement = judge(history[-parameters.window:], run, parameters=parameters)
                seconds, cpu = time.perf_counter() - clock, time.process_time() - cpu
                outcomes.append(Outcome(job, day, kind, verdict.history_runs, verdict.anomalous, verdict.method,
                                        verdict.score is not None, seconds, cpu, verdict.summary))
                if kind == ORDINARY:
                    history.append(run)
            if (job + 1) % max(1, options.jobs // 10) == 0:
                progress(f"judged {job + 1}/{options.jobs} jobs")
    except KeyboardInterrupt:
        return False
    return True


@dataclass(frozen=True)
class Figures:
    runs: int
    unjudged: int  # ordinary runs with fewer than 3 good runs before them
    ordinary: int  # ordinary runs judged
    injected: int
    true_alarms: int
    false_alarms: int
    missed: int
    precision: float | None  # None when nothing was flagged
    recall: float | None  # None when nothing was injected
    false_alarms_per_1000: float | None
    by_kind: dict[str, dict[str, float | int | None]]  # injected, caught, by guard, by forest, recall
    false_alarms_by_method: dict[str, int]
    judge_ms_median: float
    judge_ms_p95: float
    forest_fits: int
    forest_ms_median: float | None
    forest_ms_p95: float | None
    forest_cpu_ms_median: float | None
    forest_cpu_ms_p95: float | None
    forest_vetoed_ordinary: int  # ordinary runs with evidence that the forest's score cleared
    forest_vetoed_injected: int  # injected failures with evidence that the forest's score cleared
    met: bool  # precision and recall both reach TARGET

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _ms(values: list[float], q: float) -> float | None:
    return round(1000 * float(np.percentile(values, q)), 2) if values else None


def figures(outcomes: list[Outcome]) -> Figures:
    ordinary = [o for o in outcomes if o.kind == ORDINARY and o.history_runs >= MIN_GUARD_HISTORY]
    injected = [o for o in outcomes if o.kind != ORDINARY]
    true, false = sum(o.anomalous for o in injected), sum(o.anomalous for o in ordinary)
    by_kind: dict[str, dict[str, float | int | None]] = {}
    for kind in KINDS:
        runs = [o for o in injected if o.kind == kind]
        caught = [o for o in runs if o.anomalous]
        by_kind[kind] = {"injected": len(runs), "caught": len(caught),
                         "guard": sum(o.method == "guard" for o in caught),
                         "forest": sum(o.method == "forest" for o in caught), "recall": _share(len(caught), len(runs))}
    precision, recall = _share(true, true + false), _share(true, len(injected))
    fitted = [o.seconds for o in outcomes if o.forest]
    fitted_cpu = [o.cpu_seconds for o in outcomes if o.forest]
    vetoed = [o for o in outcomes if o.forest and not o.anomalous]
    times = [o.seconds for o in outcomes]
    return Figures(
        runs=len(outcomes), unjudged=sum(o.kind == ORDINARY and o.history_runs < MIN_GUARD_HISTORY for o in outcomes),
        ordinary=len(ordinary), injected=len(injected), true_alarms=true, false_alarms=false,
        missed=len(injected) - true, precision=precision, recall=recall,
        false_alarms_per_1000=None if not ordinary else round(1000 * false / len(ordinary), 2),
        by_kind=by_kind, false_alarms_by_method={m: sum(o.anomalous and o.method == m for o in ordinary)
                                                 for m in ("guard", "forest")},
        judge_ms_median=_ms(times, 50) or 0.0, judge_ms_p95=_ms(times, 95) or 0.0, forest_fits=len(fitted),
        forest_ms_median=_ms(fitted, 50), forest_ms_p95=_ms(fitted, 95), forest_cpu_ms_median=_ms(fitted_cpu, 50),
        forest_cpu_ms_p95=_ms(fitted_cpu, 95), forest_vetoed_ordinary=sum(o.kind == ORDINARY for o in vetoed),
        forest_vetoed_injected=sum(o.kind != ORDINARY for o in vetoed),
        met=precision is not None and recall is not None and precision >= TARGET and recall >= TARGET)


def evaluation(f: Figures) -> dict[str, Any]:
    """The figures a detector artefact keeps (`agents/anomaly/artefact.py`)."""
    return {"precision": f.precision, "recall": f.recall, "false_alarms_per_1000": f.false_alarms_per_1000,
            "recall_by_kind": {kind: k["recall"] for kind, k in f.by_kind.items()}}


def write_detector(path: Path, options: AnomalyOptions, f: Figures) -> detector_artefact.DetectorArtefact:
    """The detector artefact of this run: the parameters judged with, its figures, the bench's settings."""
    on = {"benchmark": "anomaly", "jobs": options.jobs, "days": options.days, "seed": options.seed,
          "rate": options.rate, "warmup_days": WARMUP_DAYS, "runs": f.runs, "injected": f.injected,
          "ordinary": f.ordinary}
    try:
        return detector_artefact.save(path, options.parameters, evaluation(f), on)
    except detector_artefact.DetectorArtefactError as exc:
        raise BenchUsageError(str(exc)) from exc


# --- the reports -------------------------------------------------------------------------------------

def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def figure_rows(f: Figures) -> list[tuple[str, str]]:
    return [
        ("precision", _pct(f.precision)),
        ("recall", _pct(f.recall)),
        ("true alarms / injected failures", f"{f.true_alarms} / {f.injected}"),
        ("false alarms / ordinary runs judged", f"{f.false_alarms} / {f.ordinary}"),
        ("false alarms per 1,000 ordinary runs", _num(f.false_alarms_per_1000, 2)),
        ("false alarms by guard / forest", f"{f.false_alarms_by_method['guard']} / {f.false_alarms_by_method['forest']}"),
        ("runs not judged (< 3 good runs before)", str(f.unjudged)),
        ("judging ms per run: median / p95", f"{_num(f.judge_ms_median, 2)} / {_num(f.judge_ms_p95, 2)}"),
        ("runs whose forest was fitted (a feature out of range)", str(f.forest_fits)),
        ("their judging ms: median / p95", f"{_num(f.forest_ms_median)} / {_num(f.forest_ms_p95)}"),
        ("their CPU ms: median / p95", f"{_num(f.forest_cpu_ms_median)} / {_num(f.forest_cpu_ms_p95)}"),
        ("cleared by the forest's score: ordinary / injected",
         f"{f.forest_vetoed_ordinary} / {f.forest_vetoed_injected}"),
    ]


KIND_HEADER = ("kind", "injected", "caught", "by guard", "by forest", "recall")


def kind_rows(f: Figures) -> list[list[str]]:
    return [[kind, str(k["injected"]), str(k["caught"]), str(k["guard"]), str(k["forest"]),
             _pct(k["recall"])] for kind, k in f.by_kind.items()]  # type: ignore[arg-type]


def verdict(f: Figures) -> str:
    target = f"precision and recall >= {TARGET:.0%}"
    return f"target met: {target}" if f.met else f"target NOT met: {target}"


def text_report(header: str, f: Figures) -> str:
    width = max(len(name) for name, _ in figure_rows(f))
    lines = [header, ""] + [f"{name:<{width}}  {value}" for name, value in figure_rows(f)] + [""]
    table = [list(KIND_HEADER), *kind_rows(f)]
    widths = [max(len(r[i]) for r in table) for i in range(len(KIND_HEADER))]
    lines += [f"{r[0]:<{widths[0]}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(r[1:], widths[1:], strict=True))
              for r in table]
    return "\n".join(lines + ["", verdict(f)])


def markdown_report(title: str, meta: dict[str, Any], f: Figures, examples: dict[str, list[str]],
                    plot: Path | None) -> str:
    out = [f"# {title}", ""] + [f"- {key}: {value}" for key, value in meta.items()] + [""]
    out += ["| figure | value |", "|---|---:|"] + [f"| {name} | {value} |" for name, value in figure_rows(f)]
    out += ["", "| " + " | ".join(KIND_HEADER) + " |", "|---|" + "---:|" * (len(KIND_HEADER) - 1)]
    out += ["| " + " | ".join(r) + " |" for r in kind_rows(f)]
    out += ["", f"**{verdict(f)}**", ""]
    for name, lines in examples.items():
        if lines:
            out += [f"## {name} (first {len(lines)})", ""] + [f"- {line}" for line in lines] + [""]
    if plot is not None:
        out += [f"![recall and judging time]({plot.name})", ""]
    out += ["How the history is generated, what is injected and how the figures are counted: the docstring of "
            "`bench/anomaly.py`; the detector's method and thresholds: `agents/anomaly/detector.py`.", ""]
    return "\n".join(out)


def plot(path: Path, f: Figures, outcomes: list[Outcome]) -> None:
    """Recall per kind (with precision and the false alarm rate in the title), and the judging time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    kinds = list(f.by_kind)
    recalls = [f.by_kind[k]["recall"] or 0.0 for k in kinds]
    left.bar(kinds, recalls, color="tab:blue")
    left.axhline(TARGET, color="grey", linestyle="--", linewidth=0.8)
    left.set_ylim(0, 1.05)
    left.set_ylabel("recall")
    left.set_title(f"precision {_pct(f.precision)}, {_num(f.false_alarms_per_1000, 2)} false alarms / 1,000 runs",
                   fontsize=10)
    ms = [1000 * max(o.seconds, 1e-6) for o in outcomes]
    right.hist(ms, bins=np.logspace(math.log10(min(ms)), math.log10(max(ms)) + 1e-9, 40), color="tab:green")
    right.set_xscale("log")
    right.set_xlabel("judging time per run (ms)")
    right.set_ylabel("runs")
    right.set_title("forest fitted only when a feature is out of range", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@dataclass
class AnomalyResult:
    text: str
    json_path: Path
    md_path: Path
    png_path: Path | None
    figures: Figures
    interrupted: bool = False
    outcomes: list[Outcome] = field(default_factory=list, repr=False)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _examples(outcomes: list[Outcome]) -> dict[str, list[str]]:
    def line(o: Outcome) -> str:
        return f"job {o.job} day {o.day} ({o.kind}, {o.method}): {o.summary}"

    false = [line(o) for o in outcomes if o.kind == ORDINARY and o.anomalous]
    missed = [line(o) for o in outcomes if o.kind != ORDINARY and not o.anomalous]
    return {"False alarms": false[:EXAMPLES], "Missed failures": missed[:EXAMPLES]}


def run_anomaly_bench(options: AnomalyOptions, progress: Progress = _stderr) -> AnomalyResult:
    for name in ("jobs", "days", "window"):
        if getattr(options, name) < 1:
            raise BenchUsageError(f"--{name} must be at least 1, not {getattr(options, name)}")
    if options.window < MIN_GUARD_HISTORY:
        raise BenchUsageError(f"--window must be at least {MIN_GUARD_HISTORY}, not {options.window}")
    if not 0 <= options.rate < 1:
        raise BenchUsageError(f"--rate is a share of runs, from 0 to under 1, not {options.rate}")
    out = options.out_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchUsageError(f"cannot write the reports under {out}: {exc}") from exc
    started = datetime.now(timezone.utc)
    clock = time.monotonic()
    progress(f"judging {options.jobs} jobs x {options.days} days (seed {options.seed})")
    outcomes: list[Outcome] = []
    finished = judge_fleet(options, progress, outcomes)
    f = figures(outcomes)
    seconds = time.monotonic() - clock

    stem = f"anomaly-{started.strftime('%Y%m%d-%H%M%S')}"
    json_path, md_path, png_path = out / f"{stem}.json", out / f"{stem}.md", out / f"{stem}.png"
    if outcomes:
        plot(png_path, f, outcomes)
    header = (f"anomaly: {options.jobs} jobs x {options.days} daily runs (seed {options.seed}), "
              f"{options.rate:.0%} silent failures after day {WARMUP_DAYS}, each run judged against the job's "
              f"last {options.window} good runs; {seconds:.0f} s" + ("" if finished else " (interrupted)"))
    examples = _examples(outcomes)
    document = {
        "benchmark": "anomaly", "started": started.isoformat(timespec="seconds"), "duration_s": round(seconds, 1),
        "interrupted": not finished,
        "options": {"jobs": options.jobs, "days": options.days, "seed": options.seed, "rate": options.rate,
                    "window": options.window, "warmup_days": WARMUP_DAYS},
        "figures": f.as_dict(), "target": TARGET, "examples": examples,
        "plot": str(png_path) if outcomes else None,
    }
    json_path.write_text(json.dumps(document, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    meta = {"started": document["started"], "duration_s": document["duration_s"], "settings": header}
    md_path.write_text(markdown_report(stem, meta, f, examples, png_path if outcomes else None), encoding="utf-8")
    text = text_report(header, f) + (f"\nplot: {png_path}" if outcomes else "")
    if options.write_detector is not None and finished:
        written = write_detector(options.write_detector, options, f)
        text += f"\ndetector: {written.path} ({written.detector_id})"
    elif options.write_detector is not None:
        text += f"\ndetector: not written (interrupted): {options.write_detector}"
    return AnomalyResult(text=text, json_path=json_path, md_path=md_path, png_path=png_path if outcomes else None,
                         figures=f, interrupted=not finished, outcomes=outcomes)

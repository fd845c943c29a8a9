"""`python -m bench fleet`: a fleet simulator, a recovery policy learned in it, and the static order
against the learned policy on the same simulated fleet.

Modules: `params.py` (+ `params.json`, the documented defaults), `sim.py` (the discrete-event
simulation, driving `agents.policy.decision.decide_safely` exactly as the healer does), `train.py`
(Q-learning on training fleets), `evaluate.py` (the figures), `report.py` (table and plots).

**The simulated world, and what is assumed.** Measured or taken from the healer: its limits
(HEAL_MAX_ATTEMPTS 3, HEAL_MAX_RERUNS 2, HEAL_RERUN_BACKOFF_S 30 doubling, HEAL_CANDIDATES 3, the
30 s poll), a fix's mechanics (pre-flight ≈ the fix run's time; output check and measurement runs),
the model's prompt and answer sizes and speed on this machine, the healer's own seconds, and a miss
rate of 0 for wrong fixes that exit 0 (none of the 16 known-wrong fixes of `bench/deceptive/` passed
the proof by data). Assumed, each a parameter: the fleet's schedules and run times, failure rates and
the mix of failure classes, each job's behaviour (how often a re-run clears its transients, whether
more memory is what works, how many memory doublings it needs, whether its rule's fix is right, how
often one model attempt fixes its code errors), a human's response and fix times, and the runs a
human's fix takes (one, with the memory the fix needs). Simplifications: jobs are independent (no
shared cluster queue, no on-call queue, no time of day); an incident's cause stays until it is
resolved, and a resolution removes it (the owner takes up the fix); the job's runs scheduled while it
is broken wait, then run one after another; the diagnosis does not change between attempts; a
transient's chance to clear does not depend on the wait before the re-run (so a backoff buys nothing
here); run durations do not vary between runs of a job.

**Fairness.** The static order is exactly `StaticPolicy` through `decide_safely`; both policies meet
the same fleet, the same failures and the same draws (`sim.py`: an incident's human is drawn before
any decision); training fleets have seeds of their own, never the evaluation's; a rule's fix the healer cannot use (the same code fix twice, a re-run
beyond the limit) goes to the model for both, as `agents/patch.py` does.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from agents.policy.artefact import PolicyArtefactError
from agents.policy.artefact import save as save_policy
from agents.policy.decision import StaticPolicy
from agents.policy.learned import LearnedPolicy
from bench.errors import BenchUsageError
from bench.fleet import report
from bench.fleet.evaluate import Figures, by_class, daily_mttr, done_when, figures
from bench.fleet.params import load_params
from bench.fleet.sim import fleet_seed, simulate
from bench.fleet.train import TrainingResult, train

DEFAULT_OUT = Path("bench/results")
DEFAULTS_NAME = "bench/fleet/params.json"
QUICK = {"jobs": 60, "days": 7, "episodes": 6, "training_jobs": 60, "training_days": 7}

Progress = Callable[[str], None]


@dataclass(frozen=True)
class FleetOptions:
    out_dir: Path = DEFAULT_OUT
    jobs: int | None = None  # the evaluation fleet (default: the parameters' fleet.jobs)
    days: int | None = None
    seed: int = 1
    params: Path | None = None  # a file laid over bench/fleet/params.json
    episodes: int | None = None  # training episodes (default: the parameters' training.episodes)
    write_policy: Path | None = None  # where to write the trained policy artefact
    quick: bool = False  # a small fleet, a few training episodes: seconds


@dataclass
class FleetResult:
    text: str
    json_path: Path
    md_path: Path
    training_png: Path
    mttr_png: Path
    static: Figures
    learned: Figures
    done: dict[str, bool]
    policy_path: Path | None = None
    interrupted: bool = False


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_fleet_bench(options: FleetOptions, progress: Progress = _stderr) -> FleetResult:
    for name in ("jobs", "days", "episodes"):
        value = getattr(options, name)
        if value is not None and value < 1:
            raise BenchUsageError(f"--{name} must be at least 1, not {value}")
    params = load_params(options.params)
    if options.quick:
        params = params.with_size(**QUICK)
    params = params.with_size(jobs=options.jobs, days=options.days, episodes=options.episodes)
    started = datetime.now(timezone.utc)
    clock = time.monotonic()
    training = params.training
    progress(f"training: {training.episodes} fleets of {training.jobs} jobs over {training.days} days")
    trained = TrainingResult(policy=LearnedPolicy(), seeds=[])
    train(params, options.seed, progress, result=trained)
    policy = trained.policy
    eval_seed = fleet_seed(options.seed, "eval")
    progress(f"evaluating: static and learned on a fleet of {params.jobs} jobs over {params.days} days")
    static_run = simulate(params, StaticPolicy(), eval_seed)
    learned_run = simulate(params, policy, eval_seed)
    static, learned = figures("static", static_run), figures("learned", learned_run)
    done = done_when(static, learned)
    classes = {"static": by_class(static_run), "learned": by_class(learned_run)}
    daily = {"static": daily_mttr(static_run), "learned": daily_mttr(learned_run)}
    seconds = time.monotonic() - clock

    out = options.out_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchUsageError(f"cannot write the reports under {out}: {exc}") from exc
    stem = f"fleet-{started.strftime('%Y%m%d-%H%M%S')}"
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    training_png, mttr_png = out / f"{stem}-training.png", out / f"{stem}-mttr.png"
    report.plot_training(training_png, trained.rewards, trained.static_rewards, trained.epsilons, trained.incidents)
    report.plot_mttr(mttr_png, daily["static"], daily["learned"])

    summary = {
        "episodes": len(trained.rewards), "training_seeds": trained.seeds[:len(trained.rewards)],
        "evaluation_seed": eval_seed, "seed": options.seed, "training_fleet": {"jobs": training.jobs,
                                                                             "days": training.days},
        "evaluation_fleet": {"jobs": params.jobs, "days": params.days},
        "training_incidents": sum(trained.incidents), "training_seconds": round(trained.seconds, 1),
        "states": len(policy.table), "interrupted": trained.interrupted,
        "params_file": str(options.params) if options.params else DEFAULTS_NAME, "params": params.values,
        "evaluation": {"static": static.as_dict(), "learned": learned.as_dict(), "done_when": done},
    }
    policy_id = ""
    if options.write_policy is not None:
        try:
            written = save_policy(options.write_policy, policy, summary, created=started)
        except PolicyArtefactError as exc:
            raise BenchUsageError(str(exc)) from exc
        policy_id = written.policy_id
        progress(f"policy {policy_id} written to {options.write_policy}")
    header = (f"fleet: {params.jobs} jobs over {params.days} simulated days (evaluation seed {eval_seed}); "
              f"learned policy trained on {len(trained.rewards)} other fleets of {training.jobs} jobs over "
              f"{training.days} days ({sum(trained.incidents)} incidents, {len(policy.table)} states) in "
              f"{trained.seconds:.0f} s" + (" (training interrupted)" if trained.interrupted else ""))
    text = "\n".join([
        header, "", report.text_table(static, learned), "",
        report.class_table(classes["static"], classes["learned"], markdown=False), "",
        report.verdict(done),
        f"plots: {training_png}  {mttr_png}" + (f"\npolicy: {options.write_policy} ({policy_id})" if policy_id else ""),
    ])
    document = {
        "benchmark": "fleet", "started": started.isoformat(timespec="seconds"),
        "duration_s": round(seconds, 1), "interrupted": trained.interrupted,
        "options": {"jobs": params.jobs, "days": params.days, "seed": options.seed, "episodes": training.episodes,
                    "quick": options.quick, "params": str(options.params) if options.params else None},
        "static": static.as_dict(), "learned": learned.as_dict(), "done_when": done, "by_class": classes,
        "daily_mttr_min": daily,
        "training": {key: value for key, value in summary.items() if key not in ("params", "evaluation")} | {
            "rewards": trained.rewards, "static_rewards": trained.static_rewards, "epsilons": trained.epsilons,
            "incidents": trained.incidents},
        "params": params.values, "policy": {"path": str(options.write_policy) if policy_id else None,
                                            "id": policy_id or None},
        "plots": {"training": str(training_png), "mttr": str(mttr_png)},
    }
    report.write_json(json_path, document)
    md_path.write_text("\n".join([
        f"# {stem}", "", f"- started: {document['started']}", f"- duration_s: {document['duration_s']}",
        f"- {header}", f"- parameters: {summary['params_file']}", "",
        report.markdown_table(static, learned), "",
        report.class_table(classes["static"], classes["learned"], markdown=True), "",
        f"**{report.verdict(done)}**", "", f"![training]({training_png.name})", f"![MTTR]({mttr_png.name})", "",
    ]), encoding="utf-8")
    return FleetResult(text=text, json_path=json_path, md_path=md_path, training_png=training_png,
                       mttr_png=mttr_png, static=static, learned=learned, done=done,
                       policy_path=options.write_policy if policy_id else None, interrupted=trained.interrupted)

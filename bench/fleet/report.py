"""The fleet benchmark's side-by-side table (printed, Markdown, JSON) and its two plots (PNG)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.fleet.evaluate import Figures

Row = tuple[str, Callable[[Figures], str], Callable[[Figures], float] | None]


def _minutes(value: float) -> str:
    return f"{value:.1f}"


def _share(value: float) -> str:
    return f"{100 * value:.1f}%"


ROWS: tuple[Row, ...] = (
    ("incidents", lambda f: str(f.incidents), None),
    ("MTTR median (min)", lambda f: _minutes(f.mttr_median_min), lambda f: f.mttr_median_min),
    ("MTTR p90 (min)", lambda f: _minutes(f.mttr_p90_min), lambda f: f.mttr_p90_min),
    ("MTTR mean (min)", lambda f: _minutes(f.mttr_mean_min), lambda f: f.mttr_mean_min),
    ("auto-resolved", lambda f: _share(f.auto_resolved), None),
    ("escalated", lambda f: _share(f.escalated), None),
    ("false heals", lambda f: str(f.false_heals), None),
    ("cluster-minutes per incident", lambda f: f"{f.cluster_minutes_per_incident:.1f}",
     lambda f: f.cluster_minutes_per_incident),
    ("model tokens per incident", lambda f: f"{f.model_tokens_per_incident:.0f}", lambda f: f.model_tokens_per_incident),
    ("model seconds per incident", lambda f: f"{f.model_seconds_per_incident:.1f}",
     lambda f: f.model_seconds_per_incident),
    ("fix attempts per incident", lambda f: f"{f.attempts_per_incident:.2f}", lambda f: f.attempts_per_incident),
    ("SLO attainment", lambda f: f"{100 * f.slo_attainment:.2f}%", None),
    ("reward per incident", lambda f: f"{f.reward_per_incident:+.2f}", None),
    ("decisions from the Q-table", lambda f: f"{f.from_table}/{f.decisions}" if f.from_table else "-", None),
    ("safety overrides", lambda f: str(f.overridden), None),
)


def _change(static: Figures, learned: Figures, value: Callable[[Figures], float] | None) -> str:
    if value is None or value(static) == 0:
        return ""
    return f"{100 * (value(learned) - value(static)) / value(static):+.0f}%"


def table_rows(static: Figures, learned: Figures) -> list[list[str]]:
    return [[name, cell(static), cell(learned), _change(static, learned, value)] for name, cell, value in ROWS]


def text_table(static: Figures, learned: Figures) -> str:
    rows = [["", "static", "learned", "change"], *table_rows(static, learned)]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(f"{r[0]:<{widths[0]}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(r[1:], widths[1:], strict=True))
                     for r in rows).rstrip()


def markdown_table(static: Figures, learned: Figures) -> str:
    lines = ["| | static | learned | change |", "|---|---:|---:|---:|"]
    lines += [f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |" for r in table_rows(static, learned)]
    return "\n".join(lines)


def class_table(static: dict[str, dict[str, float]], learned: dict[str, dict[str, float]], markdown: bool) -> str:
    header = ["failure class", "incidents", "auto-resolved static → learned", "mean TTR min static → learned",
              "cluster-min static → learned"]
    rows = []
    for name in static:
        s, lr = static[name], learned.get(name, {})
        rows.append([name, str(int(s["incidents"])),
                     f"{_share(s['auto_resolved'])} → {_share(lr.get('auto_resolved', 0.0))}",
                     f"{s['mttr_mean_min']:.0f} → {lr.get('mttr_mean_min', 0.0):.0f}",
                     f"{s['cluster_minutes_per_incident']:.1f} → {lr.get('cluster_minutes_per_incident', 0.0):.1f}"])
    if markdown:
        return "\n".join(["| " + " | ".join(header) + " |", "|---|---:|---:|---:|---:|"]
                         + ["| " + " | ".join(r) + " |" for r in rows])
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    return "\n".join(f"{r[0]:<{widths[0]}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(r[1:], widths[1:], strict=True))
                     for r in table)


def verdict(done: dict[str, bool]) -> str:
    if all(done.values()):
        return "done-when met: " + ", ".join(done)
    return "done-when NOT met: " + ", ".join(name for name, ok in done.items() if not ok) + " failed"


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=1, allow_nan=False) + "\n", encoding="utf-8")


def plot_training(path: Path, rewards: list[float], static_rewards: list[float], epsilons: list[float],
                  incidents: list[int]) -> None:
    """Cumulative reward over the training episodes (learning, exploring) against the static order
    on the same fleets, and the reward per incident of each episode."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    episodes = list(range(1, len(rewards) + 1))
    left.plot(episodes, _cumulative(rewards), label="learned (while learning, ε-greedy)")
    if static_rewards:
        left.plot(episodes, _cumulative(static_rewards), label="static order, same fleets", linestyle="--")
    left.set_xlabel("training episode (a fleet over its days)")
    left.set_ylabel("cumulative reward")
    left.set_title("Cumulative reward during training")
    left.legend()
    right.plot(episodes, [r / max(1, n) for r, n in zip(rewards, incidents, strict=True)], label="learned (while learning)")
    if static_rewards:
        right.plot(episodes, [r / max(1, n) for r, n in zip(static_rewards, incidents, strict=True)], label="static order",
                   linestyle="--")
    twin = right.twinx()
    twin.plot(episodes, epsilons, color="grey", linewidth=0.8, label="ε")
    twin.set_ylabel("exploration ε")
    right.set_xlabel("training episode")
    right.set_ylabel("reward per incident")
    right.set_title("Reward per incident")
    right.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_mttr(path: Path, static_daily: list[float | None], learned_daily: list[float | None]) -> None:
    """The mean time to recovery of each simulated day's incidents, static against learned."""
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(9, 4))
    for label, daily, style in (("static order", static_daily, "--"), ("learned policy", learned_daily, "-")):
        days = [d + 1 for d, v in enumerate(daily) if v is not None]
        axis.plot(days, [v for v in daily if v is not None], style, marker="o", markersize=3, label=label)
    axis.set_xlabel("simulated day")
    axis.set_ylabel("MTTR of the day's incidents (min, mean)")
    axis.set_title("MTTR over simulated days (evaluation fleet)")
    axis.set_ylim(bottom=0)
    axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _cumulative(values: list[float]) -> list[float]:
    total, out = 0.0, []
    for value in values:
        total += value
        out.append(total)
    return out


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt

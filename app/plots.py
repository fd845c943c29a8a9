"""The dashboard's recovery plots, from the run history's metrics: MTTR, auto-resolution and
escalations per day, drawn by matplotlib as inline SVG (no image files, nothing fetched by the
browser, crisp at any size). Pure: metrics in, HTML out; the same metrics give the same SVG, drawn
once (`outcomes_html` is cached), so a page polled every two seconds costs a lookup.
"""

from __future__ import annotations

import html
import io
import json
import re
import threading
from collections.abc import Sequence
from functools import lru_cache

import matplotlib
from matplotlib.figure import Figure

from agents.history import DayMetrics

GOOD, BAD, INK, MUTED = "#1a7f37", "#cf222e", "#24292f", "#8c959f"
NO_HISTORY = ("<div class='hd-muted'>No run history yet: the watcher records every run and incident here "
              "(<code>HEAL_HISTORY_URL</code>, or SQLite under <code>HEALER_DATA_DIR</code>).</div>")
PLOTS_CACHED = 32
_DRAWING = threading.Lock()  # matplotlib's settings are global: one drawing at a time (polls are threads)


def minutes(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 60.0


def summary_line(window: int, totals: DayMetrics | None) -> str:
    """One line above the plots: the window's totals, in words."""
    if totals is None or totals.closed == 0:
        return f"Last {window} days: no incident closed."
    rate = f"{totals.auto_resolution:.0%}" if totals.auto_resolution is not None else "–"
    mttr = ("–" if totals.mttr_median_s is None else
            f"{minutes(totals.mttr_median_s):.1f} min (p90 {minutes(totals.mttr_p90_s) or 0:.1f} min)")
    return (f"Last {window} days: {totals.closed} incidents closed, {totals.healed} healed "
            f"(auto-resolution {rate}), {totals.escalated} escalated; MTTR median {mttr}.")


def outcomes_html(window: int, days: Sequence[DayMetrics], totals: DayMetrics | None) -> str:
    """The window's summary line and its plots, as HTML (`days` oldest first, one per UTC day)."""
    return _outcomes_html(window, tuple(days), totals)


@lru_cache(maxsize=PLOTS_CACHED)
def _outcomes_html(window: int, days: tuple[DayMetrics, ...], totals: DayMetrics | None) -> str:
    if not days:
        return NO_HISTORY
    with _DRAWING, matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "hd"}):
        svg = _svg(_figure(window, days))  # text stays text (searchable, selectable); ids stable
    return (f"<div class='hd-outcomes' data-window='{window}'>"
            f"<div class='hd-outcomes-summary'>{html.escape(summary_line(window, totals))}</div>"
            f"<div class='hd-outcomes-plot'>{svg}</div></div>")


def _figure(window: int, days: tuple[DayMetrics, ...]) -> Figure:
    labels = [d.day.strftime("%m-%d") if d.day else "" for d in days]
    x = list(range(len(days)))
    figure = Figure(figsize=(10, 2.3), dpi=100, layout="constrained")  # no pyplot: no global figure list
    mttr, rates = figure.subplots(1, 2)
    median = [minutes(d.mttr_median_s) for d in days]
    p90 = [minutes(d.mttr_p90_s) for d in days]
    mttr.plot(x, [m if m is not None else float("nan") for m in median], marker="o", color=GOOD, label="median")
    mttr.plot(x, [m if m is not None else float("nan") for m in p90], marker=".", linestyle="--", color=MUTED,
              label="p90")
    mttr.set_title(f"MTTR per day, minutes (last {window} days)", fontsize=10, color=INK)
    mttr.set_ylim(bottom=0)
    mttr.legend(fontsize=8, loc="upper left")

    escalated = [d.escalated for d in days]
    rates.bar(x, escalated, color=BAD, alpha=0.35, label="escalated (count)")
    rates.set_ylabel("escalated", fontsize=8)
    rates.set_ylim(bottom=0, top=max([*escalated, 1]) * 1.25)
    share = rates.twinx()
    share.plot(x, [100 * d.auto_resolution if d.auto_resolution is not None else float("nan") for d in days],
               marker="o", color=GOOD, label="auto-resolved %")
    share.set_ylim(0, 105)
    share.set_ylabel("auto-resolved %", fontsize=8)
    rates.set_title("Auto-resolution and escalations per day", fontsize=10, color=INK)
    handles = rates.get_legend_handles_labels()[0] + share.get_legend_handles_labels()[0]
    rates.legend(handles, [str(h.get_label()) for h in handles], fontsize=8, loc="upper left")
    step = max(1, len(days) // 8)
    for axes in (mttr, rates):
        axes.set_xticks(x[::step], labels[::step], fontsize=8)
        axes.tick_params(axis="y", labelsize=8)
        axes.grid(axis="y", alpha=0.3)
    return figure


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]  # without the XML prolog and doctype: inline in the page
    return re.sub(r'^<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 width="100%"', text, count=1)  # fits its column


# --- an anomaly's evidence ----------------------------------------------------------------------

ANOMALY_FEATURES_PLOTTED = 3  # the strongest findings, one small plot each


def anomaly_svg(series: Sequence[dict], findings: Sequence[dict]) -> str:
    """Each of the strongest findings' feature over the job's runs (oldest first), the flagged run in
    red and the range the detector called normal shaded. `series`: AnomalyEvidence.series; `findings`:
    the judgement's. Cached by content, like the recovery plots."""
    return _anomaly_svg(_as_keys(series), _as_keys(findings[:ANOMALY_FEATURES_PLOTTED]))


def _as_keys(items: Sequence[dict]) -> tuple[str, ...]:
    """Dicts as JSON texts: hashable, for the cache."""
    return tuple(json.dumps(item, sort_keys=True) for item in items)


@lru_cache(maxsize=PLOTS_CACHED)
def _anomaly_svg(series: tuple[str, ...], findings: tuple[str, ...]) -> str:
    runs = [json.loads(s) for s in series]
    found = [json.loads(f) for f in findings]
    if not runs or not found:
        return ""
    with _DRAWING, matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "hd"}):
        figure = Figure(figsize=(3.4 * len(found), 2.2), dpi=100, layout="constrained")
        axes_list = figure.subplots(1, len(found), squeeze=False)[0]
        x = list(range(len(runs)))
        for axes, finding in zip(axes_list, found, strict=True):
            name = finding.get("feature", "")
            values = [float((run.get("features") or {}).get(name, float("nan"))) for run in runs]
            axes.axhspan(float(finding.get("low", 0)), float(finding.get("high", 0)), color=GOOD, alpha=0.12,
                         label="normal range")
            axes.plot(x, values, marker="o", markersize=3, color=MUTED, linewidth=1)
            flagged = [i for i, run in enumerate(runs) if run.get("flagged")]
            axes.plot(flagged, [values[i] for i in flagged], marker="o", linestyle="none", color=BAD,
                      markersize=7, label="flagged run")
            axes.set_title(str(finding.get("label") or name), fontsize=9, color=INK)
            axes.set_ylim(bottom=0)
            axes.tick_params(labelsize=7)
            step = max(1, len(runs) // 6)
            axes.set_xticks(x[::step], [str(run.get("run_id", "")) for run in runs][::step], fontsize=7)
            axes.set_xlabel("run", fontsize=7)
            axes.grid(axis="y", alpha=0.3)
        axes_list[0].legend(fontsize=7, loc="best")
        return _svg(figure)

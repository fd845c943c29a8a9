"""The benchmark's table as fixed-width text (printed), Markdown and JSON (written under --out)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.figures import HealRow, Summary


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[HealRow], str]
    numeric: bool = False  # right-aligned


COLUMNS: tuple[Column, ...] = (
    Column("scenario", lambda r: r.scenario),
    Column("failure class", lambda r: r.failure_class),
    Column("expected", lambda r: r.expected),
    Column("outcome", lambda r: r.outcome),
    Column("right", lambda r: "yes" if r.right else "NO"),
    Column("compared", lambda r: r.compared),
    Column("check", lambda r: r.check),
    Column("false heal", lambda r: ("YES" if r.false_heal else "no") if r.deceptive else "-"),
    Column("attempts", lambda r: str(r.attempts), numeric=True),
    Column("time s", lambda r: _secs(r.time_s), numeric=True),
    Column("floor s", lambda r: _secs(r.floor_s), numeric=True),
    Column("own s", lambda r: _secs(r.own_s), numeric=True),
    Column("pre-flight s", lambda r: _secs(r.preflight_s), numeric=True),
    Column("fix run s", lambda r: _secs(r.fix_runs_s), numeric=True),
    Column("model calls", lambda r: str(r.model_calls), numeric=True),
    Column("prompt tok", lambda r: str(r.prompt_tokens), numeric=True),
    Column("est tok", lambda r: str(r.estimated_prompt_tokens), numeric=True),
    Column("max prompt/call", lambda r: _count(r.max_prompt_tokens), numeric=True),
    Column("patch out tok", lambda r: _count(r.patch_output_tokens), numeric=True),
    Column("raw log B", lambda r: _count(r.raw_log_bytes), numeric=True),
    Column("distilled tok", lambda r: _count(r.distilled_tokens), numeric=True),
    Column("diagnosis", lambda r: r.diagnosis + (f" ({r.rule})" if r.rule else "")),
    Column("patch", lambda r: r.patch),
)


def _cells(rows: list[HealRow]) -> list[list[str]]:
    return [[column.cell(row) for column in COLUMNS] for row in rows]


def notes(rows: list[HealRow]) -> list[str]:
    """One line per row that did not end as expected (or errored): why."""
    lines = []
    for row in rows:
        if row.right and not row.error:
            continue
        why = row.error or row.reason or "(no reason recorded)"
        lines.append(f"{row.scenario}: {row.outcome}: {why}")
    return lines


FOOTNOTE = ("time: the failed run's start → the incident's last stage's end. floor: the failed run's "
            "duration + the model's time + every run the healer started (pre-flights, checks on the sandbox, "
            "fix runs, measurements, checks). own: time − floor (the healer's own work and waiting). "
            "pre-flight s: the fix's runs in the sandbox; fix run s: its runs in production. compared: the last "
            "data comparison. false heal: healed by a known-wrong (deceptive) fix. prompt tok: the endpoint's "
            "usage (the scripted server counts four characters a token of what it is sent, schema included); "
            "max prompt/call: the largest prompt of one call; patch out tok: the largest patch answer.")


def format_table(rows: list[HealRow], summary: Summary) -> str:
    """The fixed-width table, the summary line and the notes, as printed."""
    cells = _cells(rows)
    widths = [max([len(c.header)] + [len(r[i]) for r in cells]) for i, c in enumerate(COLUMNS)]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if c.numeric else v.ljust(w)
                         for v, w, c in zip(values, widths, COLUMNS, strict=True)).rstrip()

    out = [line([c.header for c in COLUMNS]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    out += ["", summary.line(), FOOTNOTE]
    found = notes(rows)
    if found:
        out += ["", "not as expected:"] + [f"  {n}" for n in found]
    return "\n".join(out)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def format_markdown(rows: list[HealRow], summary: Summary, meta: dict[str, Any]) -> str:
    out = ["# Healing benchmark", ""]
    out += [f"- {key}: {_md_escape(str(value))}" for key, value in meta.items()]
    out += ["", "| " + " | ".join(c.header for c in COLUMNS) + " |",
            "|" + "|".join("---:" if c.numeric else "---" for c in COLUMNS) + "|"]
    out += ["| " + " | ".join(_md_escape(v) for v in r) + " |" for r in _cells(rows)]
    out += ["", f"**Summary:** {summary.line()}", ""]
    found = notes(rows)
    if found:
        out += ["## Not as expected", ""] + [f"- {_md_escape(n)}" for n in found] + [""]
    out += [FOOTNOTE, ""]
    return "\n".join(out)


def write_reports(out_dir: Path, stem: str, rows: list[HealRow], summary: Summary,
                  meta: dict[str, Any]) -> tuple[Path, Path]:
    """Writes `<stem>.json` and `<stem>.md` under `out_dir`; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    data = {"benchmark": "heal", **meta, "summary": summary.as_dict(), "rows": [r.as_dict() for r in rows]}
    json_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(format_markdown(rows, summary, meta), encoding="utf-8")
    return json_path, md_path


# --- the model calls of every row, one line each (the endpoint benchmark prints them) -------------

CALL_HEADERS = ("scenario", "stage", "attempt", "mode", "prompt tok", "completion tok", "latency s", "tok/s",
                "error")
CALL_NUMERIC = frozenset({"attempt", "prompt tok", "completion tok", "latency s", "tok/s"})
MAX_CALL_ERROR_CHARS = 120  # in the table; the JSON report keeps the whole error


def _call_cells(rows: list[HealRow]) -> list[list[str]]:
    cells = []
    for row in rows:
        for call in row.calls:
            latency, completion = call.get("latency_s"), call.get("completion_tokens")
            speed = f"{completion / latency:.1f}" if completion and latency else "-"
            error = " ".join(str(call.get("error") or "").split())
            cells.append([row.scenario, call["stage"], str(call["attempt"]), call["mode"] or "-",
                          _count(call["prompt_tokens"]), _count(completion), _secs(latency), speed,
                          error[:MAX_CALL_ERROR_CHARS] + ("…" if len(error) > MAX_CALL_ERROR_CHARS else "")])
    return cells


def format_calls(rows: list[HealRow]) -> str:
    """Every model call of every row as a fixed-width table (tok/s: completion tokens per second of the
    call's latency, prompt processing included)."""
    cells = _call_cells(rows)
    if not cells:
        return "(no model calls)"
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(CALL_HEADERS)]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if h in CALL_NUMERIC else v.ljust(w)
                         for v, w, h in zip(values, widths, CALL_HEADERS, strict=True)).rstrip()

    return "\n".join([line(list(CALL_HEADERS)), "  ".join("-" * w for w in widths)] + [line(r) for r in cells])


def format_calls_markdown(rows: list[HealRow]) -> str:
    cells = _call_cells(rows)
    if not cells:
        return "(no model calls)"
    out = ["| " + " | ".join(CALL_HEADERS) + " |",
           "|" + "|".join("---:" if h in CALL_NUMERIC else "---" for h in CALL_HEADERS) + "|"]
    out += ["| " + " | ".join(_md_escape(v) for v in r) + " |" for r in cells]
    return "\n".join(out)

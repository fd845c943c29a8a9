"""The anomaly detector on small hand-made histories: each rule on its own (zero output, a far-off
volume, a NULL column seen only by the forest), ordinary noise and constant histories left alone,
too little history, determinism, the stored form, and the errors of bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from agents.anomaly import FEATURES, LABELS, MIN_HISTORY, Finding, Judgement, derive, judge
from agents.telemetry import RunTelemetry, as_features


def _counters(volume: float = 1.0, *, bpr: float = 120.0, seconds: float = 300.0, rows: float = 10_000.0,
              **override: float) -> dict[str, float]:
    """One run's counters as `as_features` gives them; `volume` scales what a day's data scales."""
    read = round(rows * volume)
    written = round(0.8 * read)
    counters = {"rows_read": read, "bytes_read": 200.0 * read, "rows_written": written,
                "bytes_written": round(bpr * written), "shuffle_read_bytes": 50.0 * read,
                "shuffle_write_bytes": 50.0 * read, "memory_spilled_bytes": 0.0, "disk_spilled_bytes": 0.0,
                "peak_execution_memory": 1e8 * volume ** 0.5, "duration_s": seconds * (0.3 + 0.7 * volume),
                "failed_tasks": 0.0, "tables_written": 1.0}
    counters.update(override)
    return counters


def _history(n: int, noise: float = 0.1, seed: int = 7) -> list[dict[str, float]]:
    """n ordinary runs: volume, bytes per row and duration varying a little, independently."""
    rng = np.random.default_rng(seed)
    return [derive(_counters(math.exp(rng.normal(0, noise)), bpr=120 * math.exp(rng.normal(0, 0.02)),
                             seconds=300 * math.exp(rng.normal(0, noise))))
            for _ in range(n)]


def test_derive_makes_every_feature_from_as_features_and_missing_keys_count_0() -> None:
    telemetry = RunTelemetry(rows_read=100, bytes_read=5000, rows_written=40, bytes_written=2000,
                             memory_spilled_bytes=30, disk_spilled_bytes=12, duration_s=8.0,
                             tables_written=("shop.t", "shop.u"))
    derived = derive(as_features(telemetry))
    assert tuple(derived) == FEATURES and set(LABELS) == set(FEATURES)
    assert derived["bytes_per_row_written"] == 50.0 and derived["spilled_bytes"] == 42.0
    assert derived["tables_written"] == 2.0 and derived["duration_ns_per_row_read"] == 8e7
    assert derive({}) == dict.fromkeys(FEATURES, 0.0)  # no rows: the per-row ratios are 0, not a division error


def test_zero_rows_is_flagged_by_the_guard_with_three_runs() -> None:
    history = _history(3)
    verdict = judge(history, derive(_counters(rows_written=0, bytes_written=0)))
    assert verdict.anomalous and verdict.method == "guard" and verdict.history_runs == 3
    first = verdict.findings[0]
    assert (first.feature, first.label, first.value, first.direction, first.ratio) == (
        "rows_written", "rows written", 0.0, "below", 0.0)
    assert first.low == min(h["rows_written"] for h in history) and first.low <= first.median <= first.high
    assert first.why.startswith("rows written 0, where the job's last 3 good runs had ")
    assert first.why in verdict.summary and verdict.score is None and verdict.threshold is None


def test_zero_rows_is_ordinary_for_a_job_that_has_written_nothing_before() -> None:
    history = _history(12)
    history[4] = derive(_counters(rows_written=0, bytes_written=0))  # e.g. a holiday
    assert not judge(history, derive(_counters(rows_written=0, bytes_written=0))).anomalous


@pytest.mark.parametrize("runs", [3, 20])
def test_a_tenfold_explosion_is_flagged(runs: int) -> None:
    verdict = judge(_history(runs), derive(_counters(10.0)))
    assert verdict.anomalous and verdict.method == "guard"
    flagged = {f.feature for f in verdict.findings}
    assert {"rows_read", "bytes_read", "rows_written", "bytes_written", "shuffle_read_bytes"} <= flagged
    assert all(f.direction == "above" and f.ratio is not None and f.ratio > 3 for f in verdict.findings)
    assert verdict.summary == f"Anomalous (guard): {verdict.findings[0].why}; {len(flagged) - 1} other features also off."


def test_a_null_column_is_flagged_by_the_forest_and_not_by_the_guard() -> None:
    run = derive(_counters(bpr=120 * 0.6))  # rows unchanged, 40% fewer bytes a row
    verdict = judge(_history(20), run)
    assert verdict.anomalous and verdict.method == "forest"
    assert verdict.findings[0].feature == "bytes_per_row_written" and verdict.findings[0].direction == "below"
    assert verdict.score is not None and verdict.threshold is not None and verdict.score < verdict.threshold
    assert "bytes written per row" in verdict.summary and "40% under the median" in verdict.summary
    guards_only = judge(_history(MIN_HISTORY - 1), run)  # the guards alone do not see it: no volume moved x3
    assert not guards_only.anomalous and guards_only.method == "guard" and guards_only.findings == ()


def test_a_run_four_times_slower_on_the_same_rows_is_flagged() -> None:
    verdict = judge(_history(20), derive(_counters(seconds=1200)))
    assert verdict.anomalous
    assert {f.feature for f in verdict.findings} & {"duration_s", "duration_ns_per_row_read"}


def test_ordinary_noisy_runs_raise_no_alarm() -> None:
    """Three jobs of 70 daily runs, noise up to 20%, a weekly dip, slow growth, a bump now and
    then, a retried task: every run judged against its last 30, as the healer does."""
    alarms, judged = [], 0
    for job, noise in enumerate((0.05, 0.12, 0.2)):
        rng = np.random.default_rng(job)
        history: list[dict[str, float]] = []
        for day in range(70):
            volume = math.exp(rng.normal(0, noise)) * 1.005 ** day * (0.6 if day % 7 in (5, 6) else 1.0)
            volume *= 1.25 if day % 23 == 22 else 1.0
            run = derive(_counters(volume, bpr=120 * math.exp(rng.normal(0, 0.03)),
                                   seconds=300 * math.exp(rng.normal(0, noise)),
                                   failed_tasks=2.0 if day % 17 == 16 else 0.0))
            verdict = judge(history[-30:], run)
            judged += verdict.method != "too-little-history"
            if verdict.anomalous:
                alarms.append((job, day, verdict.summary))
            history.append(run)
    assert judged == 3 * 67 and alarms == []


def test_a_constant_history_does_not_make_a_tiny_change_an_alarm() -> None:
    history = [derive(_counters())] * 12
    for runs in (3, 12):
        assert not judge(history[:runs], derive(_counters(1.01, seconds=303))).anomalous
    jump = judge(history[:3], derive(_counters(3.5)))  # the floored sigma still lets a real jump through
    assert jump.anomalous and jump.method == "guard"


@pytest.mark.parametrize("runs", [0, 1, 2])
def test_too_little_history_is_never_anomalous(runs: int) -> None:
    verdict = judge(_history(runs), derive(_counters(rows_written=0, bytes_written=0)))
    assert not verdict.anomalous and verdict.method == "too-little-history" and verdict.findings == ()
    assert verdict.history_runs == runs
    assert verdict.summary == (f"Not judged: the job has {runs} good run{'' if runs == 1 else 's'}, and the checks "
                               "need 3 (the full check 10).")


def test_the_same_input_gives_the_same_judgement() -> None:
    history, run = _history(25), derive(_counters(bpr=70))
    first = judge(history, run)
    assert first.score is not None
    assert judge(history, run) == first == judge(list(history), dict(run))


@pytest.mark.parametrize("run", [_counters(bpr=70), _counters(rows_written=0, bytes_written=0), _counters()])
def test_a_judgement_survives_json(run: dict[str, float]) -> None:
    verdict = judge(_history(15), derive(run))
    stored = json.loads(json.dumps(verdict.to_dict(), allow_nan=False))
    assert Judgement.from_dict(stored) == verdict
    for finding in verdict.findings:
        assert Finding.from_dict(json.loads(json.dumps(finding.to_dict()))) == finding
    assert Judgement.from_dict(judge([], derive(run)).to_dict()).method == "too-little-history"


def test_from_dict_refuses_an_unknown_method_or_direction() -> None:
    stored = judge(_history(15), derive(_counters(bpr=70))).to_dict()
    with pytest.raises(ValueError, match="method is one of guard, forest, too-little-history"):
        Judgement.from_dict(stored | {"method": "magic"})
    with pytest.raises(ValueError, match="direction is above or below"):
        Finding.from_dict(stored["findings"][0] | {"direction": "sideways"})


def test_bad_input_is_a_value_error_that_names_the_run_and_the_feature() -> None:
    history, run = _history(5), derive(_counters())
    with pytest.raises(ValueError, match=r"run: rows_read is -1.0; .* not negative"):
        judge(history, run | {"rows_read": -1.0})
    with pytest.raises(ValueError, match="run: duration_s is nan"):
        judge(history, run | {"duration_s": float("nan")})
    with pytest.raises(ValueError, match="run: bytes_read is 'lots', not a number"):
        judge(history, run | {"bytes_read": "lots"})
    missing = {k: v for k, v in run.items() if k not in ("spilled_bytes", "tables_written")}
    with pytest.raises(ValueError, match="run lacks the feature.s. spilled_bytes, tables_written: pass it through derive"):
        judge(history, missing)
    with pytest.raises(ValueError, match="history run 2: failed_tasks is inf"):
        judge(history[:2] + [history[2] | {"failed_tasks": math.inf}], run)
    with pytest.raises(ValueError, match="features: memory_spilled_bytes is -5"):
        derive({"memory_spilled_bytes": -5})
    with pytest.raises(ValueError, match="min_history must be at least 3"):
        judge(history, run, min_history=2)

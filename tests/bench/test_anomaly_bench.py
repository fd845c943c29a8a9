"""`python -m bench anomaly`, small: the reports exist, their figures parse, lie in range and add up,
a seed gives the same figures, bad input exits 2. Not whether the detector reaches its target."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.anomaly import derive
from bench.__main__ import main
from bench.anomaly import KINDS, AnomalyOptions, inject, job_profile, ordinary_run, run_anomaly_bench

SMALL = ["--jobs", "20", "--days", "40", "--seed", "3"]


def _share(value: float | None) -> bool:
    return value is None or 0 <= value <= 1


def test_the_command_prints_the_figures_and_writes_the_reports(tmp_path: Path, capsys) -> None:
    assert main(["anomaly", *SMALL, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for line in ("precision", "recall", "false alarms per 1,000 ordinary runs", "judging ms per run", "target"):
        assert line in out
    [report] = tmp_path.glob("anomaly-*.json")
    document = json.loads(report.read_text())
    f = document["figures"]
    assert document["options"] == {"jobs": 20, "days": 40, "seed": 3, "rate": 0.03, "window": 30,
                                        "warmup_days": 15}
    assert f["runs"] == 20 * 40 == f["unjudged"] + f["ordinary"] + f["injected"]
    assert f["unjudged"] == 20 * 3 and f["injected"] > 0
    assert f["true_alarms"] + f["missed"] == f["injected"] == sum(k["injected"] for k in f["by_kind"].values())
    assert f["true_alarms"] == sum(k["caught"] for k in f["by_kind"].values())
    assert all(k["caught"] == k["guard"] + k["forest"] for k in f["by_kind"].values())
    assert f["false_alarms"] == sum(f["false_alarms_by_method"].values()) <= f["ordinary"]
    assert set(f["by_kind"]) == set(KINDS)
    assert _share(f["precision"]) and _share(f["recall"]) and all(_share(k["recall"]) for k in f["by_kind"].values())
    assert 0 <= f["false_alarms_per_1000"] <= 1000 and 0 < f["judge_ms_median"] <= f["judge_ms_p95"]
    assert f["forest_fits"] >= f["forest_vetoed_ordinary"] + f["forest_vetoed_injected"]
    markdown = report.with_suffix(".md").read_text()
    assert "| precision |" in markdown and "| kind | injected |" in markdown
    assert Path(document["plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_seed_gives_the_same_figures(tmp_path: Path) -> None:
    options = AnomalyOptions(out_dir=tmp_path, jobs=6, days=30, seed=5, rate=0.1)
    first, again = (run_anomaly_bench(options, progress=lambda _: None) for _ in range(2))
    decisions = [[(o.job, o.day, o.kind, o.anomalous, o.method, o.summary) for o in r.outcomes] for r in (first, again)]
    assert decisions[0] == decisions[1] and len(decisions[0]) == 180
    other = run_anomaly_bench(AnomalyOptions(out_dir=tmp_path, jobs=6, days=30, seed=6, rate=0.1), lambda _: None)
    assert [o.summary for o in other.outcomes] != [o.summary for o in first.outcomes]


def test_injected_failures_look_as_documented() -> None:
    rng = np.random.default_rng(0)
    job = job_profile(rng)
    base = ordinary_run(job, 20, rng)
    zero, explosion, null, slow = (derive(inject(kind, base, rng)) for kind in KINDS)
    ordinary = derive(base)
    assert zero["rows_written"] == 0 and zero["rows_read"] == ordinary["rows_read"]
    assert 7 < explosion["rows_read"] / ordinary["rows_read"] < 14
    assert null["rows_written"] == ordinary["rows_written"]
    assert 0.45 < null["bytes_per_row_written"] / ordinary["bytes_per_row_written"] < 0.75
    assert slow["duration_s"] == pytest.approx(4 * ordinary["duration_s"])


@pytest.mark.parametrize("argv", [["--jobs", "0"], ["--days", "0"], ["--rate", "1.5"], ["--window", "0"]])
def test_bad_input_exits_2_and_writes_nothing(argv: list[str], tmp_path: Path, capsys) -> None:
    assert main(["anomaly", *SMALL, "--out", str(tmp_path), *argv]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert not list(tmp_path.iterdir())

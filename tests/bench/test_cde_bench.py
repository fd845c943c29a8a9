"""`python -m bench cde` at a small size, without Spark: its servers, clients and figures work.

The full-size figures are the benchmark's to print (README); this checks that each part measures
what it says: the watcher's calls are counted at the server, every run is listed, the table holds
every measurement."""

from __future__ import annotations

import json
from pathlib import Path

from bench.__main__ import main
from bench.cde import CdeBenchOptions, run_cde_bench


def test_the_benchmark_measures_every_part_at_a_small_size(tmp_path: Path) -> None:
    options = CdeBenchOptions(out_dir=tmp_path, jobs=20, runs=200, records=150, clients=(1, 4), requests=40,
                              idle_cycles=2, spark=False, distill_mb=2)
    result = run_cde_bench(options)
    figures = json.loads(result.json_path.read_text())

    latency = {(row["name"], row["clients"]) for row in figures["latency"]}
    assert latency == {(name, clients) for clients in (1, 4)
                       for name in ("trivial endpoint", "run list, failed, 100 a page", "run description")}
    assert all(row["requests"] >= 40 and row["p99_ms"] >= row["p50_ms"] > 0 for row in figures["latency"])
    assert [entry["runs"] for entry in figures["list_all"]] == [50, 100, 200]
    watcher = figures["watcher"]
    assert watcher["idle_cycle_calls"] == [1, 1]  # every failed run has its incident: one list call a cycle
    assert len(figures["restart_s"]) == 3 and all(seconds > 0 for seconds in figures["restart_s"])
    assert figures["distill"]["megabytes"] >= 2
    assert "run_overhead" not in figures and "side_by_side" not in figures
    for text in ("run list, failed, 100 a page", "listing all", "restart to first answer", "watcher: first cycle",
                 "distilling a"):
        assert text in result.text
    assert result.md_path.read_text().count("listing all") == 3


def test_bad_sizes_are_a_usage_error(capsys) -> None:
    assert main(["cde", "--runs", "2", "--no-spark", "--out", "/nonexistent-never-written"]) == 2
    assert "need at least 1 job, 4 runs" in capsys.readouterr().err

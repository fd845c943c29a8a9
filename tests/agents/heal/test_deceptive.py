"""Plausible wrong fixes that exit 0 (bench/deceptive), replayed through the scripted model on real Spark.

Each passes the guard, runs to success in its sandbox, and writes wrong output. None may end healed:
the data comparison against the last good output catches it, names what it found, and nothing of the
wrong fix reaches production (no fix job, and the production table's files are untouched).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.scripted import DECEPTIVE_DIR, deceptive_answers
from sample_jobs import get_scenario

# (scenario/variant, the comparison's metric that catches it, words of its note)
# Two of the corpus on real Spark (the rest: `python -m bench heal --deceptive`; every metric's logic:
# tests/agents/test_comparison.py)
CASES = [
    ("udf_null/udf_none_string", "nulls", "has no NULL left where the last good run had"),
    ("missing_aggregation/first_channel", "rows", "where the last good run wrote"),
]


def files_of(root: Path) -> dict[str, tuple[int, int]]:
    """Every data file under a warehouse directory: (size, mtime in ns)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(("case", "metric", "words"), CASES, ids=[c[0] for c in CASES])
def test_a_wrong_fix_that_exits_0_is_caught_by_the_data_and_never_reaches_production(
        heal_lab, scripted_llm, tmp_path, case, metric, words):
    name, variant = case.split("/")
    scenario = get_scenario(name)
    run_id = heal_lab.fresh_failure(name)
    diagnosis, wrong = deceptive_answers(scenario, DECEPTIVE_DIR / name / variant)[:2]
    scripted_llm.add(diagnosis).add(wrong)
    output_table = scenario.app_spec["spark"]["args"][-1]
    database, table = output_table.split(".")
    warehouse = heal_lab.cde.config.data_dir / "warehouse" / f"{database}.db" / table
    before = files_of(warehouse)
    assert before, f"the scenario's last good output {output_table} must exist"

    healer = heal_lab.healer(tmp_path, scripted_llm, HEAL_DETERMINISTIC_FIXES="false", HEAL_MAX_ATTEMPTS="1")
    try:
        record = healer.heal(scenario.app_job, run_id)
    finally:
        healer.close()

    assert record.state == "escalated", record.reason
    attempt = record.attempts[0]
    wrong_code = (DECEPTIVE_DIR / name / variant / scenario.app_file).read_text(encoding="utf-8")
    assert attempt.patch.code == wrong_code and all(v.ok for v in attempt.guard)  # the guard let it through
    assert attempt.preflight.status == "succeeded"  # it exits 0
    assert attempt.comparison_passed is False
    caught = [r for r in attempt.comparison if not r.ok]
    assert any(r.metric == metric and r.output == output_table and words in r.note for r in caught), caught
    assert "data comparison failed" in record.reason and words in record.reason
    # nothing reached production: no fix job was made or run, the last good output is as it was
    assert attempt.fix_run_id is None
    jobs = {j.name for j in heal_lab.client.list_jobs()}
    assert attempt.fix_job not in jobs and f"{attempt.fix_job}-preflight" in jobs
    assert files_of(warehouse) == before

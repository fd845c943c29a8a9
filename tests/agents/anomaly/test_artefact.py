"""The detector artefact (agents/anomaly/artefact.py): what is saved loads back equal, every problem of a
file is one `DetectorArtefactError`; and `DetectorParameters`' defaults judge as the module's constants."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.anomaly import DEFAULT_PARAMETERS, DetectorParameters, derive, judge
from agents.anomaly import artefact as detector_artefact
from agents.anomaly.artefact import DetectorArtefactError, detector_id, load, save
from bench.anomaly import KINDS, inject, job_profile, ordinary_run

EVALUATION = {"precision": 0.98, "recall": 1.0, "false_alarms_per_1000": 0.54,
              "recall_by_kind": {"zero_rows": 1.0, "explosion": None}}


def test_saved_loads_back_equal_with_its_figures(tmp_path: Path) -> None:
    tuned = DetectorParameters(guard_z=4, window=20)
    written = save(tmp_path / "d.json", tuned, EVALUATION, {"jobs": 3})
    found = load(tmp_path / "d.json")
    assert found.parameters == tuned and isinstance(found.parameters.guard_z, float)
    assert found.detector_id == written.detector_id == detector_id(tuned) != detector_id(DEFAULT_PARAMETERS)
    assert (found.evaluation, found.evaluated_on) == (EVALUATION, {"jobs": 3})
    assert dict(detector_artefact.figures(found.evaluation)) == {
        "precision": 0.98, "recall": 1.0, "false_alarms_per_1000": 0.54, "recall_by_kind.zero_rows": 1.0}
    assert detector_id(DetectorParameters(guard_z=5)) == detector_id(DEFAULT_PARAMETERS)  # 5 and 5.0 alike


def _edited(tmp_path: Path, change) -> Path:
    path = tmp_path / "d.json"
    save(path, DEFAULT_PARAMETERS, EVALUATION)
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))
    return path


def _set(path: list[str], value) -> object:
    def change(document: dict) -> None:
        for key in path[:-1]:
            document = document[key]
        document[path[-1]] = value
    return change


@pytest.mark.parametrize(("change", "problem"), [
    (_set(["format"], "self-healing-spark/recovery-policy"), "not an anomaly-detector artefact"),
    (_set(["format_version"], 2), "format version 2; this code reads version 1"),
    (_set(["parameters", "guard_z"], 4.0), "does not match its parameters"),
    (_set(["parameters", "guard_z"], "5"), "bad parameters: guard_z must be a number"),
    (_set(["parameters", "n_estimators"], 0), "bad parameters: n_estimators must lie in"),
    (_set(["parameters", "min_history"], 2), "bad parameters: min_history must be at least min_guard_history"),
    (_set(["parameters", "forest"], 1), "bad parameters: unknown forest"),
    (lambda d: d["parameters"].pop("window"), "bad parameters: missing window"),
    (_set(["parameters"], [1]), "'parameters', 'evaluation' and 'evaluated_on' must be objects"),
    (_set(["evaluation", "recall"], "high"), "evaluation.recall must be a number or null"),
    (_set(["evaluation", "recall_by_kind", "slow"], True), "evaluation.recall_by_kind.slow must be a number"),
])
def test_every_problem_of_a_file_is_one_error(tmp_path: Path, change, problem: str) -> None:
    path = _edited(tmp_path, change)
    with pytest.raises(DetectorArtefactError, match=problem) as caught:
        load(path)
    assert caught.value.path == path and str(caught.value).startswith(f"detector artefact {path}: ")


def test_unreadable_files_are_the_same_error(tmp_path: Path) -> None:
    with pytest.raises(DetectorArtefactError, match="no such file .*--write-detector"):
        load(tmp_path / "absent.json")
    (tmp_path / "cut.json").write_text('{"format": ')
    with pytest.raises(DetectorArtefactError, match="not JSON"):
        load(tmp_path / "cut.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(DetectorArtefactError, match="format 'list'"):
        load(tmp_path / "list.json")
    with pytest.raises(DetectorArtefactError, match="must be a number or null"):
        save(tmp_path / "bad.json", DEFAULT_PARAMETERS, {"recall": float("nan")})
    assert not (tmp_path / "bad.json").exists()


def test_the_default_parameters_judge_as_the_constants_did() -> None:
    """A few generated jobs with failures injected: `judge` without parameters, with the defaults and
    with `DetectorParameters()` gives the same judgement of every run (the guards and the forest)."""
    assert DEFAULT_PARAMETERS == DetectorParameters() and DEFAULT_PARAMETERS.min_history == 10
    methods = set()
    for job in range(3):
        rng = np.random.default_rng([7, job])
        profile, history = job_profile(rng), []
        for day in range(36):
            counters = ordinary_run(profile, day, rng)
            if day >= 15 and day % 4 == 0:
                counters = inject(KINDS[day % len(KINDS)], counters, rng)
            run = derive(counters)
            plain = judge(history[-30:], run)
            assert judge(history[-30:], run, parameters=DEFAULT_PARAMETERS) == plain
            assert judge(history[-30:], run, min_history=10, parameters=DetectorParameters()) == plain
            methods.add((plain.method, plain.anomalous))
            if not plain.anomalous:
                history.append(run)
    assert {("guard", True), ("forest", False)} <= methods


def test_other_parameters_change_verdicts() -> None:
    """The parameters are used: a run x2.5 on every volume is ordinary by default, a guard alarm at x2."""
    rng = np.random.default_rng(1)
    profile = job_profile(rng)
    history = [derive(ordinary_run(profile, day, rng)) for day in range(5)]
    run = dict(history[-1])
    for name in ("rows_read", "bytes_read", "rows_written", "bytes_written", "duration_s"):
        run[name] *= 2.5
    run = derive(run)
    assert not judge(history, run).anomalous
    assert judge(history, run, parameters=DetectorParameters(guard_ratio=2.0)).method == "guard"
    with pytest.raises(ValueError, match="min_history must be at least 4"):
        judge(history, run, parameters=DetectorParameters(min_guard_history=4), min_history=3)

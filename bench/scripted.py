"""The scripted model's answers for a scenario, from its known-good fix in `bench/fixes/<scenario>/`.

The known fixes ship with the benchmark (`FIXES_DIR`, the one place they live; the tests read them
from here too) and never with the product. Per scenario, one
diagnosis and (unless it must escalate) one patch, in the shapes the healer asks for
(`agents.prompts.DiagnosisAnswer`, `PatchAnswer`):

- a code file named as the application file → a code patch: the edits from the scenario's
  application file to it (search/replace blocks, as the healer asks for them);
- `fix.json` (`{"spark": {..., "conf": {...}}}`) → a config patch: its `conf` as conf_changes,
  `args` as args, the other `spark` fields as spark_changes;
- remedy "rerun" → a rerun patch; expected "escalate" → a diagnosis of category "data", no patch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agents.edits import edits_from_files
from bench.errors import NoKnownFix
from sample_jobs import Scenario

FIXES_DIR = Path(__file__).resolve().parent / "fixes"  # <scenario>/<fixed file> or <scenario>/fix.json
DECEPTIVE_DIR = Path(__file__).resolve().parent / "deceptive"  # <scenario>/<variant>/: known-WRONG fixes
CONFIDENCE = 0.9
CATEGORY_BY_REMEDY = {"code": "code", "config": "config", "rerun": "transient", "none": "data"}


def diagnosis_answer(scenario: Scenario) -> dict[str, Any]:
    return {
        "category": CATEGORY_BY_REMEDY[scenario.remedy],
        "root_cause": scenario.description,
        "evidence": [scenario.expected_error],
        "confidence": CONFIDENCE,
    }


def patch_answer(scenario: Scenario, fixes_dir: Path = FIXES_DIR) -> dict[str, Any] | None:
    """The known-good fix as a patch answer; None for a scenario that must escalate."""
    if scenario.expected == "escalate":
        return None
    if scenario.remedy == "rerun":
        return {"kind": "rerun", "explanation": f"The known-good fix of scenario {scenario.name} (rerun).",
                "code": None, "spark_changes": {}, "conf_changes": {}}
    folder = fixes_dir / scenario.name
    if scenario.remedy == "config" and not (folder / "fix.json").is_file():
        raise NoKnownFix(f"scenario {scenario.name} is healed by config but {folder / 'fix.json'} does not exist")
    return folder_patch(scenario, folder, f"The known-good fix of scenario {scenario.name} ({scenario.remedy}).")


def folder_patch(scenario: Scenario, folder: Path, explanation: str) -> dict[str, Any]:
    """The patch a fix folder holds: `fix.json` (job-spec changes) → a config patch; a file named as
    the scenario's application file → a code patch."""
    answer: dict[str, Any] = {"kind": "code", "explanation": explanation, "code": None,
                              "spark_changes": {}, "conf_changes": {}}
    path = folder / "fix.json"
    if path.is_file():
        try:
            fix = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise NoKnownFix(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(fix, dict) or set(fix) != {"spark"} or not isinstance(fix["spark"], dict):
            raise NoKnownFix(f"{path} must hold exactly {{\"spark\": {{...}}}}; the patch can change nothing else")
        spark = dict(fix["spark"])
        answer["kind"] = "config"
        answer["conf_changes"] = dict(spark.pop("conf", {}) or {})
        if "args" in spark:  # the answer schema carries arguments in a field of their own
            answer["args"] = list(spark.pop("args"))
        answer["spark_changes"] = {k: str(v) for k, v in spark.items()}
        return answer
    path = folder / scenario.app_file
    if not path.is_file():
        others = sorted(p.name for p in folder.glob("*")) if folder.is_dir() else []
        raise NoKnownFix(f"scenario {scenario.name}: no known fix of the application file "
                         f"{scenario.app_file} in {folder} (found: {', '.join(others) or 'nothing'})")
    fixed = path.read_text(encoding="utf-8")
    original = scenario.resource_files(scenario.app_resource).get(scenario.app_file)
    if original is not None and original.is_file():  # as the healer asks: only the edits, never the whole file
        edits = edits_from_files(original.read_text(encoding="utf-8"), fixed)
        answer["edits"] = [e.model_dump(exclude_defaults=True) | {"replacement": e.replacement} for e in edits]
    else:
        answer["code"] = fixed
    return answer


def deceptive_variants(scenario: Scenario, deceptive_dir: Path = DECEPTIVE_DIR) -> list[Path]:
    """The scenario's known-wrong fixes: `bench/deceptive/<scenario>/<variant>/`, by name."""
    folder = deceptive_dir / scenario.name
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))) \
        if folder.is_dir() else []


def deceptive_answers(scenario: Scenario, variant: Path) -> list[dict[str, Any]]:
    """A weak model's answers: the known-wrong fix first; asked again (once the healer has caught it),
    the known-good one. The healer must never call the first a heal."""
    trick = json.loads((variant / "deceptive.json").read_text(encoding="utf-8")).get("trick", variant.name)
    wrong = folder_patch(scenario, variant, f"Fix the failure: {trick}")
    good = patch_answer(scenario)
    return [diagnosis_answer(scenario), wrong] + ([diagnosis_answer(scenario), good] if good else [])


class DeceptiveModel:
    """A weak model that insists: a diagnosis whenever one is asked, the known-wrong patch whenever a
    patch is asked. The bench gives it one attempt, so each row shows what stopped the wrong fix:
    the guard (before any run) or the data comparison (after its pre-flight); never a heal."""

    def __init__(self, scenario: Scenario, variant: Path) -> None:
        self.diagnosis, self.patch = deceptive_answers(scenario, variant)[:2]

    def __call__(self, request: Any) -> dict[str, Any]:
        return self.patch if "PatchAnswer" in json.dumps(request.body) else self.diagnosis


def answers(scenario: Scenario, fixes_dir: Path = FIXES_DIR) -> list[dict[str, Any]]:
    """The scripted answers in the order the healer asks: diagnosis, then patch."""
    patch = patch_answer(scenario, fixes_dir)
    return [diagnosis_answer(scenario)] + ([patch] if patch is not None else [])

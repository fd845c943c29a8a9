"""The deceptive-fix corpus (bench/deceptive/) is well formed: no Spark.

Each variant holds either files named as the scenario's application resource files (Python that
parses and differs from the original) or a fix.json of job-spec changes, plus a deceptive.json
saying what the wrong fix does and what a data comparison sees. That each one runs to exit 0 and
leaves a wrong or absent output is shown on real Spark by `python -m bench.deceptive.verify`.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from agents.prompts import PatchAnswer
from bench.scripted import DECEPTIVE_DIR, deceptive_answers, deceptive_variants
from sample_jobs import get_scenario, list_scenarios

VARIANTS = [(s, v) for s in list_scenarios() for v in deceptive_variants(s, DECEPTIVE_DIR)]
TRICKS = {  # each kind of wrong fix the issue names, as a word of some variant's trick
    "swallow": ("try/except", "catches"), "filter": ("filters", "keeps only"), "ignore": ("mode('ignore')",),
    "other table": ("new table", "new output table"), "ansi off": ("ansi",), "udf None": ("'***-***-none'",),
    "constant": ("lit(none)",), "drop column": ("drops the active_users",), "limit": ("only the first",),
    "dedupe": ("deduplicating",),
}


def test_the_corpus_is_big_enough() -> None:
    assert len(VARIANTS) >= 12
    assert len({s.name for s, _ in VARIANTS}) >= 7
    folders = {p.name for p in DECEPTIVE_DIR.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))}
    assert folders == {s.name for s, _ in VARIANTS}, "every folder is named after a scenario"


def test_every_kind_of_wrong_fix_is_there() -> None:
    tricks = [json.loads((v / "deceptive.json").read_text())["trick"].lower() for _, v in VARIANTS]
    missing = [kind for kind, words in TRICKS.items() if not any(w in t for t in tricks for w in words)]
    assert not missing, missing
    confs = [json.loads((v / "fix.json").read_text()) for _, v in VARIANTS if (v / "fix.json").is_file()]
    assert any(c["spark"].get("conf", {}).get("spark.sql.ansi.enabled") == "false" for c in confs)


@pytest.mark.parametrize(("scenario", "variant"), VARIANTS, ids=lambda x: getattr(x, "name", None))
def test_variant_is_well_formed(scenario, variant: Path) -> None:
    assert scenario.expected == "heal", "only scenarios with a fix have wrong fixes"
    meta = json.loads((variant / "deceptive.json").read_text(encoding="utf-8"))
    assert set(meta) == {"trick", "caught_by"}
    assert all(isinstance(v, str) and v.strip() and "\n" not in v for v in meta.values()), meta
    files = {p.name for p in variant.iterdir() if p.is_file()} - {"deceptive.json"}
    if "fix.json" in files:
        assert files == {"fix.json"}, "a variant is a config change or a code change, not both"
        fix = json.loads((variant / "fix.json").read_text(encoding="utf-8"))
        assert set(fix) == {"spark"} and isinstance(fix["spark"], dict) and fix["spark"]
        assert set(fix["spark"]) <= {"args", "conf", "driverMemory", "executorMemory", "driverCores",
                                     "executorCores", "numExecutors"}, fix
        assert all(isinstance(v, str) for v in fix["spark"].get("conf", {}).values())
        assert all(isinstance(a, str) for a in fix["spark"].get("args", []))
        return
    originals = scenario.resource_files(scenario.app_resource)
    assert files and files <= set(originals), (sorted(files), sorted(originals))
    assert scenario.app_file in files, "the scripted model patches the application file"
    for name in files:
        text = (variant / name).read_text(encoding="utf-8")
        ast.parse(text, filename=str(variant / name))
        assert text != originals[name].read_text(encoding="utf-8"), f"{name} is not changed"


@pytest.mark.parametrize(("scenario", "variant"), VARIANTS[:1], ids=lambda x: getattr(x, "name", None))
def test_the_scripted_model_answers_the_wrong_fix_first(scenario, variant: Path) -> None:
    answers = deceptive_answers(get_scenario(scenario.name), variant)
    original = scenario.resource_files(scenario.app_resource)[scenario.app_file].read_text(encoding="utf-8")
    wrong = PatchAnswer.model_validate(answers[1]).to_patch(original)  # as edits of the original
    assert wrong.code == (variant / scenario.app_file).read_text(encoding="utf-8")

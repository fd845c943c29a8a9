"""Which fixes pause for a person: every one in approve mode; in auto mode, a rule's fix whose
applicability HEAL_AUTO_APPLY leaves out."""

from __future__ import annotations

import pytest

from agents.approval import needs_approval
from agents.config import Settings
from agents.errors import ConfigError
from agents.record import Patch

BASE = {"JOBS_API_URL": "https://cde.example/dex/api/v1", "CDE_TOKEN": "token"}
SAFE = Patch(kind="config", spark_changes={"driverMemory": "2g"}, source="rule", applicability="safe")
CHANGES = Patch(kind="code", code="x = 1\n", source="rule", applicability="changes-results")
MODEL = Patch(kind="code", code="x = 1\n", source="model")


def settings(**env: str) -> Settings:
    return Settings.from_env({**BASE, **env}, dotenv=None)


def test_auto_mode_applies_both_kinds_of_rule_fix_by_default() -> None:
    assert settings().auto_apply == ("safe", "changes-results")
    assert [needs_approval(settings(), p) for p in (SAFE, CHANGES, MODEL)] == [False, False, False]


def test_auto_mode_can_keep_fixes_that_change_results_for_a_person() -> None:
    only_safe = settings(HEAL_AUTO_APPLY="safe")
    assert [needs_approval(only_safe, p) for p in (SAFE, CHANGES, MODEL)] == [False, True, False]
    nothing = settings(HEAL_AUTO_APPLY=" , ")  # a list of no applicability: every rule fix waits
    assert nothing.auto_apply == () and [needs_approval(nothing, p) for p in (SAFE, CHANGES, MODEL)] == [True, True, False]


def test_approve_mode_pauses_every_fix() -> None:
    approve = settings(HEAL_MODE="approve")
    assert [needs_approval(approve, p) for p in (SAFE, CHANGES, MODEL)] == [True, True, True]


def test_auto_mode_pauses_a_fix_the_data_could_not_prove():
    why = "none of the fix's outputs (mart.x_v2) has a last good output to be compared with"
    assert [needs_approval(settings(), p, why) for p in (SAFE, CHANGES, MODEL)] == [True, True, True]


def test_an_unknown_applicability_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="HEAL_AUTO_APPLY may name only safe and changes-results, not 'risky'"):
        settings(HEAL_AUTO_APPLY="safe,risky")

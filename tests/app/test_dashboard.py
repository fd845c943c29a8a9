"""The dashboard's functions without a browser: what a poll sends, commands, serving rules."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import gradio as gr
import pytest

from agents.errors import ConfigError
from agents.record import RecordStore
from app import dashboard
from app.service import DashboardService
from tests.fixtures.app import FileCommands, sample_records
from tests.paths import REPO


@pytest.fixture
def service(app_store: RecordStore) -> DashboardService:
    for record in sample_records():
        app_store.save(record)
    return DashboardService(app_store.dir.parent, FileCommands(app_store))


def _skipped(value: object) -> bool:
    return isinstance(value, dict) and value.get("__type__") == "update" and len(value) == 1


def test_changed_only_keeps_what_differs_from_what_the_page_has():
    changed, sent = dashboard.changed_only({"a": "x", "b": [1, 2]}, {})
    assert changed == {"a": "x", "b": [1, 2]}
    again, sent_again = dashboard.changed_only({"a": "x", "b": [1, 3]}, sent)
    assert again == {"b": [1, 3]}
    assert sent_again["a"] == sent["a"] and sent_again["b"] != sent["b"]


def test_page_follows_the_newest_incident_until_the_user_picks_one(service):
    now = datetime.now(timezone.utc)
    newest = dashboard.compute_page(service, None, now)
    assert newest.shown == service.incidents()[0].incident_id == "nightly-agg--31"
    picked = dashboard.compute_page(service, "sql-select-fail--12", now)
    assert picked.shown == "sql-select-fail--12"
    assert "SELECT customer_id" in picked.values["original_code"]
    assert "SELECT account_id" in picked.values["fixed_code"]
    assert picked.values["record_file"][0] == str(service.record_path("sql-select-fail--12"))
    assert picked.values["approval"] is False
    assert dashboard.compute_page(service, "schema-drift--21", now).values["approval"] is True

    missing = dashboard.compute_page(service, "gone--9", now)
    assert missing.shown == "gone--9"
    assert "Incident gone--9: no record yet." in missing.values["heading"]
    assert missing.values["record_file"] is None


def test_a_poll_skips_every_view_that_did_not_change(service):
    shown, sent, *first = dashboard.refresh(service, "sql-select-fail--12", {})
    assert shown == "sql-select-fail--12"
    assert len(first) == len(dashboard.VIEW_FIELDS)
    assert not any(_skipped(v) for v in first)
    values = dict(zip(dashboard.VIEW_FIELDS, first, strict=True))
    assert values["record_file"] == str(service.record_path("sql-select-fail--12"))
    assert values["approval"] == {"__type__": "update", "visible": False}

    _, sent_again, *second = dashboard.refresh(service, "sql-select-fail--12", sent)
    assert all(_skipped(v) for v in second)  # a healed incident: nothing moves
    assert sent_again == sent

    # the healer rewrites the record: only what changed is sent again
    record = service.incident("sql-select-fail--12")
    record.reason = "healed after one attempt"
    service.records.save(record)
    _, _, *third = dashboard.refresh(service, "sql-select-fail--12", sent)
    changed = {name for name, value in zip(dashboard.VIEW_FIELDS, third, strict=True) if not _skipped(value)}
    assert changed == {"heading", "reasoning", "record_file"}


def test_a_live_incident_updates_its_timeline_and_nothing_else_as_time_passes(service):
    now = datetime.now(timezone.utc)
    first = dashboard.compute_page(service, "nightly-agg--31", now)
    _, sent = dashboard.changed_only(first.values, {})
    later = dashboard.compute_page(service, "nightly-agg--31", now + timedelta(seconds=5))
    changed, _ = dashboard.changed_only(later.values, sent)
    assert set(changed) == {"timeline"}
    healed = dashboard.compute_page(service, "sql-select-fail--12", now)
    _, sent = dashboard.changed_only(healed.values, {})
    healed_later = dashboard.compute_page(service, "sql-select-fail--12", now + timedelta(seconds=5))
    assert dashboard.changed_only(healed_later.values, sent)[0] == {}


def test_approve_and_reject_only_act_on_an_incident_awaiting_approval(service):
    commands = service.commands
    assert "not awaiting approval" in dashboard.approve(service, "sql-select-fail--12")
    assert "no incident is shown" in dashboard.approve(service, None)
    assert "not awaiting approval" in dashboard.reject(service, "ingest-daily--7", "no")
    assert commands.calls == []

    message = dashboard.approve(service, "schema-drift--21")
    assert message == "**Approve:** approved: deploying schema-drift-fix-1"
    assert commands.calls == [("approve", "schema-drift--21")]
    assert service.incident("schema-drift--21").state == "redeploying"
    assert "not awaiting approval" in dashboard.reject(service, "schema-drift--21", "too late")


def test_reject_passes_the_reason(app_store):
    app_store.save(sample_records()[1])
    service = DashboardService(app_store.dir.parent, FileCommands(app_store))
    message = dashboard.reject(service, "schema-drift--21", "  rename upstream instead  ")
    assert message == "**Reject:** rejected incident schema-drift--21"
    assert service.incident("schema-drift--21").reason == "rejected by a user: rename upstream instead"


def test_heal_now_sends_the_picked_run_and_reports_errors(service):
    message, show = dashboard.heal_now(service, "ingest-daily--44")
    assert show == "ingest-daily--44"
    assert message == "**Heal now:** healing run 44 of ingest-daily (incident ingest-daily--44)"
    assert service.incident("ingest-daily--44").state == "open"
    assert dashboard.heal_now(service, None) == ("**Heal now:** pick a failed run first.", None)
    message, show = dashboard.heal_now(service, "not an id")
    assert show is None and "not an incident id" in message


def test_a_failing_command_is_reported_not_raised():
    def unreachable() -> str:
        raise ConnectionError("CDE at https://cde.example.com unreachable, password=hunter22")

    message = dashboard._command_message("Approve", unreachable)
    assert message.startswith("**Approve failed:** ConnectionError: CDE at https://cde.example.com unreachable")
    assert "hunter22" not in message


def test_failed_run_picker_lists_runs_with_the_first_picked(service):
    from app.service import FailedRunRow

    service.commands.failed = [FailedRunRow("ingest-daily", 44, None, False), FailedRunRow("x", 1, None, True)]
    update, note = dashboard.failed_run_picker(service)
    assert update["value"] == "ingest-daily--44"
    assert [value for _, value in update["choices"]] == ["ingest-daily--44", "x--1"]
    assert note == "2 failed runs found."
    service.commands.failed = []
    update, note = dashboard.failed_run_picker(service)
    assert update["choices"] == [] and update["value"] is None and note == "No failed runs."


def test_bind_address_follows_the_cai_application_rule():
    assert dashboard.bind_address("0.0.0.0", 7860, {}) == ("0.0.0.0", 7860)
    assert dashboard.bind_address("0.0.0.0", 7860, {"CDSW_APP_PORT": "8100"}) == ("127.0.0.1", 8100)
    with pytest.raises(ConfigError, match="CDSW_APP_PORT must be a port number"):
        dashboard.bind_address("0.0.0.0", 7860, {"CDSW_APP_PORT": "http"})
    with pytest.raises(ConfigError, match="port must be between"):
        dashboard.bind_address("127.0.0.1", 70000, {})


def test_auth_comes_from_the_environment_in_pairs():
    assert dashboard.auth_from_env({}) is None
    assert dashboard.auth_from_env({"DASHBOARD_USER": "ops", "DASHBOARD_PASSWORD": "pw"}) == ("ops", "pw")
    with pytest.raises(ConfigError, match="must be set together"):
        dashboard.auth_from_env({"DASHBOARD_USER": "ops"})


def test_theme_uses_system_fonts_only():
    theme = dashboard.theme()
    assert theme._stylesheets == []
    css = theme._get_theme_css()
    assert "googleapis" not in css and "@font-face" not in css
    assert re.findall(r"url\(\s*(?!['\"]?data:)", css) == []  # inline images only, nothing fetched
    assert dashboard.CSS_PATH.is_file()
    assert "url(" not in dashboard.CSS_PATH.read_text() and "@import" not in dashboard.CSS_PATH.read_text()


def test_build_dashboard_turns_analytics_off(service):
    demo = dashboard.build_dashboard(service)
    assert isinstance(demo, gr.Blocks)
    assert demo.analytics_enabled is False
    with pytest.raises(ConfigError, match="poll interval must be positive"):
        dashboard.build_dashboard(service, poll_seconds=0)


def _launcher(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    script = REPO / "app" / "cai_launcher.py"
    return subprocess.run([sys.executable, str(script), *args], env={"PATH": os.environ["PATH"], **env},
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def test_cai_launcher_check_names_every_missing_setting(tmp_path):
    result = _launcher(["check"], {}, tmp_path)
    assert result.returncode == 1
    assert "JOBS_API_URL is not set" in result.stdout
    assert "WORKLOAD_USER and WORKLOAD_PASSWORD must be set" in result.stdout

    env = {"JOBS_API_URL": "https://cde.example.com/dex/api/v1", "WORKLOAD_USER": "alice",
           "WORKLOAD_PASSWORD": "s3cret-pw", "HEAL_MODE": "approve"}
    result = _launcher(["check"], env, tmp_path)
    assert (result.returncode, result.stdout.strip()) == (0, "ready to serve")
    assert "s3cret-pw" not in result.stdout + result.stderr

    result = _launcher(["deploy"], env, tmp_path)
    assert result.returncode == 2 and "usage:" in result.stderr


def test_cai_launcher_serve_refuses_to_start_without_settings(tmp_path):
    result = _launcher([], {}, tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("cannot start the healer:") and "JOBS_API_URL" in result.stderr

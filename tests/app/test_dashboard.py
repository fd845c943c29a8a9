"""The dashboard's functions without a browser: what a poll sends, commands, serving rules.

Commands go to the real healer worker (`AppLab`: a rules-only healer in approve mode on the
manual-mode local CDE), so Approve, Reject and Heal now are tested with their real effects.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from agents.config import Settings
from agents.errors import ConfigError
from agents.record import incident_id
from app import dashboard
from tests.fixtures.app import AppLab, DashboardSource
from tests.paths import REPO

PANEL_NAMES = [panel.name for panel in dashboard.PANELS]
HTTP_TIMEOUT_S = 30


def _skipped(value: object) -> bool:
    return isinstance(value, dict) and value.get("__type__") == "update" and len(value) == 1


def test_changed_only_keeps_what_differs_from_what_the_page_has():
    changed, sent = dashboard.changed_only({"a": "x", "b": [1, 2]}, {})
    assert changed == {"a": "x", "b": [1, 2]}
    again, sent_again = dashboard.changed_only({"a": "x", "b": [1, 3]}, sent)
    assert again == {"b": [1, 3]}
    assert sent_again["a"] == sent["a"] and sent_again["b"] != sent["b"]


def test_page_follows_the_newest_incident_until_the_user_picks_one(app_lab: AppLab):
    service = app_lab.service
    now = datetime.now(timezone.utc)
    newest = dashboard.compute_page(service, None, now)
    assert newest.shown == service.incidents()[0].incident_id == "nightly-agg--31"
    picked = dashboard.compute_page(service, "sql-select-fail--12", now)
    assert picked.shown == "sql-select-fail--12"
    assert "SELECT customer_id" in picked.values["original_code"]
    assert "SELECT account_id" in picked.values["fixed_code"]
    assert picked.values["record_file"][0] == str(service.record_path("sql-select-fail--12"))
    assert picked.values["approval"] == ""
    awaiting = dashboard.compute_page(service, "schema-drift--21", now).values
    assert awaiting["approval"] == awaiting["approval_for"] == "schema-drift--21"
    assert "schema-drift--21" in awaiting["approval_note"]

    missing = dashboard.compute_page(service, "gone--9", now)
    assert missing.shown == "gone--9"
    assert "Incident gone--9: no record yet." in missing.values["heading"]
    assert missing.values["record_file"] is None


def test_a_poll_skips_every_view_that_did_not_change(app_lab: AppLab):
    service = app_lab.service
    shown, sent, *first = dashboard.refresh(service, "sql-select-fail--12", {})
    assert shown == "sql-select-fail--12"
    assert len(first) == len(dashboard.PANELS)
    assert not any(_skipped(v) for v in first)
    values = dict(zip(PANEL_NAMES, first, strict=True))
    assert values["record_file"] == str(service.record_path("sql-select-fail--12"))
    assert values["approval"] == {"__type__": "update", "visible": False}
    assert "Incident sql-select-fail--12" in values["heading"]

    _, sent_again, *second = dashboard.refresh(service, "sql-select-fail--12", sent)
    assert all(_skipped(v) for v in second)  # a healed incident: nothing moves
    assert sent_again == sent

    # the healer rewrites the record: only what changed is sent again
    record = service.incident("sql-select-fail--12")
    record.reason = "healed after one attempt"
    app_lab.store.save(record)
    _, _, *third = dashboard.refresh(service, "sql-select-fail--12", sent)
    changed = {name for name, value in zip(PANEL_NAMES, third, strict=True) if not _skipped(value)}
    assert changed == {"heading", "reasoning", "record_file"}


def test_a_live_incident_updates_its_timeline_and_nothing_else_as_time_passes(app_lab: AppLab):
    service = app_lab.service
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


def test_a_late_poll_for_the_incident_shown_before_a_pick_leaves_the_approval_box_whole(app_lab: AppLab):
    # A poll that started before the user picked the awaiting incident answers after the pick: it
    # sets `shown` back for a cycle, but the approval box the user clicks still names the incident it
    # was sent for (its note, visibility and incident travel together).
    service = app_lab.service
    _, before_pick, *_ = dashboard.refresh(service, "sql-select-fail--12", {})
    _, after_pick, *picked = dashboard.refresh(service, "schema-drift--21", before_pick)
    picked_values = dict(zip(PANEL_NAMES, picked, strict=True))
    assert picked_values["approval_for"] == "schema-drift--21"
    assert picked_values["approval"] == {"__type__": "update", "visible": True}

    shown, _, *late = dashboard.refresh(service, "sql-select-fail--12", before_pick)
    late_values = dict(zip(PANEL_NAMES, late, strict=True))
    assert shown == "sql-select-fail--12"
    assert all(_skipped(late_values[name]) for name in ("approval", "approval_note", "approval_for"))
    assert "not awaiting approval" in dashboard.approve(service, shown)  # what `shown` would have done
    assert "no incident is shown" in dashboard.approve(service, "")


def test_approve_and_reject_only_act_on_an_incident_awaiting_approval(app_lab: AppLab):
    service = app_lab.service
    assert "not awaiting approval" in dashboard.approve(service, "sql-select-fail--12")
    assert "no incident is shown" in dashboard.approve(service, None)
    assert "not awaiting approval" in dashboard.reject(service, "ingest-daily--7", "no")
    app_lab.drain()
    assert [service.incident(i).state for i in ("sql-select-fail--12", "ingest-daily--7")] == ["healed", "escalated"]

    incident = app_lab.paused(app_lab.jobs[0])
    message = dashboard.approve(service, incident)
    assert message == f"**Approve:** approved: {incident}; deploying the fix"
    fix_run = app_lab.end_fix_run(incident)  # the cluster runs the fix the healer deployed
    app_lab.drain()
    record = service.incident(incident)
    assert record.state == "healed", record.reason
    attempt = record.latest_attempt
    assert attempt.fix_run_id == fix_run and attempt.fix_run_status == "succeeded"
    assert app_lab.client.get_job(attempt.fix_job).name == f"{app_lab.jobs[0]}-fix-1"
    assert "not awaiting approval" in dashboard.reject(service, incident, "too late")


def test_reject_passes_the_reason(app_lab: AppLab):
    incident = app_lab.paused(app_lab.jobs[0])
    message = dashboard.reject(app_lab.service, incident, "  rename upstream instead  ")
    assert message == f"**Reject:** rejected: {incident}"
    app_lab.drain()
    record = app_lab.service.incident(incident)
    assert record.state == "rejected"
    assert "rename upstream instead" in record.reason and "  rename" not in record.reason
    assert record.latest_attempt.fix_run_id is None  # nothing was deployed (it ran only in its sandbox)
    assert record.latest_attempt.preflight.status == "succeeded" and record.latest_attempt.comparison_passed


def test_heal_now_sends_the_picked_run_and_reports_errors(app_lab: AppLab):
    job = app_lab.jobs[1]
    run_id = app_lab.fail(job)
    picked = incident_id(job, run_id)
    message, show = dashboard.heal_now(app_lab.service, picked)
    assert show == picked
    assert message == f"**Heal now:** queued: heal {job} run {run_id}"
    app_lab.drain()
    record = app_lab.service.incident(picked)
    assert (record.state, record.failed_run.id) == ("awaiting_approval", run_id)  # approve mode: diagnosed, patched

    assert dashboard.heal_now(app_lab.service, None) == ("**Heal now:** pick a failed run first.", None)
    message, show = dashboard.heal_now(app_lab.service, "not an id")
    assert show is None and "not an incident id" in message
    message, _ = dashboard.heal_now(app_lab.service, f"{job}-fix-1--{run_id}")
    assert message == f"**Heal now:** {job}-fix-1 was created by the healer; pick the original job's failed run"


def test_a_failing_command_is_reported_not_raised():
    def unreachable() -> str:
        raise ConnectionError("CDE at https://cde.example.com unreachable, password=hunter22")

    message = dashboard.command_message("Approve", unreachable)
    assert message.startswith("**Approve failed:** ConnectionError: CDE at https://cde.example.com unreachable")
    assert "hunter22" not in message


def test_failed_run_picker_lists_runs_with_the_first_picked(app_lab_factory):
    lab = app_lab_factory("drift", "ingest")
    drift, ingest = lab.jobs
    older = lab.fail(ingest)
    newer = lab.paused(drift)  # the newest failed run, and it has an incident
    update, note = dashboard.failed_run_picker(lab.service)
    assert update["value"] == newer
    assert [value for _, value in update["choices"]] == [newer, incident_id(ingest, older)]
    labels = [label for label, _ in update["choices"]]
    assert labels[0].endswith("already has an incident") and "already has an incident" not in labels[1]
    assert note == "2 failed runs found."

    quiet = app_lab_factory("quiet")  # its job never failed
    update, note = dashboard.failed_run_picker(quiet.service)
    assert update["choices"] == [] and update["value"] is None and note == "No failed runs."


def test_bind_address_follows_the_cai_application_rule():
    assert dashboard.bind_address("0.0.0.0", 7860, {}) == ("0.0.0.0", 7860)
    assert dashboard.bind_address("0.0.0.0", 7860, {"CDSW_APP_PORT": "8100"}) == ("127.0.0.1", 8100)
    with pytest.raises(ConfigError, match="CDSW_APP_PORT must be a port number"):
        dashboard.bind_address("0.0.0.0", 7860, {"CDSW_APP_PORT": "http"})
    with pytest.raises(ConfigError, match="port must be between"):
        dashboard.bind_address("127.0.0.1", 70000, {})


def test_auth_comes_from_the_settings_in_pairs():
    base = {"JOBS_API_URL": "https://cde.example/dex/api/v1", "CDE_TOKEN": "t"}
    assert Settings.from_env(base, dotenv=None).dashboard_auth is None
    paired = Settings.from_env({**base, "DASHBOARD_USER": "ops", "DASHBOARD_PASSWORD": "pw"}, dotenv=None)
    assert paired.dashboard_auth == ("ops", "pw") and "pw" in paired.secrets
    for half in ({"DASHBOARD_USER": "ops"}, {"DASHBOARD_PASSWORD": "pw"}):
        with pytest.raises(ConfigError, match="DASHBOARD_USER and DASHBOARD_PASSWORD must be set together"):
            Settings.from_env({**base, **half}, dotenv=None)
    with pytest.raises(ConfigError, match="DASHBOARD_PORT must be at most 65535"):
        Settings.from_env({**base, "DASHBOARD_PORT": "70000"}, dotenv=None)


def _served(url: str, path: str) -> requests.Response:
    reply = requests.get(url + path, timeout=HTTP_TIMEOUT_S)
    assert reply.status_code == 200, f"{path}: {reply.status_code} {reply.text[:200]}"
    return reply


def test_the_served_page_fetches_no_font_or_stylesheet_from_elsewhere(dashboard_url: str):
    config = _served(dashboard_url, "config").json()
    assert config["stylesheets"] == []  # no theme stylesheet (web fonts) to fetch
    theme_css = _served(dashboard_url, "theme.css").text
    assert "--font:" in theme_css and "ui-sans-serif" in theme_css  # the system fonts
    assert "googleapis" not in theme_css and "@font-face" not in theme_css
    assert re.findall(r"url\(\s*(?!['\"]?data:)", theme_css) == []  # inline images only, nothing fetched
    css = dashboard.CSS_PATH.read_text()
    assert "#hd-approval" in css and "#hd-approval" in config["css"]  # our stylesheet is served
    assert "url(" not in css and "@import" not in css


def test_the_served_page_has_analytics_off_and_every_panel(dashboard_url: str):
    config = _served(dashboard_url, "config").json()
    assert config["analytics_enabled"] is False
    ids = {component["props"].get("elem_id") for component in config["components"]}
    wanted = {panel.options["elem_id"] for panel in dashboard.PANELS if panel.kind is not None}
    assert wanted - ids == set()
    assert {"hd-approval", "hd-approve", "hd-reject"} <= ids  # the approval panel's box and controls


def test_build_dashboard_refuses_a_poll_interval_that_is_not_positive(dashboard_source: DashboardSource):
    for interval in (0, -1.5):
        with pytest.raises(ConfigError, match="poll interval must be positive"):
            dashboard.build_dashboard(dashboard_source.service, poll_seconds=interval)


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

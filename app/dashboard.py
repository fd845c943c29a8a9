"""The Gradio dashboard: watch healing runs, approve or reject fixes, start a heal by hand.

The page reads stored state only: incident records (through `DashboardService`) and the healer's
status. It polls with a `gr.Timer`, sends commands through `service.commands`, and never calls
the model or a CDE write endpoint itself. Functions build and update components; the
`with gr.Blocks()` block in `build_dashboard` only lays out and wires events. What the components
show is computed by the pure functions of `app.views`.
"""

from __future__ import annotations

import hashlib
import html
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import gradio as gr

from agents.errors import ConfigError
from agents.record import redact
from app import views
from app.service import DashboardService

POLL_SECONDS = 2.0
STATIC_DIR = Path(__file__).parent / "static"
CSS_PATH = STATIC_DIR / "dashboard.css"
TITLE = "Self-healing Spark pipelines"

# The fields refreshed on every poll, in the order of the components wired to them.
VIEW_FIELDS = (
    "table",
    "status",
    "heading",
    "original_card",
    "fixed_card",
    "timeline",
    "original_code",
    "fixed_code",
    "log_excerpt",
    "full_log",
    "reasoning",
    "diff",
    "record_file",
    "approval",
)

_SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue",
                 "Arial", "sans-serif"]
_SYSTEM_MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Liberation Mono", "monospace"]


def theme() -> gr.themes.Base:
    """Gradio's default look with system fonts only, so the page fetches no font from anywhere."""
    return gr.themes.Default(
        primary_hue="blue", neutral_hue="slate", font=_SYSTEM_FONTS, font_mono=_SYSTEM_MONO
    )


# --- state of one page: what it shows and what it last sent -----------------------------------


def fingerprint(value: object) -> str:
    return hashlib.sha256(repr(value).encode("utf-8", "replace")).hexdigest()


def changed_only(values: Mapping[str, object], sent: Mapping[str, str]) -> tuple[dict[str, object], dict[str, str]]:
    """Keeps only the values that differ from what this page was last sent.

    Returns (the changed values, the fingerprints now on the page). Unchanged views are skipped so
    a poll does not re-render code editors, reset scroll positions or close what the user opened.
    """
    now_sent = {name: fingerprint(value) for name, value in values.items()}
    changed = {name: value for name, value in values.items() if sent.get(name) != now_sent[name]}
    return changed, now_sent


@dataclass(frozen=True)
class PageState:
    """What one page refresh computed: the incident shown and every view's value."""

    shown: str | None
    values: dict[str, object]


def compute_page(service: DashboardService, selected: str | None, now: datetime) -> PageState:
    """Every view for the selected incident, or for the newest one when the user picked none."""
    records = service.incidents()
    record = None
    if selected:
        record = next((r for r in records if r.incident_id == selected), None)
    elif records:
        record = records[0]
    shown = record.incident_id if record else selected
    record_path = service.record_path(record.incident_id) if record else None
    view = views.incident_view(record, now, record_path, wanted=selected)
    try:
        status = views.status_html(service.commands.status())
    except Exception as exc:  # the healer's status must never take the page down
        status = views.status_html(None) + f'<div class="hd-note">{html.escape(redact(str(exc)))}</div>'
    record_file = None
    if view.record_file is not None and record is not None:
        record_file = (str(view.record_file), record.updated_at)
    values: dict[str, object] = {
        "table": views.incident_table(records, shown),
        "status": status,
        "heading": view.heading,
        "original_card": view.original_card,
        "fixed_card": view.fixed_card,
        "timeline": view.timeline,
        "original_code": view.original_code,
        "fixed_code": view.fixed_code,
        "log_excerpt": view.log_excerpt,
        "full_log": view.full_log,
        "reasoning": view.reasoning,
        "diff": view.diff,
        "record_file": record_file,
        "approval": view.awaiting_approval,
    }
    return PageState(shown=shown, values=values)


def _component_value(name: str, value: object) -> object:
    if name == "record_file":
        return value[0] if value else None  # type: ignore[index]
    if name == "approval":
        return gr.update(visible=bool(value))
    return value


def refresh(service: DashboardService, selected: str | None, sent: dict[str, str] | None) -> tuple[Any, ...]:
    """One poll: (shown incident, sent fingerprints, *one value or gr.skip() per VIEW_FIELDS)."""
    page = compute_page(service, selected, datetime.now(timezone.utc))
    changed, now_sent = changed_only(page.values, sent or {})
    updates = [_component_value(n, changed[n]) if n in changed else gr.skip() for n in VIEW_FIELDS]
    return (page.shown, now_sent, *updates)


# --- commands -------------------------------------------------------------------------------


def _command_message(verb: str, call) -> str:
    """Runs one healer command and words its answer. The page must survive a failing command, so
    every error is shown to the user instead of propagating into Gradio."""
    try:
        return f"**{verb}:** " + views.md_escape(call())
    except Exception as exc:
        return f"**{verb} failed:** {views.md_escape(type(exc).__name__ + ': ' + str(exc))}"


def approve(service: DashboardService, shown: str | None) -> str:
    record = service.incident(shown) if shown else None
    if record is None:
        return "**Approve:** no incident is shown."
    if record.state != "awaiting_approval":
        return f"**Approve:** incident {views.md_escape(record.incident_id)} is {record.state}, not awaiting approval."
    return _command_message("Approve", lambda: service.commands.approve(record.incident_id))


def reject(service: DashboardService, shown: str | None, reason: str) -> str:
    record = service.incident(shown) if shown else None
    if record is None:
        return "**Reject:** no incident is shown."
    if record.state != "awaiting_approval":
        return f"**Reject:** incident {views.md_escape(record.incident_id)} is {record.state}, not awaiting approval."
    return _command_message("Reject", lambda: service.commands.reject(record.incident_id, reason.strip()))


def failed_run_picker(service: DashboardService) -> tuple[Any, str]:
    """The "Heal now" choices: failed runs of the watched jobs (a read of CDE run history)."""
    try:
        rows = service.commands.failed_runs()
    except Exception as exc:  # CDE unreachable: say so, keep the page
        return gr.update(choices=[], value=None), f"**Failed runs unavailable:** {views.md_escape(str(exc))}"
    choices = views.failed_run_choices(rows)
    note = f"{len(choices)} failed run{'s' if len(choices) != 1 else ''} found." if choices else "No failed runs."
    return gr.update(choices=choices, value=choices[0][1] if choices else None), note


def heal_now(service: DashboardService, picked: str | None) -> tuple[str, str | None]:
    """Asks the healer to heal the picked failed run; returns (message, incident to show)."""
    if not picked:
        return "**Heal now:** pick a failed run first.", None
    try:
        job, run_id = views.parse_incident_id(picked)
    except ValueError as exc:
        return f"**Heal now:** {views.md_escape(str(exc))}", None
    message = _command_message("Heal now", lambda: service.commands.heal_now(job, run_id))
    return message, picked


# --- the page -------------------------------------------------------------------------------


def _section(title: str) -> gr.HTML:
    return gr.HTML(f'<div class="hd-section">{html.escape(title)}</div>', elem_classes="hd-section-wrap")


def build_dashboard(service: DashboardService, poll_seconds: float = POLL_SECONDS) -> gr.Blocks:
    """The dashboard page for one service. Launch it with `launch` (theme, CSS and server rules)."""
    if poll_seconds <= 0:
        raise ConfigError([f"poll interval must be positive, got {poll_seconds!r}"])

    def poll(selected, sent):
        return refresh(service, selected, sent)

    def pick(selected, sent, evt: gr.SelectData):
        choice = views.incident_from_row(list(evt.row_value or []))
        return refresh(service, choice or selected, sent) + (choice or selected,)

    def show_newest(sent):
        return refresh(service, None, sent) + (None,)

    def on_approve(shown, selected, sent):
        return (approve(service, shown), *refresh(service, selected, sent))

    def on_reject(shown, reason, selected, sent):
        return (reject(service, shown, reason), "", *refresh(service, selected, sent))

    def on_heal(picked, selected, sent):
        message, show = heal_now(service, picked)
        chosen = show or selected
        return (message, chosen, *refresh(service, chosen, sent))

    def on_runs():
        return failed_run_picker(service)

    # delete_cache: the record downloads copied into Gradio's cache go after a day (a CAI app runs for weeks)
    with gr.Blocks(title=TITLE, analytics_enabled=False, fill_width=True, delete_cache=(3600, 86400)) as demo:
        selected = gr.State(None)  # what the user picked; None follows the newest incident
        shown = gr.State(None)  # the incident on the page right now
        sent = gr.State({})  # fingerprints of what this page was last sent
        timer = gr.Timer(poll_seconds)

        gr.HTML(f'<div class="hd-title-bar"><h1>{TITLE}</h1>'
                '<span>Failed CDE job runs, diagnosed, patched as new jobs and verified</span></div>')
        status = gr.HTML(elem_id="hd-status")

        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=480):
                table = gr.Dataframe(
                    headers=views.INCIDENT_HEADERS,
                    datatype="str",
                    interactive=False,
                    label="Incidents, newest first: click a row to show it",
                    max_height=300,
                    wrap=True,
                    column_widths=["15%", "20%", "10%", "20%", "7%", "28%"],
                    elem_id="hd-incidents",
                )
            with gr.Column(scale=2, min_width=320, elem_classes="hd-actions"):
                with gr.Group(visible=False, elem_id="hd-approval") as approval:
                    gr.HTML('<div class="hd-approval-note">This fix is waiting for your approval '
                            "before it is deployed.</div>")
                    reason = gr.Textbox(label="Reason (sent with a rejection)", lines=1, max_lines=3)
                    with gr.Row():
                        approve_btn = gr.Button("Approve fix", variant="primary", elem_id="hd-approve")
                        reject_btn = gr.Button("Reject", variant="stop", elem_id="hd-reject")
                with gr.Accordion("Heal now", open=False, elem_id="hd-heal"):
                    heal_pick = gr.Dropdown(label="Failed run", choices=[], elem_id="hd-heal-pick")
                    with gr.Row():
                        runs_btn = gr.Button("Refresh list", size="sm")
                        heal_btn = gr.Button("Heal now", variant="primary", size="sm", elem_id="hd-heal-btn")
                    runs_note = gr.Markdown(elem_id="hd-runs-note")
                message = gr.Markdown(elem_id="hd-message")
                with gr.Row():
                    newest_btn = gr.Button("Show newest", size="sm", elem_id="hd-newest")
                record_file = gr.File(label="Incident record (JSON)", interactive=False, height=64,
                                      elem_id="hd-record")

        heading = gr.HTML(elem_id="hd-heading")
        with gr.Row(equal_height=True):
            original_card = gr.HTML(elem_id="hd-original-card")
            fixed_card = gr.HTML(elem_id="hd-fixed-card")
            with gr.Column(scale=1, min_width=300):
                timeline = gr.HTML(elem_id="hd-timeline")

        with gr.Row(equal_height=True):
            original_code = gr.Code(language="python", label="Original code", interactive=False,
                                    lines=14, max_lines=28, elem_id="hd-original-code")
            fixed_code = gr.Code(language="python", label="Fixed code", interactive=False,
                                 lines=14, max_lines=28, elem_id="hd-fixed-code")

        with gr.Row(equal_height=False):
            with gr.Column(scale=4, min_width=320):
                _section("Driver log (evidence marked ▶)")
                log_excerpt = gr.HTML(elem_id="hd-log")
                with gr.Accordion("Full driver log", open=False, elem_id="hd-full-log-box"):
                    full_log = gr.HTML(elem_id="hd-full-log")
            with gr.Column(scale=4, min_width=320):
                _section("Reasoning trace")
                reasoning = gr.Markdown(elem_id="hd-reasoning", max_height=560, container=True)
            with gr.Column(scale=3, min_width=300):
                _section("Diff")
                diff = gr.HTML(elem_id="hd-diff")

        view_outputs = [table, status, heading, original_card, fixed_card, timeline, original_code,
                        fixed_code, log_excerpt, full_log, reasoning, diff, record_file, approval]
        refreshed = [shown, sent, *view_outputs]
        quiet = dict(show_progress="hidden", api_visibility="private")

        demo.load(poll, [selected, sent], refreshed, **quiet)
        demo.load(on_runs, None, [heal_pick, runs_note], **quiet)
        timer.tick(poll, [selected, sent], refreshed, trigger_mode="always_last",
                   concurrency_limit=None, **quiet)
        table.select(pick, [selected, sent], [*refreshed, selected], **quiet)
        newest_btn.click(show_newest, [sent], [*refreshed, selected], **quiet)
        approve_btn.click(on_approve, [shown, selected, sent], [message, *refreshed], **quiet)
        reject_btn.click(on_reject, [shown, reason, selected, sent], [message, reason, *refreshed], **quiet)
        runs_btn.click(on_runs, None, [heal_pick, runs_note], **quiet)
        heal_btn.click(on_heal, [heal_pick, selected, sent], [message, selected, *refreshed], **quiet)
    return demo


# --- serving --------------------------------------------------------------------------------


def bind_address(host: str, port: int, environ: Mapping[str, str]) -> tuple[str, int]:
    """Where to listen. A CAI Application must listen on 127.0.0.1:$CDSW_APP_PORT, whatever was asked."""
    app_port = environ.get("CDSW_APP_PORT", "").strip()
    if app_port:
        if not app_port.isdigit() or not 0 < int(app_port) < 65536:
            raise ConfigError([f"CDSW_APP_PORT must be a port number, got {app_port!r}"])
        return "127.0.0.1", int(app_port)
    if not 0 <= port < 65536:
        raise ConfigError([f"port must be between 0 and 65535, got {port!r}"])
    return host, port


def auth_from_env(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """Basic auth for local use from DASHBOARD_USER / DASHBOARD_PASSWORD; None when neither is set."""
    user = environ.get("DASHBOARD_USER", "").strip()
    password = environ.get("DASHBOARD_PASSWORD", "")
    if not user and not password:
        return None
    if not user or not password:
        raise ConfigError(["DASHBOARD_USER and DASHBOARD_PASSWORD must be set together"])
    return user, password


def launch(
    service: DashboardService,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: tuple[str, str] | None = None,
    *,
    block: bool = True,
    poll_seconds: float = POLL_SECONDS,
    environ: Mapping[str, str] | None = None,
) -> gr.Blocks:
    """Serves the dashboard. Returns the running Blocks (call `.close()` to stop) when not blocking.

    `auth` defaults to DASHBOARD_USER / DASHBOARD_PASSWORD from the environment (read now, not at
    import). On CAI (`CDSW_APP_PORT` set) it listens on 127.0.0.1 at that port. Analytics are off,
    fonts are the system's, and no page asset comes from another host.
    """
    env = os.environ if environ is None else environ
    host, port = bind_address(host, port, env)
    auth = auth or auth_from_env(env)
    demo = build_dashboard(service, poll_seconds)
    demo.queue(default_concurrency_limit=1)
    demo.launch(
        server_name=host,
        server_port=port,
        auth=auth,
        auth_message="Self-healing Spark pipelines dashboard" if auth else None,
        prevent_thread_lock=not block,
        share=False,
        inbrowser=False,
        quiet=True,
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        enable_monitoring=False,
        footer_links=["settings"],
        theme=theme(),
        css_paths=[CSS_PATH],
        allowed_paths=[str(service.records.dir)],
        show_error=False,
    )
    return demo

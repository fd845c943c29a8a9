"""The Gradio dashboard: watch healing runs, approve or reject fixes, start a heal by hand.

The page reads stored state only: incident records (through `DashboardService`) and the healer's
status. It polls with a `gr.Timer`, sends commands through `service.commands`, and never calls
the model or a CDE write endpoint itself. Functions build and update components; the
`with gr.Blocks()` block in `build_dashboard` only lays out and wires events. Every part of the page a
poll refreshes is one entry of `PANELS` (its value, its component, its place), and what it shows is
computed by the pure functions of `app.views`.
"""

from __future__ import annotations

import functools
import hashlib
import html
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import gradio as gr

from agents.errors import ConfigError
from app import views
from app.service import DashboardService

log = logging.getLogger("healer.dashboard")

POLL_SECONDS = 2.0
STATIC_DIR = Path(__file__).parent / "static"
CSS_PATH = STATIC_DIR / "dashboard.css"
TITLE = "Self-healing Spark pipelines"

_SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue",
                 "Arial", "sans-serif"]
_SYSTEM_MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Liberation Mono", "monospace"]


def theme() -> gr.themes.Base:
    """Gradio's default look with system fonts only, so the page fetches no font from anywhere."""
    return gr.themes.Default(
        primary_hue="blue", neutral_hue="slate", font=_SYSTEM_FONTS, font_mono=_SYSTEM_MONO
    )


# --- state of one page: what it shows and what it last sent -----------------------------------


_FINGERPRINTS: OrderedDict[int, tuple[object, str]] = OrderedDict()  # by id; the value is kept, so the id holds
_FINGERPRINTS_LOCK = threading.Lock()
FINGERPRINTS_CACHED = 64


def fingerprint(value: object) -> str:
    """A digest of what a panel shows. A value given again as the same object (the incident table of
    an unchanged list: `views.incident_table`) is not digested again; panel values are never changed."""
    with _FINGERPRINTS_LOCK:
        cached = _FINGERPRINTS.get(id(value))
        if cached is not None and cached[0] is value:
            _FINGERPRINTS.move_to_end(id(value))
            return cached[1]
    digest = hashlib.sha256(repr(value).encode("utf-8", "replace")).hexdigest()
    if isinstance(value, dict | list):  # the big ones; strings are digested fast enough
        with _FINGERPRINTS_LOCK:
            _FINGERPRINTS[id(value)] = (value, digest)
            while len(_FINGERPRINTS) > FINGERPRINTS_CACHED:
                _FINGERPRINTS.popitem(last=False)
    return digest


def changed_only(values: Mapping[str, object], sent: Mapping[str, str]) -> tuple[dict[str, object], dict[str, str]]:
    """Keeps only the values that differ from what this page was last sent.

    Returns (the changed values, the fingerprints now on the page). Unchanged views are skipped so
    a poll does not re-render code editors, reset scroll positions or close what the user opened.
    """
    now_sent = {name: fingerprint(value) for name, value in values.items()}
    changed = {name: value for name, value in values.items() if sent.get(name) != now_sent[name]}
    return changed, now_sent


# --- the panels: what a poll refreshes, declared once ------------------------------------------


def _as_is(value: object) -> object:
    return value


@dataclass(frozen=True)
class Panel:
    """One part of the page a poll refreshes: what it shows, the component that shows it, and where.

    `render` computes the value from the page (pure, `app.views`); the page sends a value only when
    it changed, through `send` (a value can carry more than the component shows, so that a change
    is seen). `slot` names the place in `build_dashboard`'s layout; panels sharing a slot follow
    the table's order. `kind` is the Gradio component made there with `options`; a panel without
    a kind is a box the layout builds itself, because it holds controls (the approval box).
    """

    name: str
    render: Callable[[views.Page], object]
    slot: str
    kind: Callable[..., Any] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    send: Callable[[Any], Any] = _as_is


# Slots, in page order (see build_dashboard): top, outcomes-7 and outcomes-30 (tabs of "Recovery"), incidents,
# actions, approval (in the approval box), anomaly-box (in the anomaly's box), heading, anomaly (its evidence),
# cards, cards-side, code, log, log-folded (under "Full driver log"), reasoning, diff.
OUTCOME_WINDOWS = (7, 30)  # days of run history the recovery plots show, one tab each
PANELS: tuple[Panel, ...] = (
    Panel("status", lambda p: views.status_html(p.status, error=p.status_error), "top",
          gr.HTML, {"elem_id": "hd-status"}),
    Panel("table", lambda p: views.incident_table(p.records, p.shown), "incidents", gr.Dataframe, {
        "headers": views.INCIDENT_HEADERS, "datatype": "str", "interactive": False,
        "label": "Incidents, newest first: click a row to show it", "max_height": 300, "wrap": True,
        "column_widths": ["15%", "20%", "10%", "20%", "7%", "28%"], "elem_id": "hd-incidents"}),
    Panel("approval", lambda p: views.awaiting_approval(p.record), "actions",  # the Approve/Reject box
          send=lambda awaiting: gr.update(visible=bool(awaiting))),
    # The incident the box's buttons act on travels with the box, not in the page's `shown` state: a
    # poll that started before the user picked another incident can answer after the pick and set
    # `shown` back for a cycle, while the box the user sees (and clicks) is the picked incident's.
    # Both values follow from the same incident id, so a refresh sends both or neither.
    Panel("approval_note", lambda p: views.approval_note_html(views.awaiting_approval(p.record)), "approval",
          gr.HTML, {"elem_id": "hd-approval-note"}),
    Panel("approval_for", lambda p: views.awaiting_approval(p.record), "approval",
          gr.Textbox, {"visible": False, "elem_id": "hd-approval-for"}),
    Panel("anomaly_box", lambda p: views.flagged_anomaly(p.record), "actions",  # heal now / dismiss / expected
          send=lambda flagged: gr.update(visible=bool(flagged))),
    Panel("anomaly_note", lambda p: views.anomaly_note_html(views.flagged_anomaly(p.record)), "anomaly-box",
          gr.HTML, {"elem_id": "hd-anomaly-note"}),
    Panel("anomaly_for", lambda p: views.flagged_anomaly(p.record), "anomaly-box",  # as approval_for
          gr.Textbox, {"visible": False, "elem_id": "hd-anomaly-for"}),
    Panel("record_file", views.record_download, "actions", gr.File, {
        "label": "Incident record (JSON)", "interactive": False, "height": 64, "elem_id": "hd-record"},
          send=lambda download: download[0] if download else None),
    Panel("heading", lambda p: views.incident_heading(p.record, p.wanted), "heading",
          gr.HTML, {"elem_id": "hd-heading"}),
    Panel("anomaly", lambda p: views.anomaly_html(p.record), "anomaly", gr.HTML, {"elem_id": "hd-anomaly"}),
    Panel("original_card", lambda p: views.card_html(p.record and views.original_card(p.record), "Original job"),
          "cards", gr.HTML, {"elem_id": "hd-original-card"}),
    Panel("fixed_card", lambda p: views.card_html(p.record and views.fixed_card(p.record), "Fixed job"),
          "cards", gr.HTML, {"elem_id": "hd-fixed-card"}),
    Panel("timeline", lambda p: views.timeline_html(p.record, p.now), "cards-side",
          gr.HTML, {"elem_id": "hd-timeline"}),
    Panel("original_code", lambda p: views.original_code(p.record), "code", gr.Code, {
        "language": "python", "label": "Original code", "interactive": False, "lines": 14, "max_lines": 28,
        "elem_id": "hd-original-code"}),
    Panel("fixed_code", lambda p: views.fixed_code(p.record), "code", gr.Code, {
        "language": "python", "label": "Fixed code", "interactive": False, "lines": 14, "max_lines": 28,
        "elem_id": "hd-fixed-code"}),
    Panel("comparison", lambda p: views.comparison_html(p.record), "comparison",
          gr.HTML, {"elem_id": "hd-comparison"}),
    Panel("log_excerpt", lambda p: views.log_excerpt_html(p.record), "log",
          gr.HTML, {"elem_id": "hd-log"}),
    Panel("full_log", lambda p: views.full_log_html(p.record), "log-folded",
          gr.HTML, {"elem_id": "hd-full-log"}),
    Panel("reasoning", lambda p: views.reasoning_markdown(p.record), "reasoning",
          gr.Markdown, {"elem_id": "hd-reasoning", "max_height": 560, "container": True}),
    Panel("diff", lambda p: views.diff_html(views.diff_text(p.record)), "diff",
          gr.HTML, {"elem_id": "hd-diff"}),
    *(Panel(f"outcomes_{days}", functools.partial(views.outcomes_html, window=days), f"outcomes-{days}",
            gr.HTML, {"elem_id": f"hd-outcomes-{days}"}) for days in OUTCOME_WINDOWS),
)


def panel_values(page: views.Page) -> dict[str, object]:
    """Every panel's value for one page, by panel name."""
    return {panel.name: panel.render(page) for panel in PANELS}


@dataclass(frozen=True)
class PageState:
    """What one page refresh computed: the incident shown and every panel's value."""

    shown: str | None
    values: dict[str, object]


def compute_page(service: DashboardService, selected: str | None, now: datetime) -> PageState:
    """Every panel for the selected incident, or for the newest one when the user picked none.

    The incident list comes from the index (rows changed since the last poll); only the shown
    incident's record is read, and only when its file changed."""
    records = service.incidents()
    shown = views.shown_incident(records, selected)
    record = service.shown_record(shown) if shown else None
    try:
        status, status_error = service.commands.status(), ""
    except Exception as exc:  # the healer's status must never take the page down
        status, status_error = None, str(exc)
    page = views.Page(records=records, record=record, now=now, wanted=selected,
                      record_file=service.record_path(record.incident_id) if record else None,
                      status=status, status_error=status_error, metrics=_metrics(service))
    return PageState(shown=page.shown, values=panel_values(page))


def _metrics(service: DashboardService) -> dict[int, tuple[list, Any]]:
    """The run history's metrics per window; none when the history cannot be read (the page stays up)."""
    try:
        return {days: (service.metrics(days), service.totals(days)) for days in OUTCOME_WINDOWS}
    except Exception as exc:  # a database outage must never take the page down
        log.warning("recovery metrics unavailable: %s: %s", type(exc).__name__, exc)
        return {}


def refresh(service: DashboardService, selected: str | None, sent: dict[str, str] | None) -> tuple[Any, ...]:
    """One poll: (shown incident, sent fingerprints, *one update or gr.skip() per panel of PANELS)."""
    page = compute_page(service, selected, datetime.now(timezone.utc))
    changed, now_sent = changed_only(page.values, sent or {})
    updates = [panel.send(changed[panel.name]) if panel.name in changed else gr.skip() for panel in PANELS]
    return (page.shown, now_sent, *updates)


# --- commands -------------------------------------------------------------------------------


def command_message(verb: str, call) -> str:
    """Runs one healer command and words its answer. The page must survive a failing command, so
    every error is shown to the user instead of propagating into Gradio."""
    try:
        return f"**{verb}:** " + views.md_escape(call())
    except Exception as exc:
        return f"**{verb} failed:** {views.md_escape(type(exc).__name__ + ': ' + str(exc))}"


def approve(service: DashboardService, awaiting: str | None) -> str:
    """Approves the fix of `awaiting`, the incident the approval box on the page names."""
    record = service.incident(awaiting) if awaiting else None
    if record is None:
        return "**Approve:** no incident is shown."
    if record.state != "awaiting_approval":
        return f"**Approve:** incident {views.md_escape(record.incident_id)} is {record.state}, not awaiting approval."
    return command_message("Approve", lambda: service.commands.approve(record.incident_id))


def reject(service: DashboardService, awaiting: str | None, reason: str) -> str:
    """Rejects the fix of `awaiting`, the incident the approval box on the page names."""
    record = service.incident(awaiting) if awaiting else None
    if record is None:
        return "**Reject:** no incident is shown."
    if record.state != "awaiting_approval":
        return f"**Reject:** incident {views.md_escape(record.incident_id)} is {record.state}, not awaiting approval."
    return command_message("Reject", lambda: service.commands.reject(record.incident_id, reason.strip()))


ANOMALY_VERBS = {"heal": "Heal now", "dismiss": "Dismiss", "expected": "Mark as expected"}


def decide_anomaly(service: DashboardService, flagged: str | None, decision: str) -> str:
    """A person's choice on `flagged`, the anomaly the box on the page names."""
    verb = ANOMALY_VERBS[decision]
    record = service.incident(flagged) if flagged else None
    if record is None:
        return f"**{verb}:** no anomaly is shown."
    if record.state != "flagged":
        return f"**{verb}:** incident {views.md_escape(record.incident_id)} is {record.state}, not a flagged anomaly."
    return command_message(verb, lambda: service.commands.decide_anomaly(record.incident_id, decision))


def ask(service: DashboardService, question: str) -> str:
    """An operator's question, answered from the run history (read only: it changes nothing)."""
    question = (question or "").strip()
    if not question:
        return "Type a question, e.g. *how many runs of sales-daily failed in the last 24 hours?*"
    try:
        answer = service.commands.ask(question)
    except Exception as exc:  # a bad question or a database outage: say so, keep the page
        return f"**Ask failed:** {views.md_escape(type(exc).__name__ + ': ' + str(exc))}"
    return views.answer_markdown(question, answer.text, list(answer.sql), answer.source)


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
    message = command_message("Heal now", lambda: service.commands.heal_now(job, run_id))
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

    def on_approve(awaiting, selected, sent):
        return (approve(service, awaiting), *refresh(service, selected, sent))

    def on_reject(awaiting, reason, selected, sent):
        return (reject(service, awaiting, reason), "", *refresh(service, selected, sent))

    def on_heal(picked, selected, sent):
        message, show = heal_now(service, picked)
        chosen = show or selected
        return (message, chosen, *refresh(service, chosen, sent))

    def on_runs():
        return failed_run_picker(service)

    def on_anomaly(decision):
        def handler(flagged, selected, sent):
            return (decide_anomaly(service, flagged, decision), *refresh(service, selected, sent))
        return handler

    def on_ask(question):
        return ask(service, question)

    built: dict[str, Any] = {}  # panel name -> its component

    def place(slot: str) -> None:
        """Makes the components of the panels that go in `slot`, here, in PANELS order."""
        for panel in PANELS:
            if panel.slot == slot and panel.kind is not None:
                built[panel.name] = panel.kind(**panel.options)

    # delete_cache: the record downloads copied into Gradio's cache go after a day (a CAI app runs for weeks)
    with gr.Blocks(title=TITLE, analytics_enabled=False, fill_width=True, delete_cache=(3600, 86400)) as demo:
        selected = gr.State(None)  # what the user picked; None follows the newest incident
        shown = gr.State(None)  # the incident on the page right now
        sent = gr.State({})  # fingerprints of what this page was last sent
        timer = gr.Timer(poll_seconds)

        gr.HTML(f'<div class="hd-title-bar"><h1>{TITLE}</h1>'
                '<span>Failed CDE job runs, diagnosed, patched as new jobs and verified</span></div>')
        place("top")
        with gr.Accordion("Recovery: MTTR, auto-resolution and escalations (run history)", open=True,
                          elem_id="hd-recovery"), gr.Tabs():
            for days in OUTCOME_WINDOWS:
                with gr.Tab(f"Last {days} days", elem_id=f"hd-recovery-{days}"):
                    place(f"outcomes-{days}")

        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=480):
                place("incidents")
            with gr.Column(scale=2, min_width=320, elem_classes="hd-actions"):
                with gr.Group(visible=False, elem_id="hd-approval") as approval:
                    place("approval")
                    reason = gr.Textbox(label="Reason (sent with a rejection)", lines=1, max_lines=3)
                    with gr.Row():
                        approve_btn = gr.Button("Approve fix", variant="primary", elem_id="hd-approve")
                        reject_btn = gr.Button("Reject", variant="stop", elem_id="hd-reject")
                built["approval"] = approval  # the approval panel: a box with its controls
                with gr.Group(visible=False, elem_id="hd-anomaly-box") as anomaly_box:
                    place("anomaly-box")
                    with gr.Row():
                        anomaly_buttons = {
                            decision: gr.Button(verb, variant="primary" if decision == "heal" else "secondary",
                                                elem_id=f"hd-anomaly-{decision}")
                            for decision, verb in ANOMALY_VERBS.items()}
                built["anomaly_box"] = anomaly_box
                with gr.Accordion("Heal now", open=False, elem_id="hd-heal"):
                    heal_pick = gr.Dropdown(label="Failed run", choices=[], elem_id="hd-heal-pick")
                    with gr.Row():
                        runs_btn = gr.Button("Refresh list", size="sm")
                        heal_btn = gr.Button("Heal now", variant="primary", size="sm", elem_id="hd-heal-btn")
                    runs_note = gr.Markdown(elem_id="hd-runs-note")
                message = gr.Markdown(elem_id="hd-message")
                with gr.Row():
                    newest_btn = gr.Button("Show newest", size="sm", elem_id="hd-newest")
                place("actions")

        with gr.Accordion("Ask about your runs", open=False, elem_id="hd-ask"):
            with gr.Row():
                question = gr.Textbox(label="Question", scale=5, max_lines=2, elem_id="hd-question",
                                      placeholder="how many runs of sales-daily failed in the last 24 hours?")
                ask_btn = gr.Button("Ask", variant="primary", scale=1, elem_id="hd-ask-btn")
            answer = gr.Markdown(elem_id="hd-answer")

        place("heading")
        place("anomaly")
        with gr.Row(equal_height=True):
            place("cards")
            with gr.Column(scale=1, min_width=300):
                place("cards-side")

        with gr.Row(equal_height=True):
            place("code")

        _section("Data comparison (the fix's outputs against the last good ones)")
        place("comparison")

        with gr.Row(equal_height=False):
            with gr.Column(scale=4, min_width=320):
                _section("Driver log (evidence marked ▶)")
                place("log")
                with gr.Accordion("Full driver log", open=False, elem_id="hd-full-log-box"):
                    place("log-folded")
            with gr.Column(scale=4, min_width=320):
                _section("Reasoning trace")
                place("reasoning")
            with gr.Column(scale=3, min_width=300):
                _section("Diff")
                place("diff")

        missing = [panel.name for panel in PANELS if panel.name not in built]
        if missing:  # a panel whose slot the layout does not have: a defect, caught on the first build
            raise LookupError(f"panels without a place on the page: {', '.join(missing)}")
        view_outputs = [built[panel.name] for panel in PANELS]
        table = built["table"]
        refreshed = [shown, sent, *view_outputs]
        quiet = dict(show_progress="hidden", api_visibility="private")

        demo.load(poll, [selected, sent], refreshed, **quiet)
        demo.load(on_runs, None, [heal_pick, runs_note], **quiet)
        timer.tick(poll, [selected, sent], refreshed, trigger_mode="always_last",
                   concurrency_limit=None, **quiet)
        table.select(pick, [selected, sent], [*refreshed, selected], **quiet)
        newest_btn.click(show_newest, [sent], [*refreshed, selected], **quiet)
        awaiting = built["approval_for"]
        approve_btn.click(on_approve, [awaiting, selected, sent], [message, *refreshed], **quiet)
        reject_btn.click(on_reject, [awaiting, reason, selected, sent], [message, reason, *refreshed], **quiet)
        runs_btn.click(on_runs, None, [heal_pick, runs_note], **quiet)
        heal_btn.click(on_heal, [heal_pick, selected, sent], [message, selected, *refreshed], **quiet)
        flagged = built["anomaly_for"]
        for decision, button in anomaly_buttons.items():
            button.click(on_anomaly(decision), [flagged, selected, sent], [message, *refreshed], **quiet)
        ask_btn.click(on_ask, [question], [answer], show_progress="minimal", api_visibility="private")
        question.submit(on_ask, [question], [answer], show_progress="minimal", api_visibility="private")
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

    `auth` is a (user, password) pair for basic auth (`Settings.dashboard_auth`), None for none. On
    CAI (`CDSW_APP_PORT` set) it listens on 127.0.0.1 at that port. Analytics are off,
    fonts are the system's, and no page asset comes from another host.
    """
    env = os.environ if environ is None else environ
    host, port = bind_address(host, port, env)
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

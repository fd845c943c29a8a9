"""The dashboard in real headless Chromium, served in-process over the real healer.

The data source is the `dashboard_source` fixture (tests/fixtures/app.py): sample incident records
on disk, and the real healer worker (rules only, approve mode, on the manual-mode local CDE) with
one incident it paused for approval. The tests read the page and the records, and play the
cluster by ending the fix run the healer starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

import pytest

from agents.record import FailedRun, IncidentRecord, incident_id
from tests.fixtures.app import DashboardSource
from tests.paths import ARTIFACTS

WAIT_MS = 20_000  # the longest we wait for the page to show something (several poll cycles)
POLL_CYCLES = 3  # poll round trips watched for outside requests


@pytest.fixture
def requests() -> list[str]:
    """Every URL the page asks for, from the first byte."""
    return []


@pytest.fixture
def page(browser, dashboard_url: str, requests: list[str]) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.on("request", lambda request: requests.append(request.url))
    page.on("websocket", lambda ws: requests.append(ws.url))
    page.goto(dashboard_url)
    page.locator("#hd-heading .hd-title").wait_for(timeout=WAIT_MS)
    try:
        yield page
    finally:
        context.close()


def _pick(page, job: str) -> None:
    page.locator("#hd-incidents").get_by_role("gridcell", name=job, exact=True).first.click()


def _wait_text(page, selector: str, text: str) -> None:
    try:
        page.locator(selector).filter(has_text=text).first.wait_for(timeout=WAIT_MS)
    except Exception as exc:  # say what the page showed instead
        shown = page.locator(selector).all_inner_texts()
        raise AssertionError(f"{selector} never showed {text!r}; it shows {shown!r}") from exc


def _polls(requests: list[str]) -> int:
    return sum(1 for url in requests if "/queue/join" in url)


def test_page_shows_the_tutorial_incident_and_asks_only_its_own_server(page, requests, dashboard_url):
    _pick(page, "sql-select-fail")
    _wait_text(page, "#hd-heading", "Incident sql-select-fail--12")
    # the code panels follow the heading in their own updates: wait for this incident's code in both
    # (under load, the incident shown first can still be in them)
    _wait_text(page, "#hd-original-code .cm-content", "Daily balance report")
    _wait_text(page, "#hd-fixed-code .cm-content", "Daily balance report")

    original = page.locator("#hd-original-code .cm-content").inner_text()
    fixed = page.locator("#hd-fixed-code .cm-content").inner_text()
    assert 'spark.sql("SELECT customer_id, balance FROM accounts WHERE balance > 50")' in original
    assert 'spark.sql("SELECT account_id, balance FROM accounts WHERE balance > 50")' in fixed
    assert "customer_id" not in fixed

    removed = page.locator("#hd-diff .hd-d-del").all_inner_texts()
    added = page.locator("#hd-diff .hd-d-add").all_inner_texts()
    assert removed == ['-report = spark.sql("SELECT customer_id, balance FROM accounts WHERE balance > 50")']
    assert added == ['+report = spark.sql("SELECT account_id, balance FROM accounts WHERE balance > 50")']

    reasoning = page.locator("#hd-reasoning").inner_text()
    assert "Diagnosis (model): category code, confidence 93%" in reasoning
    assert "its key is account_id" in reasoning
    assert "rejected by bounded-diff" in reasoning
    assert "State: healed" in reasoning

    evidence = page.locator("#hd-log .hd-ev").all_inner_texts()
    assert len(evidence) == 2 and "cannot be resolved" in evidence[1]
    assert "Running Spark version" not in page.locator("#hd-log").inner_text()
    page.locator("#hd-full-log-box").get_by_text("Full driver log").click()
    _wait_text(page, "#hd-full-log", "Running Spark version 4.3.0")

    original_card = page.locator("#hd-original-card").inner_text()
    fixed_card = page.locator("#hd-fixed-card").inner_text()
    assert "sql-select-fail-files" in original_card and "failed" in original_card
    assert "sql-select-fail-fix-1" in fixed_card and "healed · check passed" in fixed_card
    _wait_text(page, "#hd-timeline", "verify #1")  # like the code panels: a poll begun before the pick may land after it
    assert "rules only" in page.locator("#hd-status").inner_text()
    assert not page.locator("#hd-approve").is_visible()
    link = page.locator("#hd-record a[href]").first.get_attribute("href")
    assert link.split("?")[0].endswith("sql-select-fail--12.json")
    download = page.request.get(urljoin(dashboard_url, link))
    assert download.ok and download.json()["incident_id"] == "sql-select-fail--12"

    # several polls later the user's pick still holds, and nothing came from elsewhere
    seen = _polls(requests)
    page.wait_for_function(
        f"() => performance.getEntriesByType('resource').filter(e => e.name.includes('/queue/join')).length"
        f" >= {seen + POLL_CYCLES}",
        timeout=WAIT_MS,
    )
    assert "Incident sql-select-fail--12" in page.locator("#hd-heading").inner_text()
    own = urlsplit(dashboard_url).netloc
    outside = sorted({url for url in requests
                      if urlsplit(url).scheme not in ("data", "blob") and urlsplit(url).netloc != own})
    assert outside == []
    assert _polls(requests) >= seen + POLL_CYCLES

    page.locator("#hd-full-log-box").get_by_text("Full driver log").click()  # fold it for the picture
    page.locator("#hd-full-log").wait_for(state="hidden", timeout=WAIT_MS)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)


def test_recovery_plots_show_mttr_auto_resolution_and_escalations(page):
    """The run history's week (tests/fixtures/app.py `week_of_outcomes`: 12 heals, 3 escalations)."""
    _wait_text(page, "#hd-outcomes-7 .hd-outcomes-summary", "incidents closed")
    summary = page.locator("#hd-outcomes-7 .hd-outcomes-summary").inner_text()
    assert "Last 7 days: 15 incidents closed, 12 healed (auto-resolution 80%), 3 escalated" in summary
    plot = page.locator("#hd-outcomes-7 svg")
    assert plot.count() == 1 and plot.bounding_box()["width"] > 400  # drawn, and as wide as its column
    text = plot.text_content()  # matplotlib's SVG keeps its text as text
    assert "MTTR per day, minutes (last 7 days)" in text and "Auto-resolution and escalations per day" in text
    assert page.locator("#hd-outcomes-7 svg path").count() > 10  # lines, bars and axes, not an empty frame

    page.locator("#hd-recovery").get_by_role("tab", name="Last 30 days").click()
    _wait_text(page, "#hd-outcomes-30 .hd-outcomes-summary", "Last 30 days:")
    assert "MTTR per day, minutes (last 30 days)" in page.locator("#hd-outcomes-30").text_content()
    assert page.locator("#hd-outcomes-30 svg").is_visible()


def test_a_new_record_on_disk_shows_up_without_reload(page, dashboard_source: DashboardSource):
    _pick(page, "ingest-daily")
    _wait_text(page, "#hd-heading", "Incident ingest-daily--7")
    page.evaluate("window.__same_page = true")

    dashboard_source.store.save(IncidentRecord(
        incident_id=incident_id("late-arrival", 77), job="late-arrival", run_id=77, state="diagnosing",
        failed_run=FailedRun(id=77, job="late-arrival", status="failed")))
    page.locator("#hd-incidents").get_by_role("gridcell", name="late-arrival", exact=True).wait_for(timeout=WAIT_MS)

    assert page.evaluate("window.__same_page === true")
    assert "Incident ingest-daily--7" in page.locator("#hd-heading").inner_text()  # the pick holds
    page.locator("#hd-newest").click()
    _wait_text(page, "#hd-heading", "Incident late-arrival--77")


def test_approve_button_resumes_the_healer_and_the_page_follows_to_healed(page, dashboard_source: DashboardSource):
    _pick(page, "sql-select-fail")
    _wait_text(page, "#hd-heading", "Incident sql-select-fail--12")
    assert not page.locator("#hd-approve").is_visible()

    incident, job = dashboard_source.awaiting, dashboard_source.awaiting_job
    _pick(page, job)
    _wait_text(page, "#hd-heading", f"Incident {incident}")
    page.locator("#hd-approve").wait_for(state="visible", timeout=WAIT_MS)
    assert f"The fix for incident {incident} is waiting" in page.locator("#hd-approval-note").inner_text()
    assert dashboard_source.store.load(incident).state == "awaiting_approval"

    page.locator("#hd-approve").click()
    _wait_text(page, "#hd-message", f"approved: {incident}")
    dashboard_source.lab.end_fix_run(incident)  # the healer deployed the fix; the cluster runs it
    _wait_text(page, "#hd-heading .hd-badge", "healed")
    record = dashboard_source.store.load(incident)
    assert record.state == "healed", record.reason
    assert f"{job}-fix-1" in page.locator("#hd-fixed-card").inner_text()
    page.locator("#hd-approve").wait_for(state="hidden", timeout=WAIT_MS)


def flag_silent_run(source: DashboardSource) -> str:
    """A job whose runs succeed, the last one writing nothing, judged as the watcher judges them
    (the runs CDE lists recorded in the run history, then `agents.anomalies.scan_succeeded` reads their
    event logs): its incident id."""
    from agents.anomalies import scan_succeeded
    from tests.fixtures.cde_local import unique
    from tests.fixtures.eventlogs import event_log

    lab = source.lab
    job = unique("orders-daily")
    lab.client.create_resource(job)
    lab.client.upload_file(job, "orders.py", b"print('orders')\n")
    lab.client.create_job({"name": job, "type": "spark", "mounts": [{"resourceName": job}],
                           "spark": {"file": "orders.py"}})
    for rows in (9_800, 10_400, 10_100, 9_900, 10_300, 0):
        run_id = lab.client.run_job(job)
        lab.cde.backend.write_run_log(run_id, "driver/event", event_log(rows, rows * 40, rows_read=3 * rows))
        lab.cde.backend.set_run_status(run_id, "succeeded")
    listed = lab.client.list_runs(filters=[f"job[eq]{job}"], order_by="ID", ascending=True)
    lab.healer.history.record_runs(listed)
    (record,) = scan_succeeded(lab.client, lab.healer.settings, lab.healer.history, lab.store).flagged
    return record.incident_id


def test_an_anomaly_shows_its_evidence_and_plot_and_dismiss_ends_it(page, dashboard_source: DashboardSource):
    incident = flag_silent_run(dashboard_source)
    job = incident.rsplit("--", 1)[0]
    page.locator("#hd-incidents").get_by_role("gridcell", name=job, exact=True).wait_for(timeout=WAIT_MS)
    _pick(page, job)
    _wait_text(page, "#hd-heading", f"Incident {incident}")
    _wait_text(page, "#hd-anomaly .hd-anomaly-summary", "rows written")
    findings = page.locator("#hd-anomaly .hd-anomaly-findings").inner_text()
    assert "rows written" in findings and "9,800" in findings and "10,400" in findings  # the job's range
    plot = page.locator("#hd-anomaly svg")
    assert plot.count() == 1 and "flagged run" in plot.text_content()
    assert "anomaly: your call" in page.locator("#hd-heading .hd-badge").inner_text()
    page.locator("#hd-anomaly-dismiss").wait_for(state="visible", timeout=WAIT_MS)
    assert "succeeded but did what this job's good runs never did" in page.locator("#hd-anomaly-note").inner_text()
    assert page.locator("#hd-anomaly-heal").is_visible() and page.locator("#hd-anomaly-expected").is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-anomaly.png"), full_page=True)

    page.locator("#hd-anomaly-dismiss").click()
    _wait_text(page, "#hd-message", f"dismissed: {incident}")
    _wait_text(page, "#hd-heading .hd-badge", "dismissed")
    record = dashboard_source.store.load(incident)
    assert (record.state, record.anomaly.decision) == ("dismissed", "dismiss")
    assert dashboard_source.lab.healer.history.telemetry_of(job, record.run_id).label == "dismissed"
    page.locator("#hd-anomaly-dismiss").wait_for(state="hidden", timeout=WAIT_MS)


def test_the_question_box_answers_from_the_run_history_and_shows_its_query(page):
    """No model (rules only): the pattern answers, with the numbers of `week_of_outcomes` (3 escalations)."""
    page.locator("#hd-ask").get_by_text("Ask about your runs").click()
    page.locator("#hd-question textarea").fill("Which jobs were escalated this week and why?")
    page.locator("#hd-ask-btn").click()
    _wait_text(page, "#hd-answer", "were escalated")
    answer = page.locator("#hd-answer").inner_text()
    assert "3 incidents were escalated in the last 7 days" in answer and "nightly-sales 3" in answer
    assert "matched without a model, numbers computed by SQL" in answer
    assert "FROM incidents" in page.locator("#hd-answer code").inner_text()  # the query it ran

    page.locator("#hd-question textarea").fill("what is the weather like?")
    page.locator("#hd-question textarea").press("Enter")
    _wait_text(page, "#hd-answer", "I can answer questions about the run history")

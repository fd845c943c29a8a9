"""The dashboard over the real healer, in Debian's Chromium.

The tutorial's failure (its real driver log) on the played lab's local CDE (tests/fixtures/heal.py:
the runs the healer starts ended by a played cluster) is healed through the scripted model in
approve mode: "Heal now" queues it on the one healer worker, the graph pauses before redeploy
(after the fix's pre-flight and data comparison), the page shows the original and fixed code, the
diff, the diagnosis and the comparison, and clicking Approve
resumes the paused incident until the page shows it healed. Nothing on the page comes from any
host but the dashboard's own.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest

from agents.record import RecordStore
from app.dashboard import launch
from app.server import start_stack
from tests.fixtures.app import free_port
from tests.fixtures.heal import TUTORIAL_DIAGNOSIS, TUTORIAL_JOB, TUTORIAL_PATCH
from tests.paths import ARTIFACTS

WAIT_MS = 30_000
MAX_HEAL_WAIT_S = 600
MAX_SCROLL_STEPS = 40  # a fix run and its output check on the shared 2-core machine


def wait_for_state(store: RecordStore, incident: str, states: set[str], limit_s: float) -> str:
    deadline = time.monotonic() + limit_s
    state = ""
    while time.monotonic() < deadline:
        record = store.load(incident)
        state = record.state if record else ""
        if state in states:
            return state
        time.sleep(0.5)
    pytest.fail(f"{incident} stayed {state or 'unopened'}; expected one of {sorted(states)}")


def code_text(page, editor: str, needle: str) -> str:
    """The text of a code view around `needle`: the editor renders only the lines in view, so
    scroll through it until the needle's line is rendered."""
    content, scroller = page.locator(f"{editor} .cm-content"), page.locator(f"{editor} .cm-scroller").first
    content.wait_for(timeout=WAIT_MS)
    scroller.hover()
    for _ in range(MAX_SCROLL_STEPS):
        text = content.inner_text()
        if needle in text:
            return text
        page.mouse.wheel(0, 120)  # a real wheel event, so the editor renders the lines scrolled to
        page.wait_for_timeout(150)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-live-failure.png"), full_page=True)
    pytest.fail(f"{needle!r} never showed in {editor}: {content.inner_text()[:300]!r}")


@pytest.fixture
def live_dashboard(played_lab, scripted_llm, tmp_path):
    scripted_llm.add(TUTORIAL_DIAGNOSIS).add(TUTORIAL_PATCH)
    settings = played_lab.settings(tmp_path / "healer", scripted_llm, HEAL_MODE="approve",
                                 HEAL_DETERMINISTIC_FIXES="false", JOB_NAME=TUTORIAL_JOB)
    healer, worker, service = start_stack(settings, watch=False)  # commands only: no monitor cycles
    port = free_port()
    demo = launch(service, "127.0.0.1", port, block=False, poll_seconds=1.0, environ={})
    try:
        yield worker, service, f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
        worker.stop()
        healer.close()


def test_approve_on_the_page_resumes_the_real_healer(played_lab, live_dashboard, browser):
    worker, service, url = live_dashboard
    run_id = played_lab.fresh_failure("tutorial")
    incident = f"{TUTORIAL_JOB}--{run_id}"
    assert "queued" in worker.heal_now(TUTORIAL_JOB, run_id)
    wait_for_state(service.records, incident, {"awaiting_approval"}, MAX_HEAL_WAIT_S)

    requests: list[str] = []
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.on("request", lambda request: requests.append(request.url))
    page.on("websocket", lambda ws: requests.append(ws.url))
    try:
        page.goto(url)
        page.locator("#hd-heading").filter(has_text=f"Incident {incident}").wait_for(timeout=WAIT_MS)
        original = code_text(page, "#hd-original-code", "SELECT customer_id")
        fixed = code_text(page, "#hd-fixed-code", "SELECT account_id")
        assert "SELECT customer_id, category, value1, value2" in original
        assert "SELECT account_id, category, value1, value2" in fixed and "customer_id" not in fixed
        assert any("customer_id" in t for t in page.locator("#hd-diff .hd-d-del").all_inner_texts())
        assert any("account_id" in t for t in page.locator("#hd-diff .hd-d-add").all_inner_texts())
        reasoning = page.locator("#hd-reasoning").inner_text()
        assert "key column is account_id" in reasoning and "Diagnosis (model)" in reasoning
        assert "scripted" in page.locator("#hd-status").inner_text()
        assert "sk-test-secret-token-5678" not in page.content()
        # the human approves with the data comparison of the fix's pre-flight in front of them
        comparison = page.locator("#hd-comparison").inner_text()
        assert f"{TUTORIAL_JOB}-fix-1-preflight" in comparison or "-preflight run" in comparison
        assert "default.dynamic_incremental_target_table_large_overlap" in comparison and "✗" not in comparison

        page.locator("#hd-approve").wait_for(state="visible", timeout=WAIT_MS)
        page.locator("#hd-approve").click()
        wait_for_state(service.records, incident, {"healed", "escalated", "error"}, MAX_HEAL_WAIT_S)
        page.locator("#hd-heading .hd-badge").filter(has_text="ealed").wait_for(timeout=WAIT_MS)
        assert service.incident(incident).state == "healed"
        assert "check passed" in page.locator("#hd-fixed-card").inner_text()
        page.locator("#hd-approve").wait_for(state="hidden", timeout=WAIT_MS)

        own = urlsplit(url).netloc
        outside = sorted({u for u in requests if urlsplit(u).scheme not in ("data", "blob")
                          and urlsplit(u).netloc != own})
        assert outside == []
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-live.png"), full_page=True)
    finally:
        context.close()

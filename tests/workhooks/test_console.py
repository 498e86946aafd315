"""The web console end to end in headless Chromium: sign in, find an event, replay its dead letter, see it delivered.

Real processes (`workhooks serve` and `workhooks worker`), a real sink on 127.0.0.1, Debian's
chromium driven by Playwright. Screenshots go to var/screenshots/ (the README shows one).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.servers import ROOT, TOKEN, CaptureServer, Service, chromium, wait_until

pytestmark = pytest.mark.slow

ADMIN = "console-admin-token-0123456789"
SHOTS = ROOT / "var" / "screenshots"


def config(sink: CaptureServer) -> str:
    return f"""
sources:
  wordy-main: {{platform: wordy, token: {TOKEN}}}
sinks:
  erp: {{type: webhook, url: "{sink.url}", allow_private: true, retry_intervals: [1]}}
routes:
  - to: [erp]
admin:
  token: {ADMIN}
"""


def test_sign_in_find_an_event_replay_its_dead_letter_and_see_it_delivered(
    start: Callable[[str], Service], sink_server: CaptureServer
) -> None:
    from playwright.sync_api import expect, sync_playwright

    browser_path = chromium()
    sink_server.status = 422  # refused for good: a dead letter at once
    service = start(config(sink_server))
    for job in (30, 31, 32):
        assert service.wordy(json.dumps({"status": ["acp", "aer"], "job_id": job}).encode()).status_code == 202
    wait_until(lambda: len(sink_server.arrived) == 3, what="three refused deliveries")
    SHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            page.goto(f"{service.base}/admin/")
            page.get_by_label("Admin token").fill("not-the-token-at-all")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("alert")).to_have_text("The token was refused.")

            page.get_by_label("Admin token").fill(ADMIN)
            page.get_by_role("button", name="Sign in").click()
            rows = page.locator("#event-rows tr")
            expect(rows).to_have_count(6)  # three callbacks, and their dead letters announced
            page.get_by_label("source").fill("wordy-main")
            page.get_by_label("source").press("Enter")
            page.get_by_label("source").blur()
            expect(rows).to_have_count(3)
            expect(rows.first.locator(".status")).to_have_text("dead")
            page.screenshot(path=str(SHOTS / "console-events.png"))

            page.get_by_label("subject").fill("job/31")
            page.get_by_label("subject").press("Enter")
            page.get_by_label("subject").blur()
            expect(rows).to_have_count(1)
            event_id = rows.first.get_attribute("data-event-id")
            rows.first.click()
            timeline = page.get_by_test_id("timeline")
            expect(timeline).to_contain_text("received")
            expect(timeline).to_contain_text("erp attempt 1: failed: answered 422")
            page.screenshot(path=str(SHOTS / "console-timeline.png"), full_page=True)

            sink_server.status = 200  # the sink is fixed; replay from the failures view
            page.get_by_role("button", name="Failures").click()
            dead_row = page.locator(f'tr[data-delivery-id="{event_id}-erp"]')
            expect(dead_row).to_be_visible()
            page.screenshot(path=str(SHOTS / "console-failures.png"))
            dead_row.get_by_role("button", name="Replay").click()
            expect(page.get_by_role("status")).to_have_text("replay: queued")
            delivered = sink_server.wait_for(1, timeout=20)
            assert [request.headers["webhook-id"] for request in delivered] == [event_id]

            page.get_by_role("button", name="Events").click()
            expect(rows.first.locator(".status")).to_have_text("delivered", timeout=10_000)
            page.get_by_role("button", name="Sinks & sources").click()
            cells = page.locator('tr[data-sink="erp"] td')
            expect(cells.nth(2)).to_have_text("closed")  # its breaker
            expect(cells.nth(5)).to_have_text("1")  # delivered
            expect(cells.nth(7)).to_have_text("3")  # dead letters counted, replayed or not
            page.once("dialog", lambda dialog: dialog.accept("ERP maintenance"))  # the reason asked for
            cells.nth(8).get_by_role("button", name="Pause").click()
            expect(cells.nth(2)).to_have_text("paused", timeout=10_000)
            assert "paused (ERP maintenance)" in service.cli("sinks", "list").stdout
            page.screenshot(path=str(SHOTS / "console-sinks.png"))
            page.locator('tr[data-sink="erp"] td').nth(8).get_by_role("button", name="Resume").click()
            expect(page.locator('tr[data-sink="erp"] td').nth(2)).to_have_text("closed", timeout=10_000)
            assert ADMIN not in page.content()
        finally:
            browser.close()

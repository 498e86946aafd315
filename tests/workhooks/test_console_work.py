"""The console's Work view and subject page end to end in headless Chromium: find what awaits us, open it,
read its timeline, reject it with a reason, and see Wordy take the rejection once.

Real processes (`workhooks serve` and `workhooks worker`), the Wordy API emulator on 127.0.0.1 sending
its callbacks to the receiver, Debian's chromium driven by Playwright. The screenshot goes to
var/screenshots/console-work.png.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.emulators.wordy import Wordy
from tests.servers import ROOT, TOKEN, Service, chromium, wait_until

pytestmark = pytest.mark.slow

SHOTS = ROOT / "var" / "screenshots"

ADMIN = "console-work-admin-token-0123456789"
API_KEY = "wordy-console-key-0123456789abcdef"
# Markup in a reason is text: shown as typed, never parsed, and sent to Wordy as typed.
REASON = 'The headline is still wrong <img src=x onerror="document.title=1">'


def config(wordy: Wordy) -> str:
    return f"""
sources:
  wordy-main:
    platform: wordy
    token: {TOKEN}
    api_key: {API_KEY}
    base_url: {wordy.base_url}
sinks:
  console: {{type: log}}
routes:
  - to: [console]
admin:
  token: {ADMIN}
"""


@pytest.fixture
def wordy() -> Iterator[Wordy]:
    emulator = Wordy(api_key=API_KEY, auto_deliver=True).start()
    yield emulator
    emulator.stop()


def work(service: Service, **query: str) -> list[dict[str, Any]]:
    answer = service.http.get("/admin/api/work", params=query, headers={"Authorization": f"Bearer {ADMIN}"})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def test_find_what_awaits_us_read_its_timeline_and_reject_it_with_a_reason(
    start: Callable[[str], Service], wordy: Wordy
) -> None:
    from playwright.sync_api import Dialog, expect, sync_playwright

    browser_path = chromium()
    service = start(config(wordy))
    hook = f"{service.base}/hooks/wordy-main/{TOKEN}"
    editing = wordy.add_job(status="acp", callback_url=hook)
    wordy.set_status(editing, "aer")  # with the editor: in progress
    waiting = wordy.add_job(status="acp", callback_url=hook)
    wordy.set_status(waiting, "aer")
    wordy.deliver(waiting, {"text": "edited"})  # back to us: acr, awaiting our review
    wait_until(lambda: {(row["subject"], row["phase"]) for row in work(service)}
               == {(f"job/{editing}", "in_progress"), (f"job/{waiting}", "awaiting_client")}, 20,
               "both jobs in the work list, where they stand")  # fmt: skip
    shown = service.http.get(f"/admin/api/work/wordy-main/job/{waiting}", headers={"Authorization": f"Bearer {ADMIN}"})
    stay_seen = shown.json()["stay"]  # the event that began its wait for us
    assert stay_seen
    SHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        dialogs: list[str] = []

        def answer(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            dialog.accept()

        page.on("dialog", answer)
        try:
            page.goto(f"{service.base}/admin/")
            page.get_by_label("Admin token").fill(ADMIN)
            page.get_by_role("button", name="Sign in").click()
            expect(page.locator("#event-rows tr").first).to_be_visible()  # the events view still comes first

            page.get_by_role("button", name="Work", exact=True).click()
            rows = page.locator("#work-rows tr")
            expect(rows).to_have_count(2)
            row = page.locator(f'#work-rows tr[data-subject="job/{editing}"] td')
            expect(row.nth(0)).to_have_text("wordy")
            expect(row.nth(4)).to_have_text("In progress")
            expect(row.nth(5)).to_have_text(re.compile(r"^\d+s$"))  # time in phase: s, m, h, d
            expect(row.nth(6)).to_have_text("wordy.job.status_changed")
            expect(row.nth(7)).to_have_text("console:delivered")
            page.screenshot(path=str(SHOTS / "console-work.png"))

            phase = page.get_by_label("phase", exact=True)
            assert "Awaiting us" in phase.locator("option").all_text_contents()
            phase.select_option(label="Awaiting us")
            expect(rows).to_have_count(1)
            expect(rows.first).to_have_attribute("data-subject", f"job/{waiting}")
            expect(rows.first.locator("td").nth(4)).to_have_text("Awaiting us")
            page.get_by_label("from", exact=True).select_option("wordy-main")  # the source filter keeps it
            expect(rows).to_have_count(1)

            rows.first.click()
            expect(page.get_by_test_id("subject-phase")).to_have_text("Awaiting us")
            expect(page.get_by_test_id("subject-status")).to_have_text("awaiting customer response")
            timeline = page.get_by_test_id("work-timeline")
            expect(timeline).to_contain_text("awaiting your review")
            expect(timeline.locator('tr[data-kind="event"]')).to_have_count(2)  # acp -> aer, aer -> acr
            expect(timeline).not_to_contain_text('"type"')  # sentences, not JSON
            actions = page.get_by_test_id("subject-actions")
            expect(actions.get_by_role("button", name="Confirm complete")).to_be_visible()
            expect(actions.get_by_role("button", name="Pay")).to_have_count(0)  # spends money: not configured

            actions.get_by_role("button", name="Reject…").click()
            send = page.get_by_role("button", name="Send reject")
            send.click()  # no reason yet: the browser asks for one, nothing is confirmed or sent
            reason = page.get_by_label("Why is the edit not right?")
            assert reason.evaluate("(text) => text.validity.valueMissing")
            expect(page.get_by_test_id("action-outcome")).to_have_text("")
            assert dialogs == []

            reason.fill(REASON)
            send.click()
            outcome = page.get_by_test_id("action-outcome")
            expect(outcome).to_have_text("reject done — Wordy answered 200", timeout=10_000)
            assert dialogs == ["Send the edit back to the editor?"]
            wait_until(lambda: wordy.jobs[waiting].status == "aer", 10, "Wordy to have the rejection")
            said = [message["message"] for message in wordy.jobs[waiting].conversation]
            assert said.count(REASON) == 1
            rejects = [r for r in wordy.requests if r.method == "POST" and r.path.endswith(f"/job/{waiting}/reject/")]
            assert len(rejects) == 1

            action_rows = timeline.locator('tr[data-kind="action"]')
            expect(action_rows).to_have_count(1)
            expect(action_rows.first).to_contain_text("reject by the console: Wordy answered 200")
            expect(action_rows.first).to_contain_text(REASON)  # as typed: text, not markup
            assert page.locator("#subject-timeline img").count() == 0
            assert page.title() == "workhooks console"
            # Wordy's own callback comes back: with the editor again, so reject no longer applies
            expect(page.get_by_test_id("subject-phase")).to_have_text("In progress", timeout=15_000)
            expect(actions.get_by_role("button", name="Reject…")).to_have_count(0)
            expect(actions.get_by_role("button", name="Reply…")).to_be_visible()
            page.screenshot(path=str(SHOTS / "console-subject.png"), full_page=True)

            page.get_by_role("button", name="All work").click()
            expect(rows).to_have_count(0)  # nothing awaits us now
            assert ADMIN not in page.content()
        finally:
            browser.close()

    (record, *_) = service.http.get("/admin/api/actions", headers={"Authorization": f"Bearer {ADMIN}"}).json()["items"]
    assert (record["action"], record["subject"], record["status"]) == ("reject", f"job/{waiting}", "done")
    assert record["actor"]["via"] == "console" and record["text"] == REASON
    assert record["stay"] == stay_seen  # the stay the page was loaded with

"""Each platform's actions against its emulator (written from its document): what is sent, what a person reads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.emulators.sharedworkforce import SharedWorkforce
from tests.emulators.wordy import Wordy
from tests.emulators.worksection import Worksection
from workhooks.config.loading import ConfigError, parse_config
from workhooks.platforms import PLATFORMS
from workhooks.platforms.base import ActionSettings
from workhooks.platforms.sharedworkforce.settings import SharedWorkforceSettings
from workhooks.platforms.wordy.settings import WordySettings
from workhooks.platforms.workreduce.settings import WorkReduceSettings
from workhooks.platforms.worksection.settings import WorksectionSettings

KEY = "wordy-api-key-0123456789abcdef"
TOKEN = "wordy-token-0123456789abcdef"
WORDY = PLATFORMS["wordy"].actions


@pytest.fixture
def wordy() -> Iterator[Wordy]:
    emulator = Wordy(api_key=KEY).start()
    yield emulator
    emulator.stop()


def wordy_settings(emulator: Wordy) -> WordySettings:
    return WordySettings(platform="wordy", token=TOKEN, api_key=KEY, base_url=emulator.base_url)  # type: ignore[arg-type]


def test_wordy_confirm_reject_reply_and_pay_reach_the_documented_endpoints(wordy: Wordy) -> None:
    settings = wordy_settings(wordy)
    job = wordy.add_job(status="acr")
    state: dict[str, Any] = {"status": "acr"}
    assert [a.name for a in PLATFORMS["wordy"].actions_for(state, settings)] == ["confirm", "reject", "reply"]
    rejected = WORDY["reject"].perform(settings, f"job/{job}", state, "The headline is wrong")  # type: ignore[misc]
    assert rejected.ok and rejected.status == 200
    assert wordy.jobs[job].status == "aer" and wordy.jobs[job].conversation[-1]["message"] == "The headline is wrong"
    again = WORDY["confirm"].perform(settings, f"job/{job}", state, None)  # type: ignore[misc]
    assert not again.ok and again.status == 400 and "cannot confirm a job in status aer" in again.detail
    replied = WORDY["reply"].perform(settings, f"job/{job}", {"status": "aer"}, "Thanks")  # type: ignore[misc]
    assert replied.ok and wordy.jobs[job].conversation[-1]["message"] == "Thanks"
    poor = wordy.add_job(content="word " * 100_000, status="acp")
    unpaid = WORDY["pay"].perform(settings, f"job/{poor}", {"status": "acp"}, None)  # type: ignore[misc]
    assert not unpaid.ok and unpaid.status == 402 and "Wordy answered 402" in unpaid.detail


def test_an_action_whose_answer_never_came_is_unknown_not_failed(wordy: Wordy) -> None:
    settings = wordy_settings(wordy)
    job = wordy.add_job(status="acr")
    wordy.stop()
    outcome = WORDY["confirm"].perform(settings, f"job/{job}", {"status": "acr"}, None)  # type: ignore[misc]
    assert outcome.unknown and not outcome.ok and "no answer" in outcome.detail


def test_shared_workforce_correct_posts_an_authorized_response_as_text_or_as_the_json_it_is() -> None:
    emulator = SharedWorkforce(api_key="acdc30b2-14c5-46ee-ba35-11d50edc65ec").start()
    try:
        settings = SharedWorkforceSettings(platform="sharedworkforce", api_key="acdc30b2-14c5-46ee-ba35-11d50edc65ec",
                                           base_url=emulator.url)  # type: ignore[arg-type]  # fmt: skip
        task = emulator.add_task("Check the photo")
        emulator.complete_task(task, ["Green"])
        correct = PLATFORMS["sharedworkforce"].actions["correct"]
        assert not correct.applies({"status": "open"}) and correct.applies({"status": "completed"})
        for text in ("Blue", '["Contains nudity", "Contains swearing"]'):
            outcome = correct.perform(settings, f"task/{task}", {"status": "completed"}, text)  # type: ignore[misc]
            assert outcome.ok and outcome.status == 202, outcome
        assert emulator.authorized[task] == ["Blue", ["Contains nudity", "Contains swearing"]]
    finally:
        emulator.stop()


def test_worksection_comment_close_and_reopen_use_the_tasks_page_and_say_its_errors() -> None:
    emulator = Worksection(api_key="worksection-test-key").start()
    try:
        settings = WorksectionSettings(platform="worksection", account_url=emulator.url,
                                       api_key="worksection-test-key")  # type: ignore[arg-type]  # fmt: skip
        project = emulator.add_project("Site")
        task = emulator.add_task(project, "Homepage copy")
        state: dict[str, Any] = {"current": {"id": task, "page": emulator.page(task), "status": "active"}}
        found = PLATFORMS["worksection"].actions
        assert [a.name for a in PLATFORMS["worksection"].actions_for(state, settings)] == ["comment", "close"]
        assert found["comment"].perform(settings, f"task/{task}", state, "Looks good").ok  # type: ignore[misc]
        assert emulator.comments[task][-1]["text"] == "Looks good"
        assert found["close"].perform(settings, f"task/{task}", state, None).ok  # type: ignore[misc]
        twice = found["close"].perform(settings, f"task/{task}", state, None)  # type: ignore[misc]
        assert not twice.ok and twice.detail == "Worksection error 12: Task is already closed"
        assert found["reopen"].perform(settings, f"task/{task}", state, None).ok  # type: ignore[misc]
        assert emulator.tasks[task]["status"] == "active"
        unknown = found["close"].perform(settings, f"task/{task}", {"current": {"status": "active"}}, None)  # type: ignore[misc]
        assert not unknown.ok and "page is not known" in unknown.detail
    finally:
        emulator.stop()


def test_workreduce_has_no_approve_endpoint_only_a_link_when_its_address_is_configured() -> None:
    opened = PLATFORMS["workreduce"].actions["open"]
    assert opened.perform is None and opened.link is not None
    bare = WorkReduceSettings(platform="workreduce", api_key="k" * 20)  # type: ignore[arg-type]
    assert opened.link(bare, "order/00007847", {}) is None
    linked = WorkReduceSettings(platform="workreduce", api_key="k" * 20,
                                order_url="https://app.example.com/orders/{number}")  # type: ignore[arg-type]  # fmt: skip
    assert opened.link(linked, "order/00007847", {}) == "https://app.example.com/orders/00007847"


def test_who_may_act_from_slack_nobody_until_listed_and_money_only_by_name() -> None:
    confirm, pay = WORDY["confirm"], WORDY["pay"]
    nobody = ActionSettings()
    assert not nobody.enabled(confirm) and not nobody.permits(confirm, "U0123ABCD", "C0456EFGH", True)
    listed = ActionSettings.model_validate({"allow": {"slack_users": ["U0123ABCD"], "slack_channels": ["C0456EFGH"]},
                                            "confirm": {"allow": {"slack_users": ["U0999BOBB"]}}})  # fmt: skip
    assert listed.permits(WORDY["reject"], "U0123ABCD", None, True)
    assert listed.permits(WORDY["reject"], "U0555ANYO", "C0456EFGH", True)
    assert not listed.permits(WORDY["reject"], "U0555ANYO", "C0456EFGH", False)  # a Slack Connect guest
    assert not listed.permits(confirm, "U0123ABCD", "C0456EFGH", True)  # confirm: narrowed to BOB
    assert listed.permits(confirm, "U0999BOBB", None, True)
    assert not listed.enabled(pay) and not listed.permits(pay, "U0123ABCD", "C0456EFGH", True)
    paying = ActionSettings.model_validate({"pay": {"allow": {"slack_users": ["U0123ABCD"]}}})
    assert paying.enabled(pay) and paying.permits(pay, "U0123ABCD", None, True)


def test_the_config_refuses_an_action_its_platform_does_not_have() -> None:
    text = f"""
sources:
  wordy-main: {{platform: wordy, token: {TOKEN}, actions: {{approve: {{}}}}}}
"""
    with pytest.raises(ConfigError, match=r"sources.wordy-main.actions.approve: wordy has no such action"):
        parse_config(text, {})
    with pytest.raises(ConfigError, match="slack_users"):
        parse_config(text.replace("approve: {}", "allow: {slack_users: [alice]}"), {})

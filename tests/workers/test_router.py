from __future__ import annotations

from workers import router
from workers.router import sinks_for
from workhooks.config.loading import parse_config
from workhooks.core.events import Event

CONFIG = parse_config(
    """
sources:
  wordy-main: {platform: wordy, token: aaaaaaaaaaaaaaaaaaaa}
  swf: {platform: sharedworkforce, api_key: swf-router-key-0123}
sinks:
  a: {type: log}
  b: {type: log}
  c: {type: log}
routes:
  - match: {source: wordy-main}
    to: [a]
  - match: {type: "sharedworkforce.*"}
    to: [b, a]
  - match: {phase: awaiting_client, data.status: [acr, acp]}
    to: [c]
  - match: {subject: "task/9*", data.callback_params.project: alpha}
    to: [c, b]
""",
    {},
)


def event(source: str, type: str, subject: str, data: dict[str, object], phase: str | None = None) -> Event:
    return Event("evt_1", source, type, subject, "2026-01-01T00:00:00Z", data, phase)  # type: ignore[arg-type]


def test_source_match() -> None:
    assert sinks_for(CONFIG, event("wordy-main", "wordy.job.message_added", "job/1", {})) == ["a"]


def test_fan_out_names_each_sink_once_in_route_order() -> None:
    assert sinks_for(CONFIG, event("swf", "sharedworkforce.task.responses_received", "task/1", {})) == ["b", "a"]
    wordy_awaiting = event("wordy-main", "wordy.job.status_changed", "job/1", {"status": "acr"}, "awaiting_client")
    assert sinks_for(CONFIG, wordy_awaiting) == ["a", "c"]


def test_all_keys_must_hold() -> None:
    in_progress = event("wordy-main", "wordy.job.status_changed", "job/1", {"status": "acr"}, "in_progress")
    assert sinks_for(CONFIG, in_progress) == ["a"]


def test_nested_data_fields_and_subject_globs() -> None:
    task = event("swf", "sharedworkforce.task.responses_received", "task/91", {"callback_params": {"project": "alpha"}})
    assert sinks_for(CONFIG, task) == ["b", "a", "c"]
    other = event("swf", "sharedworkforce.task.responses_received", "task/1", {"callback_params": {"project": "alpha"}})
    assert sinks_for(CONFIG, other) == ["b", "a"]


def test_numbers_match_their_text() -> None:
    config = parse_config("sinks: {a: {type: log}}\nroutes:\n  - match: {data.job_id: '123'}\n    to: [a]\n", {})
    assert sinks_for(config, event("s", "t", "x", {"job_id": 123})) == ["a"]
    assert sinks_for(config, event("s", "t", "x", {"job_id": 124})) == []


def test_continue_false_stops_and_templates_come_from_the_first_route_naming_the_sink() -> None:
    config = parse_config(
        """
sinks: {a: {type: log}, b: {type: log}, c: {type: log}}
routes:
  - match: {type: "wordy.*"}
    to: [a]
    template: {title: first}
  - match: {phase: awaiting_client}
    to: [a, b]
    continue: false
    template: {title: second}
  - to: [c]
""",
        {},
    )
    awaiting = event("w", "wordy.job.status_changed", "job/1", {}, "awaiting_client")
    plan = router.plan(config, awaiting)
    assert [(t.sink, t.route, t.template.title if t.template else None) for t in plan] == [
        ("a", 0, "first"),
        ("b", 1, "second"),
    ]
    assert sinks_for(config, event("w", "wordy.job.status_changed", "job/1", {}, "in_progress")) == ["a", "c"]
    assert router.explain(config, awaiting) == [
        "route 1: match -> a",
        "route 2: match -> a, b",
        "route 3: not reached (an earlier route has continue: false)",
    ]
    assert router.explain(config, event("s", "sharedworkforce.x", "task/1", {}, "completed"))[:2] == [
        "route 1: no match: type is 'sharedworkforce.x', wanted 'wordy.*'",
        "route 2: no match: phase is 'completed', wanted 'awaiting_client'",
    ]

"""Carry out an action a person asked for (store/actions.py): call the platform once, record its answer,
show it where the person asked (the Slack thread's parent) and in the audit trail.

Before calling, the subject's state now decides: an action that no longer applies (the job moved on,
another person confirmed it first) is not sent. A job run again after its worker died mid-send finds
the action "sending": whether the platform applied it is not known, so it is not sent again unless
repeating it is harmless (``retry_safe``); the person is told to check.
"""

from __future__ import annotations

import redis
import structlog

from workers import state as states
from workhooks.config.schema import Config
from workhooks.core.redact import redact_text
from workhooks.platforms import PLATFORMS
from workhooks.platforms.api import Outcome
from workhooks.platforms.base import Action, State
from workhooks.store import actions, stays
from workhooks.store.actions import ActionRecord, Status

log = structlog.get_logger("workhooks.actions")


def status_of(state: State | None) -> str:
    return stays.shown_status(state) or "unknown"


def stale(record: ActionRecord, state: State | None, action: Action | None) -> str | None:
    """Why a transition is no longer what the person saw: the subject's stay changed since."""
    if action is not None and action.once and record.stay and stays.entry(state) != record.stay:
        return f"it moved on since the button was shown: it is {status_of(state)} now"
    return None


def run(connection: redis.Redis, config: Config, action_id: str) -> Status | None:
    """Carry out one action (the RQ job, and `workhooks act` in its own process); its final status."""
    record = actions.load(connection, action_id)
    if record is None:
        log.warning("action_gone", action_id=action_id, reason="its record expired or was never stored")
        return None
    structlog.contextvars.bind_contextvars(action_id=action_id, source=record.source, subject=record.subject,
                                           action=record.action, event_id=record.stay)  # fmt: skip
    before = actions.start(connection, action_id)
    if before not in ("queued", "sending"):
        return before  # done already (the CLI ran it, or this job ran before)
    current = states.load(connection, record.source, record.subject)
    settings = config.sources.get(record.source)
    known = PLATFORMS[settings.platform].actions.get(record.action) if settings is not None else None
    if before == "sending" and not (known is not None and known.retry_safe):
        unknown = Outcome(False, None, "a worker stopped while sending it: check the platform before trying again",
                          unknown=True)  # fmt: skip
        return _end(connection, config, record, "unknown", unknown, current)
    # the config may have changed since it was asked (pay no longer named), and the subject may have moved on
    why = actions.why_not(config, record.source, record.action, current) or stale(record, current, known)
    perform = known.perform if known is not None else None
    if why is not None or settings is None or perform is None or current is None:
        return _end(connection, config, record, "failed", Outcome(False, None, why or "not possible now"), current)
    try:
        outcome = perform(settings, record.subject, current, record.text)
    except Exception as error:  # a bug or an unexpected answer: whether the platform applied it is not known
        log.exception("action_raised")
        outcome = Outcome(False, None, f"{type(error).__name__} while sending: check the platform", unknown=True)
    status: Status = "done" if outcome.ok else "unknown" if outcome.unknown else "failed"
    return _end(connection, config, record, status, outcome, current)


def _end(
    connection: redis.Redis,
    config: Config,
    record: ActionRecord,
    status: Status,
    outcome: Outcome,
    current: State | None,
) -> Status:
    source = config.sources.get(record.source)
    platform = PLATFORMS[source.platform].presenter.name if source is not None else ""
    answer = redact_text(outcome.detail, config.secrets())
    if status == "done":
        answer = f"{platform} {answer}".strip()
    final = actions.finish(connection, record, status, answer, outcome.status, status_of(current))
    log.info("action_finished" if status == "done" else "action_failed", outcome=status, by=record.actor.shown(),
             via=record.actor.via, answer=answer, status_code=outcome.status)  # fmt: skip
    announce(connection, config, final)
    return status


def announce(connection: redis.Redis, config: Config, record: ActionRecord) -> None:
    """Update the subject's Slack threads: the parent shows the action and only what applies now."""
    from workers import sinks  # the sink types: workers.sinks.slack_app renders the parent

    current = states.load(connection, record.source, record.subject)
    for name, sink_settings in config.sinks.items():
        if sink_settings.type != "slack_app":
            continue
        try:
            sink = sinks.build(sink_settings, name)
            show = getattr(sink, "after_action", None)
            if show is not None:
                show(config, record, current, connection)
        except Exception as error:  # Slack down: the action itself is recorded and done
            log.warning("action_not_shown", sink=name, reason=f"{type(error).__name__}: {error}")

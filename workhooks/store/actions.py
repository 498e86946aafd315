"""Actions people take on subjects (confirm, reject, reply): asked for once, queued, answered, audited.

An action is asked for with an identity: a transition (``once``) is the action on the subject's current
stay — a double click, Slack resending the click, a second person pressing the same button all name the
same stay — and anything else (a reply) the request's own id (the Slack view, the link, the console's
request id). The first request with an identity stores the action and queues its job, in one
transaction; a later one gets the stored action back and queues nothing.

Each action's hash says who asked (through Slack, the console, an email link or the CLI), what, when,
and once it ran, what the platform answered. A subject's list is its audit trail (newest first).
Text a person wrote is stored as they wrote it; callers redact the config's secrets from it first.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

import redis

from workhooks.config.schema import Config
from workhooks.core.clock import utc_now
from workhooks.core.events import digest
from workhooks.platforms import PLATFORMS
from workhooks.store import jobs, keys, stays, telemetry

Via = Literal["slack", "console", "email", "cli"]
Status = Literal["queued", "sending", "done", "failed", "unknown", "refused"]
FINAL: tuple[Status, ...] = ("done", "failed", "unknown", "refused")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asked: ``who`` is a Slack user id, "console", an email link's address, the CLI's OS user."""

    via: Via
    who: str
    name: str = ""  # as people know them (a Slack username)
    channel: str | None = None  # Slack: where the button was

    def shown(self) -> str:
        """As a person reads it: a Slack mention, "the console", "an email link to …", "alice (CLI)"."""
        if self.via == "slack":
            return f"<@{self.who}>"
        if self.via == "console":
            return "the console"
        if self.via == "email":
            return f"an email link to {self.who}"
        return f"{self.who} (CLI)"


@dataclass(frozen=True, slots=True)
class Reply:
    """Where the answer is shown: a Slack message to update, through which slack_app sink."""

    sink: str
    channel: str
    ts: str


@dataclass(frozen=True, slots=True)
class ActionRecord:
    id: str
    source: str
    subject: str
    action: str
    actor: Actor
    requested_at: str
    status: Status
    text: str | None = None
    stay: str | None = None  # the stay it was asked in (the event that began it)
    answer: str = ""
    answer_status: int | None = None
    finished_at: str | None = None
    reply: Reply | None = None
    once: str = ""  # its identity (``identity``): while it holds this, the same request is this action
    subject_status: str = ""  # the subject's status when it ran

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def identity(source: str, subject: str, action: str, once: bool, stay: str | None, request_id: str | None) -> str:
    """What makes two requests the same action (module docstring). Transitions share one identity per stay:
    a confirm and a reject of the same edit are one decision, whichever came first."""
    if once:
        return digest(source, subject, "stay", stay or "")
    return digest(source, subject, action, "request", request_id or secrets.token_hex(16))


def why_not(config: Config, source: str, name: str, state: dict[str, Any] | None) -> str | None:
    """Why the action cannot be taken on a subject in ``state`` (None: it can). Asked where it is requested
    (Slack, the console, a link, the CLI) and again by the worker before it calls the platform, so a config
    changed since (pay no longer named, a key removed) wins over a button or a link made before."""
    settings = config.sources.get(source)
    if settings is None:
        return f"no source named {source!r}"
    platform = PLATFORMS[settings.platform]
    action = platform.actions.get(name)
    if action is None or action.perform is None:
        offered = ", ".join(n for n, a in platform.actions.items() if a.perform is not None) or "none"
        return f"{platform.presenter.name} has no action {name!r} (actions: {offered})"
    if not action.usable(settings):
        return f"{name} needs the source's API credentials (sources.{source}.api_key)"
    if action.spends_money and name not in settings.actions.rules():
        return f"{name} spends money: it is off unless sources.{source}.actions.{name} is configured"
    if state is None:
        return "the subject is not known (its state expired or was never recorded)"
    if not action.applies(state):
        return f"{name} does not apply now: the subject is {stays.shown_status(state) or 'in another state'}"
    return None


class LinkUsed(Exception):
    """An emailed link that was used already."""


def _fields(record: ActionRecord) -> dict[str, str]:
    values = {
        "source": record.source,
        "subject": record.subject,
        "action": record.action,
        "actor": json.dumps(asdict(record.actor)),
        "requested_at": record.requested_at,
        "status": record.status,
        "text": record.text if record.text is not None else "",
        "has_text": "1" if record.text is not None else "",
        "stay": record.stay or "",
        "reply": json.dumps(asdict(record.reply)) if record.reply is not None else "",
        "once": record.once,
    }
    return values


def _record(action_id: str, fields: dict[bytes, bytes]) -> ActionRecord:
    text = {key.decode(): value.decode() for key, value in fields.items()}
    reply = json.loads(text["reply"]) if text.get("reply") else None
    answered = text.get("answer_status")
    return ActionRecord(
        id=action_id,
        source=text["source"],
        subject=text["subject"],
        action=text["action"],
        actor=Actor(**json.loads(text["actor"])),
        requested_at=text["requested_at"],
        status=cast(Status, text["status"]),
        text=text.get("text") if text.get("has_text") else None,
        stay=text.get("stay") or None,
        answer=text.get("answer", ""),
        answer_status=int(answered) if answered else None,
        finished_at=text.get("finished_at") or None,
        reply=Reply(**reply) if reply else None,
        once=text.get("once", ""),
        subject_status=text.get("subject_status", ""),
    )


def ask(
    connection: redis.Redis,
    *,
    source: str,
    subject: str,
    action: str,
    actor: Actor,
    once_key: str,
    text: str | None = None,
    stay: str | None = None,
    reply: Reply | None = None,
    link: tuple[str, int] | None = None,
    queue: bool = True,
) -> tuple[ActionRecord, bool]:
    """Store the action and queue its job, unless one with ``once_key`` was asked for already:
    (the action, True) when this request is the first, (the earlier action, False) when not.

    ``link``: an emailed link's (nonce, seconds it lives), spent in the same transaction (LinkUsed when it
    was spent before). ``queue=False``: no job (the CLI carries it out itself)."""
    once = keys.action_once(once_key)
    spent = keys.action_link(link[0]) if link is not None else None
    record = ActionRecord(new_id(), source, subject, action, actor, utc_now(), "queued", text, stay, reply=reply,
                          once=once_key)  # fmt: skip
    target = jobs.queue(connection)
    job = jobs.create(target, keys.RUN_ACTION, keys.ACTION, [record.id], record.id, f"action {record.id}")

    def transaction(pipe: Any) -> str | None:
        if spent is not None and pipe.exists(spent):
            raise LinkUsed(link[0] if link else "")
        earlier = pipe.get(once)
        pipe.multi()
        if spent is not None and link is not None:
            pipe.set(spent, "1", ex=max(1, link[1]))
        if earlier is not None:
            return cast(str, earlier.decode())
        _write(pipe, record, once)
        if queue:
            target.enqueue_job(job, pipeline=pipe, at_front=True)
        return None

    watched = [once, *([spent] if spent is not None else [])]
    earlier = connection.transaction(transaction, *watched, value_from_callable=True)  # type: ignore[arg-type]
    if earlier is None:
        return record, True
    found = load(connection, cast(str, earlier))
    return (found if found is not None else record), False


def _write(pipe: Any, record: ActionRecord, once: str | None) -> None:
    key = keys.action(record.id)
    pipe.hset(key, mapping=_fields(record))
    pipe.expire(key, keys.EVENT_TTL)
    if once is not None:
        pipe.set(once, record.id, ex=keys.EVENT_TTL)
    trail = keys.subject_actions(record.source, record.subject)
    pipe.lpush(trail, record.id)
    pipe.ltrim(trail, 0, keys.ACTIONS_KEPT - 1)
    pipe.expire(trail, keys.STATE_TTL)
    now = time.time()
    pipe.zadd(keys.ACTIONS_INDEX, {record.id: now})
    pipe.zremrangebyscore(keys.ACTIONS_INDEX, "-inf", now - keys.EVENT_TTL)


def refused(connection: redis.Redis, record: ActionRecord, reason: str) -> ActionRecord:
    """A request nobody may make (not on the allow list): never queued; kept apart from the subject's trail,
    the newest REFUSALS_KEPT of them, so refusals cannot push its real actions out."""
    final = dataclasses.replace(record, status="refused", answer=reason, finished_at=utc_now(), once="")
    key, trail = keys.action(final.id), keys.subject_refusals(record.source, record.subject)
    with connection.pipeline(transaction=True) as pipe:
        fields = _fields(final) | {"answer": reason, "finished_at": final.finished_at or ""}
        pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
        pipe.expire(key, keys.EVENT_TTL)
        pipe.lpush(trail, final.id)
        pipe.ltrim(trail, 0, keys.REFUSALS_KEPT - 1)
        pipe.expire(trail, keys.STATE_TTL)
        telemetry.count(pipe, "workhooks_actions", record.source, record.action, "refused")
        pipe.execute()
    return final


def new_id() -> str:
    return "act_" + secrets.token_hex(12)


def start(connection: redis.Redis, action_id: str) -> Status | None:
    """Mark the action as being sent; its status before (None: no such action). A job run again after a
    worker died mid-send finds "sending": what the platform did is not known."""
    key = keys.action(action_id)

    def transaction(pipe: Any) -> Status | None:
        status = pipe.hget(key, "status")
        if status is None:
            return None
        if status == b"queued":
            pipe.multi()
            pipe.hset(key, "status", "sending")
        return cast(Status, status.decode())

    return cast(Status | None, connection.transaction(transaction, key, value_from_callable=True))  # type: ignore[arg-type]


def finish(
    connection: redis.Redis, record: ActionRecord, status: Status, answer: str, code: int | None, subject_status: str
) -> ActionRecord:
    """Record what the platform answered. A definite failure gives its identity back, so the same action
    may be asked for again (nothing was applied); done and unknown keep it (never blindly repeated)."""
    final = dataclasses.replace(record, status=status, answer=answer, answer_status=code, finished_at=utc_now(),
                                subject_status=subject_status)  # fmt: skip
    once = keys.action_once(record.once) if record.once else None

    def transaction(pipe: Any) -> None:
        holder = pipe.get(once) if once is not None else None
        pipe.multi()
        pipe.hset(
            keys.action(record.id),
            mapping={"status": status, "answer": answer, "answer_status": "" if code is None else str(code),
                     "finished_at": final.finished_at or "", "subject_status": subject_status},
        )  # fmt: skip
        if status in ("failed", "refused") and once is not None and holder == record.id.encode():
            pipe.delete(once)
        telemetry.count(pipe, "workhooks_actions", record.source, record.action, status)

    watched = [once] if once is not None else []
    connection.transaction(transaction, *watched)
    return final


def load(connection: redis.Redis, action_id: str) -> ActionRecord | None:
    fields = cast(dict[bytes, bytes], connection.hgetall(keys.action(action_id)))
    return _record(action_id, fields) if fields else None


def _many(connection: redis.Redis, ids: list[str]) -> list[ActionRecord]:
    with connection.pipeline(transaction=False) as pipe:
        for action_id in ids:
            pipe.hgetall(keys.action(action_id))
        found = pipe.execute()
    return [_record(action_id, fields) for action_id, fields in zip(ids, found, strict=True) if fields]


def for_subject(
    connection: redis.Redis, source: str, subject: str, limit: int = keys.ACTIONS_KEPT
) -> list[ActionRecord]:
    """A subject's audit trail, newest first."""
    ids = cast(list[bytes], connection.lrange(keys.subject_actions(source, subject), 0, limit - 1))
    return _many(connection, [raw.decode() for raw in ids])


def refusals(connection: redis.Redis, source: str, subject: str) -> list[ActionRecord]:
    """The subject's newest refused requests, newest first."""
    ids = cast(list[bytes], connection.lrange(keys.subject_refusals(source, subject), 0, keys.REFUSALS_KEPT - 1))
    return _many(connection, [raw.decode() for raw in ids])


def recent(connection: redis.Redis, limit: int = 100) -> list[ActionRecord]:
    ids = cast(list[bytes], connection.zrevrange(keys.ACTIONS_INDEX, 0, limit - 1))
    return _many(connection, [raw.decode() for raw in ids])


def first_time(connection: redis.Redis, name: str, ttl: int = 600) -> bool:
    """True the first time ``name`` (a Slack trigger id) is seen within ``ttl`` seconds."""
    return bool(connection.set(keys.action_once(digest("seen", name)), "1", nx=True, ex=ttl))


# ---- a slack_app sink's threads ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Thread:
    channel: str
    ts: str
    latest: str  # what the parent says happened last (the newest event's title)


def thread(connection: redis.Redis, sink: str, source: str, subject: str) -> Thread | None:
    """The message that is the subject's thread in ``sink``, if one was posted."""
    key = keys.slack_thread(sink, keys.subject_member(source, subject))
    channel, ts, latest = cast(list[bytes | None], connection.hmget(key, ["channel", "ts", "latest"]))
    if channel is None or ts is None:
        return None
    return Thread(channel.decode(), ts.decode(), (latest or b"").decode())


def keep_thread(connection: redis.Redis, sink: str, source: str, subject: str, found: Thread) -> None:
    key = keys.slack_thread(sink, keys.subject_member(source, subject))
    with connection.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={"channel": found.channel, "ts": found.ts, "latest": found.latest})
        pipe.expire(key, keys.STATE_TTL)
        pipe.execute()


def forget_thread(connection: redis.Redis, sink: str, source: str, subject: str) -> None:
    connection.delete(keys.slack_thread(sink, keys.subject_member(source, subject)))

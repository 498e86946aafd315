"""/act/{token}: the page an emailed action link opens (GET shows what it would do; only POST acts).

Mail scanners and link previews fetch links: a GET changes nothing. The POST carries the same token,
checked again (signature, expiry) and spent (one use per link), then the action is asked for like a
click in Slack (store/actions.py): a worker carries it out. The page waits a few seconds for the answer.
The token is a capability: the page is sent with Referrer-Policy: no-referrer and never logged (the
request line names the route template only).
"""

from __future__ import annotations

import html
import json
import time
from typing import Any
from urllib.parse import parse_qs

import anyio
import structlog
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from workhooks.config.schema import Config
from workhooks.config.sinks import EmailSink
from workhooks.core.links import LinkError, read
from workhooks.core.redact import redact_text
from workhooks.platforms import PLATFORMS
from workhooks.platforms.base import Action
from workhooks.store import actions, keys

MAX_FORM = 16 * 1024
WAIT_FOR_ANSWER = 5.0  # seconds the POST's page waits for the worker's answer
HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


def _secrets(config: Config) -> dict[str, str]:
    """Each email sink's link key, by sink name."""
    return {
        name: sink.action_links.secret.get_secret_value()
        for name, sink in config.sinks.items()
        if isinstance(sink, EmailSink) and sink.action_links is not None
    }


def _page(status: int, title: str, body: str) -> HTMLResponse:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
        'content="width=device-width"><title>workhooks</title><style>body{font:16px system-ui;max-width:36em;'
        "margin:3em auto;padding:0 1em}textarea{width:100%;min-height:6em}button{font-size:1em;padding:.4em 1em}"
        f"</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=HEADERS)


def _link(request: Request) -> tuple[dict[str, Any], Action, str] | HTMLResponse:
    config: Config = request.app.state.config
    try:
        found = read(request.path_params["token"], _secrets(config), time.time())
    except LinkError as error:
        structlog.contextvars.bind_contextvars(outcome="rejected", reason=str(error))
        status = 404 if "not an action link" in str(error) or "altered" in str(error) else 410
        return _page(status, "This link does not work", f"<p>{html.escape(str(error))}.</p>")
    source = config.sources.get(found["s"])
    action = PLATFORMS[source.platform].actions.get(found["a"]) if source is not None else None
    if source is None or action is None or action.perform is None:
        structlog.contextvars.bind_contextvars(outcome="rejected", reason="unknown source or action")
        return _page(410, "This link does not work", "<p>Its source or action is no longer configured.</p>")
    structlog.contextvars.bind_contextvars(source=found["s"], subject=found["j"], action=found["a"])
    return found, action, PLATFORMS[source.platform].presenter.name


async def page(request: Request) -> Response:
    """One route, so that a 405 names both methods in its Allow."""
    return await (act(request) if request.method == "POST" else show(request))


async def show(request: Request) -> Response:
    checked = _link(request)
    if isinstance(checked, Response):
        return checked
    found, action, name = checked
    what = f"{action.label.rstrip('…')}: {name} {found['j']}"
    area = '<textarea name="text" required maxlength="3000"></textarea>'
    field = f"<p><label>{html.escape(action.ask)}<br>{area}</label></p>" if action.ask else ""
    question = f"<p>{html.escape(action.confirm)}</p>" if action.confirm else ""
    structlog.contextvars.bind_contextvars(outcome="shown")
    return _page(200, what, f'{question}<form method="post">{field}<button type="submit">'
                            f"{html.escape(action.label.rstrip('…'))}</button></form>")  # fmt: skip


async def act(request: Request) -> Response:
    checked = _link(request)
    if isinstance(checked, Response):
        return checked
    found, action, name = checked
    config: Config = request.app.state.config
    body = await request.body()
    try:
        text = (parse_qs(body.decode("utf-8"), max_num_fields=4).get("text") or [""])[0] if body else ""
    except (UnicodeDecodeError, ValueError):
        return _page(400, "This form could not be read", "<p>Send it from the page the link opened.</p>")
    if action.ask and not text.strip():
        return _page(400, "Something to say is needed", f"<p>{html.escape(action.ask)}: please write it.</p>")
    connection = request.app.state.sync_redis
    actor = actions.Actor("email", found["t"], channel=found["k"])
    try:
        if await anyio.to_thread.run_sync(connection.exists, keys.action_link(found["n"])):
            raise actions.LinkUsed(found["n"])  # said first: what it did may no longer apply, as it did it
        why = await anyio.to_thread.run_sync(_why_not, connection, config, found)
        if why is not None:  # the config or the subject changed since the mail was sent
            structlog.contextvars.bind_contextvars(outcome="refused", reason=why)
            return _page(409, "This cannot be done now", f"<p>{html.escape(why)}.</p>")
        once = actions.identity(found["s"], found["j"], found["a"], action.once, found["y"], found["n"])
        said = redact_text(text, config.secrets()) if action.ask else None
        record, new = await anyio.to_thread.run_sync(lambda: actions.ask(
            connection, source=found["s"], subject=found["j"], action=found["a"], actor=actor, once_key=once,
            text=said, stay=found["y"] or None, link=(found["n"], found["e"] - int(time.time()))))  # fmt: skip
        final = await _answer(connection, record.id) if new else record
    except actions.LinkUsed:
        structlog.contextvars.bind_contextvars(outcome="rejected", reason="link used already")
        return _page(410, "This link was used already", "<p>Each action link works once.</p>")
    except RedisError as error:
        structlog.contextvars.bind_contextvars(outcome="unavailable", reason=f"redis: {type(error).__name__}")
        return _page(503, "Try again in a minute", "<p>workhooks cannot store the action right now.</p>")
    structlog.contextvars.bind_contextvars(outcome="queued" if new else "duplicate", action_id=record.id)
    title = f"{action.label.rstrip('…')}: {name} {found['j']}"
    if not new:
        return _page(200, title, f"<p>Already asked by {html.escape(record.actor.shown())}: {record.status}.</p>")
    if final.status == "done":
        return _page(200, title, f"<p>Done — {html.escape(final.answer)}.</p>")
    if final.status in ("failed", "unknown"):
        return _page(200, title, f"<p>Not done: {html.escape(final.answer)}.</p>")
    return _page(202, title, "<p>Sent to the workers; the outcome shows in the subject's timeline.</p>")


def _why_not(connection: Any, config: Config, found: dict[str, Any]) -> str | None:
    raw = connection.get(keys.state(found["s"], found["j"]))
    return actions.why_not(config, found["s"], found["a"], json.loads(raw) if raw else None)


async def _answer(connection: Any, action_id: str) -> actions.ActionRecord:
    deadline = time.monotonic() + WAIT_FOR_ANSWER
    while True:
        record = await anyio.to_thread.run_sync(actions.load, connection, action_id)
        assert record is not None
        if record.status in actions.FINAL or time.monotonic() > deadline:
            return record
        await anyio.sleep(0.2)

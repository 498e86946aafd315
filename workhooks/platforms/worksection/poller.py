"""Worksection tasks through the admin API: ?action=...&hash=md5(page + action + api key).

Errors come as HTTP 200 with {"status": "error", "status_code": N, "message": ...}; they are
read here and logged with their meaning.
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

from workhooks.core.events import Callback, Observation, Phase
from workhooks.platforms.api import ApiClient, AuthError, PartialPollError, PollError, RateLimitedError, take_turns
from workhooks.platforms.base import Poller
from workhooks.platforms.worksection.settings import WorksectionSettings

ENTITY = "task"
CREATED = "worksection.task.created"
STATUS_CHANGED = "worksection.task.status_changed"
COMMENT_ADDED = "worksection.task.comment_added"
EVENT_TYPES = (CREATED, STATUS_CHANGED, COMMENT_ADDED)
STATUS_PHASES: dict[str, Phase] = {"active": "in_progress", "done": "completed"}
ERRORS = {
    0: "Action is invalid",
    1: "Action is required",
    2: "Action hash is missed or invalid (check api_key)",
    3: "Page is invalid",
    4: "Project is invalid",
    5: "Task is invalid",
    20: "Quota exceeded",
}
QUOTA_BACKOFF = 300.0


def signed(action: str, api_key: str, page: str = "") -> dict[str, str]:
    params = {"action": action, "hash": hashlib.md5((page + action + api_key).encode()).hexdigest()}  # noqa: S324
    if page:
        params["page"] = page
    return params


def _explain(response: httpx.Response) -> None:
    try:
        body = response.json()
    except ValueError:
        return
    if isinstance(body, dict) and body.get("status") == "error":
        code = body.get("status_code")
        meaning = ERRORS.get(code if isinstance(code, int) else -1, str(body.get("message", "")))
        detail = f"Worksection error {code}: {meaning}" + (
            f" ({body['message_details']})" if body.get("message_details") else ""
        )
        if code == 2:
            raise AuthError(detail)
        if code == 20:
            raise RateLimitedError(detail, backoff=QUOTA_BACKOFF)
        raise PollError(detail)


def client(settings: WorksectionSettings) -> ApiClient:
    return ApiClient(settings.timeout)


def _url(settings: WorksectionSettings) -> str:
    return f"{str(settings.account_url).rstrip('/')}/api/admin/v2/"


def fetch(settings: WorksectionSettings, api: ApiClient) -> list[dict[str, Any]]:
    key = settings.api_key.get_secret_value()
    body = api.get_json(_url(settings), signed("get_all_tasks", key), explain=_explain)
    tasks = body.get("data") if isinstance(body, dict) else None
    if not isinstance(tasks, list):
        raise PollError("get_all_tasks answered no task list")
    found = [task for task in tasks if isinstance(task, dict) and task.get("id") is not None]
    if settings.comments:
        for task in _comment_turn(settings, found):
            try:
                answer = api.get_json(_url(settings), signed("get_comments", key, task["page"]), explain=_explain)
            except PollError as error:  # a quota (20) or any error: keep the tasks and comments read so far
                raise PartialPollError(error, found, complete=True) from None
            comments = answer.get("data") if isinstance(answer, dict) else None
            task["comments"] = [c for c in comments or [] if isinstance(c, dict) and c.get("id") is not None]
    return found


def _comment_turn(settings: WorksectionSettings, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The open tasks whose comments this poll reads: all of them, or `comments_per_poll` taking turns."""
    open_tasks = sorted((t for t in tasks if t.get("status") != "done" and t.get("page")), key=lambda t: str(t["id"]))
    return take_turns(open_tasks, settings.comments_per_poll, settings.poll_interval)


def key(task: dict[str, Any]) -> str:
    return str(task["id"])


def snapshot(task: dict[str, Any]) -> dict[str, Any]:
    kept = {field: task.get(field) for field in ("id", "name", "page", "status", "priority", "date_added", "date_end")}
    kept["user_to"] = (task.get("user_to") or {}).get("email") if isinstance(task.get("user_to"), dict) else None
    if "comments" in task:
        kept["comment_ids"] = sorted(str(comment["id"]) for comment in task["comments"])
    return {field: value for field, value in kept.items() if value is not None}


def carry(previous: dict[str, Any] | None, current: dict[str, Any]) -> dict[str, Any]:
    """Comments not read this poll (the budget, a quota error): keep the ids known before."""
    if "comment_ids" not in current and previous is not None and "comment_ids" in previous:
        return {**current, "comment_ids": previous["comment_ids"]}
    return current


def changes(previous: dict[str, Any] | None, task: dict[str, Any]) -> list[Callback]:
    """Pure: what happened to one task since its last snapshot (None: never seen)."""
    current = carry(previous, snapshot(task))
    task_id, status = str(current["id"]), str(current.get("status"))
    subject = f"task/{task_id}"
    phase = STATUS_PHASES.get(status)  # a status the document does not name: no phase, not a guess
    base = {"task_id": task_id, "name": current.get("name"), "page": current.get("page"), ENTITY: current}
    found: list[Callback] = []
    if previous is None:
        found.append(Callback(CREATED, subject, {**base, "status": status}, (task_id,), phase))
    elif previous.get("status") != status:
        before = str(previous.get("status"))
        change = "reopened" if before == "done" and status == "active" else status
        data = {**base, "previous_status": before, "status": status, "change": change}
        entered = Observation("status", status)
        found.append(Callback(STATUS_CHANGED, subject, data, (task_id, before, status), phase, entered))
    if previous is not None and "comment_ids" in current:
        seen = set(previous.get("comment_ids", []))
        for comment in task.get("comments", []):
            comment_id = str(comment["id"])
            if comment_id in seen:
                continue
            author = comment.get("user_from") if isinstance(comment.get("user_from"), dict) else {}
            data = {**base, "comment_id": comment_id, "text": comment.get("text"), "author": author.get("name")}
            found.append(Callback(COMMENT_ADDED, subject, data, (task_id, comment_id), phase))
    return found


POLLER = Poller(entity=ENTITY, client=client, fetch=fetch, key=key, snapshot=snapshot, changes=changes, carry=carry)

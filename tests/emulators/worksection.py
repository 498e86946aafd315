"""Worksection admin API emulator, from worksection-api.txt alone (URL shape from FIELD-NOTES).

One endpoint, /api/admin/v2/ (https://<account>.worksection.com/api/admin/v2/?action=... for real; the
document's own link is missing from its text), GET or POST, parameters in the query string or a form body:
action, page, hash and the method's own parameters. hash = md5(page + action + api_key) when a page is given,
md5(action + api_key) when not ("page is not required or is optional" in some methods).

Answers are JSON, UTF-8: {"status": "ok", ...} or {"status": "error", "status_code": n, "message": text} with
"message_details" for codes 10 and 11. Codes are the document's table (16-19 are elided there as "•••").

Assumptions where the document is silent:
- Action names: the document names only get_all_tasks and get_projects. For "post and get task comments"
  and "close and reopen tasks" we use get_comments, post_comment, close_task (alias complete_task) and
  reopen_task; their hashes include the page, which they require.
- Data comes under "data": a list for get_* actions, the new comment for post_comment, nothing for
  close/reopen. Tasks: {"id", "name", "page", "status": "active"|"done", "project": {...}, "child": [...]};
  get_all_tasks lists every top-level task of every project, closed ones included, subtasks nested.
  Comments: {"id", "page", "text", "date_added": "YYYY-MM-DD HH:MM", "user_from": {"email", "name"}}.
  post_comment takes `text` (code 10 with message_details "text" when missing) and an optional
  `email_user_from` (code 11 when it is not an email address).
- Errors come with HTTP 200 (the document describes only the body). Checks run in this order: quota (20),
  action missing (1), action unknown (0), hash (2), then the page: missing (7), malformed (3), unknown
  project (4), task (5), subtask (6), task part missing (8).
- A page's SUBTASK_ID may be any descendant of TASK_ID (the document puts sub-subtasks on the same link).
- Closing a closed task: 12 (subtask: 14); closing with open children: 13 (subtask: 15). Reopening an open
  task is a no-op "ok". Every request counts against `quota` (None: unlimited); reset_quota() refills it.
- The hash comparison ignores hex case; the Host header is not checked.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from tests.emulators.base import Emulator, Request, Response

ERRORS = {
    0: "Action is invalid",
    1: "Action is required",
    2: "Action hash is missed or invalid",
    3: "Page is invalid",
    4: "Project is invalid",
    5: "Task is invalid",
    6: "Subtask is invalid",
    7: "Project is required",
    8: "Task is required",
    9: "Subtask is required",
    10: "Field is required",
    11: "Invalid email",
    12: "Task is already closed",
    13: "Task has children",
    14: "Subtask is already closed",
    15: "Subtask has children",
    20: "Quota exceeded",
}
TASK_ACTIONS = ("get_comments", "post_comment", "close_task", "complete_task", "reopen_task")
ACTIONS = ("get_projects", "get_all_tasks", *TASK_ACTIONS)
PAGE = re.compile(r"/project/(\d+)/(?:(\d+)/(?:(\d+)/)?)?")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def sign(action: str, api_key: str, page: str | None = None) -> str:
    """The document's hash: md5(page . action . apikey), or md5(action . apikey) without a page."""
    return hashlib.md5(f"{page or ''}{action}{api_key}".encode()).hexdigest()  # noqa: S324 (the protocol's)


def failure(code: int, details: str | None = None) -> Response:
    body: dict[str, Any] = {"status": "error", "status_code": code, "message": ERRORS[code]}
    if details is not None:
        body["message_details"] = details
    return Response(200, body, content_type="application/json; charset=utf-8")


def ok(**fields: Any) -> Response:
    return Response(200, {"status": "ok", **fields}, content_type="application/json; charset=utf-8")


class Worksection(Emulator):
    def __init__(self, api_key: str = "worksection-test-key", quota: int | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.quota = quota
        self.used = 0
        self.projects: dict[int, str] = {}
        self.tasks: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.next_id = 1000

    # ---- helpers for tests ------------------------------------------------------------------------------

    def add_project(self, name: str) -> int:
        with self.lock:
            self.next_id += 1
            self.projects[self.next_id] = name
            return self.next_id

    def add_task(self, project: int, name: str, parent: int | None = None, closed: bool = False) -> int:
        with self.lock:
            self.next_id += 1
            self.tasks[self.next_id] = {
                "id": self.next_id,
                "project": project,
                "parent": parent,
                "name": name,
                "status": "done" if closed else "active",
            }
            self.comments[self.next_id] = []
            return self.next_id

    def page(self, task_id: int) -> str:
        task = self.tasks[task_id]
        top = task_id
        for _ in range(len(self.tasks)):  # bounded walk up to the top-level task
            if self.tasks[top]["parent"] is None:
                break
            top = self.tasks[top]["parent"]
        tail = f"{task_id}/" if top != task_id else ""
        return f"/project/{task['project']}/{top}/{tail}"

    def act(self, action: str, task_id: int, **params: str) -> dict[str, Any]:
        """What the API's task action would do (post_comment, close_task, reopen_task), without HTTP."""
        request = Request("POST", "/api/admin/v2/", {}, {}, form={name: [value] for name, value in params.items()})
        with self.lock:
            answer = self._task_action(action, task_id, request)
        assert isinstance(answer.body, dict) and answer.body.get("status") == "ok", answer.body
        return answer.body

    def reset_quota(self) -> None:
        with self.lock:
            self.used = 0

    # ---- HTTP ---------------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if request.path.rstrip("/") != "/api/admin/v2":
            return Response(404, raw=b"Not Found", content_type="text/plain")
        with self.lock:
            self.used += 1
            if self.quota is not None and self.used > self.quota:
                return failure(20)
            action, page = request.param("action"), request.param("page") or None
            if not action:
                return failure(1)
            if action not in ACTIONS:
                return failure(0)
            given = (request.param("hash") or "").lower()
            if given != sign(action, self.api_key, page):
                return failure(2)
            if action == "get_projects":
                return ok(data=[self._project(p) for p in self.projects])
            if action == "get_all_tasks":
                top = [t for t in self.tasks.values() if t["parent"] is None]
                return ok(data=[self._view(t["id"], 0) for t in top])
            found = self._resolve(page)
            if isinstance(found, Response):
                return found
            return self._task_action(action, found, request)

    def _resolve(self, page: str | None) -> int | Response:
        """The task id a task page names, or the documented error."""
        if page is None:
            return failure(7)
        match = PAGE.fullmatch(page)
        if match is None:
            return failure(3)
        project, task, subtask = (int(g) if g else None for g in match.groups())
        if project not in self.projects:
            return failure(4)
        if task is None:
            return failure(8)
        top = self.tasks.get(task)
        if top is None or top["project"] != project or top["parent"] is not None:
            return failure(5)
        if subtask is None:
            return task
        inside = subtask in self.tasks and self.page(subtask).startswith(f"/project/{project}/{task}/")
        if subtask == task or not inside:
            return failure(6)
        return subtask

    def _task_action(self, action: str, task_id: int, request: Request) -> Response:
        task, is_sub = self.tasks[task_id], self.tasks[task_id]["parent"] is not None
        if action == "get_comments":
            return ok(data=list(self.comments[task_id]))
        if action == "post_comment":
            text, email = request.param("text"), request.param("email_user_from")
            if not text:
                return failure(10, "text")
            if email is not None and not EMAIL.fullmatch(email):
                return failure(11, email)
            comment = {
                "id": self._new_id(),
                "page": self.page(task_id),
                "text": text,
                "date_added": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
                "user_from": {"email": email or "owner@example.com", "name": "Account Owner"},
            }
            self.comments[task_id].append(comment)
            return ok(data=comment)
        if action == "reopen_task":
            task["status"] = "active"
            return ok()
        if task["status"] == "done":
            return failure(14 if is_sub else 12)
        if any(t["parent"] == task_id and t["status"] == "active" for t in self.tasks.values()):
            return failure(15 if is_sub else 13)
        task["status"] = "done"
        return ok()

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def _project(self, project: int) -> dict[str, Any]:
        return {"id": project, "name": self.projects[project], "page": f"/project/{project}/", "status": "active"}

    def _view(self, task_id: int, depth: int) -> dict[str, Any]:
        task = self.tasks[task_id]
        children = [t["id"] for t in self.tasks.values() if t["parent"] == task_id] if depth < 3 else []
        return {
            "id": task_id,
            "name": task["name"],
            "page": self.page(task_id),
            "status": task["status"],
            "project": self._project(task["project"]),
            "child": [self._view(c, depth + 1) for c in children],
        }

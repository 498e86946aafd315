from __future__ import annotations

import hashlib

from workhooks.platforms.workreduce import poller as workreduce
from workhooks.platforms.worksection import poller as worksection
from workhooks.platforms.worktaps import poller as worktaps


def order(status: str, number: str = "00007848") -> dict[str, object]:
    return {"order_number": number, "name": "QA Screenshot", "status": status, "team": "MENA", "due_date": "2026-12-01"}


def test_workreduce_new_order_and_each_status_step() -> None:
    (created,) = workreduce.changes(None, order("Draft"))
    assert (created.type, created.subject, created.phase) == ("workreduce.order.created", "order/00007848", "queued")
    (step,) = workreduce.changes(workreduce.snapshot(order("Submitted")), order("Delivered"))
    assert step.type == "workreduce.order.status_changed"
    assert (step.data["previous_status"], step.data["status"], step.phase) == (
        "Submitted",
        "Delivered",
        "awaiting_client",
    )
    assert step.data["order_number"] == "00007848" and step.data["team"] == "MENA"
    assert workreduce.changes(workreduce.snapshot(order("Delivered")), order("Delivered")) == []


def test_workreduce_phases_cover_the_documented_statuses() -> None:
    assert workreduce.STATUS_PHASES["Delivered"] == "awaiting_client"
    assert workreduce.STATUS_PHASES["Approved"] == "completed"
    assert workreduce.STATUS_PHASES["Client Canceled"] == "canceled"


def test_worksection_created_done_reopened_and_comments() -> None:
    task = {
        "id": "9",
        "name": "Edit",
        "page": "/project/1/9/",
        "status": "active",
        "comments": [{"id": "1", "text": "a"}],
    }
    assert [c.type for c in worksection.changes(None, task)] == ["worksection.task.created"]
    done = {**task, "status": "done"}
    (closed,) = worksection.changes(worksection.snapshot(task), done)
    assert (closed.data["change"], closed.phase) == ("done", "completed")
    (reopened,) = worksection.changes(worksection.snapshot(done), task)
    assert (reopened.data["change"], reopened.phase) == ("reopened", "in_progress")
    commented = {**task, "comments": [*task["comments"], {"id": "2", "text": "b", "user_from": {"name": "Ed"}}]}  # type: ignore[list-item]
    (comment,) = worksection.changes(worksection.snapshot(task), commented)
    assert comment.type == "worksection.task.comment_added"
    assert (comment.data["text"], comment.data["author"]) == ("b", "Ed")


def test_worksection_hash_is_md5_of_page_action_key() -> None:
    assert worksection.signed("get_all_tasks", "k")["hash"] == hashlib.md5(b"get_all_tasksk").hexdigest()  # noqa: S324
    with_page = worksection.signed("get_comments", "k", "/project/1/9/")
    assert with_page["hash"] == hashlib.md5(b"/project/1/9/get_commentsk").hexdigest()  # noqa: S324
    assert with_page["page"] == "/project/1/9/"


def test_worktaps_updated_names_the_changed_fields_and_removed() -> None:
    account = {"id": 7, "firstName": "Ann", "lastName": "Lee", "email": "ann@example.com", "jobTitle": "Editor"}
    (created,) = worktaps.changes(None, account)
    assert (created.type, created.data["name"]) == ("worktaps.account.created", "Ann Lee")
    (updated,) = worktaps.changes(worktaps.snapshot(account), {**account, "jobTitle": "Lead", "email": "a@example.com"})
    assert updated.data["changed"] == {
        "email": {"from": "ann@example.com", "to": "a@example.com"},
        "jobTitle": {"from": "Editor", "to": "Lead"},
    }
    assert worktaps.changes(worktaps.snapshot(account), account) == []
    removed = worktaps.removed(worktaps.snapshot(account))
    assert (removed.type, removed.subject, removed.phase) == ("worktaps.account.removed", "account/7", "canceled")

"""Wordy through its API (Basic auth, the key as password): confirm callbacks, reconcile missed ones.

Reconciliation reads GET /job/ (ids) and GET /job/{id}/ for each, and announces a status change
only for jobs it already knows, with the id the callback would have had: a callback that
arrives after all is a duplicate, and the other way round.

Messages: GET /job/{id}/conversation/ lists each message with its author and ``created`` time,
so with an API key (and ``confirm`` or ``reconcile_interval``) the conversation, not the order
callbacks arrive in, says which message a callback is. Each entry has a key (created, author,
words, and its place among identical ones); a message event claims an entry (workers/processing.py)
and a message callback that finds every matching entry claimed already is a resend, even after
later callbacks. Reconciliation reads the conversations of ``conversations_per_poll`` open jobs
per poll, taking turns, and announces entries that are new since the last read: the event claims
its entry, so a message announced by its callback as well is delivered once. A job's first read
only records its conversation. Requests per poll: 1 + jobs + min(open jobs, conversations_per_poll);
per message callback, one conversation read. Messages on a complete job are not reconciled.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from workhooks.core.derived import parse_time
from workhooks.core.events import Callback, Event, digest
from workhooks.core.exceptions import CallbackError
from workhooks.core.media import ascii_integer
from workhooks.platforms.api import ApiClient, PartialPollError, PollError, take_turns
from workhooks.platforms.base import Confirmed, Poller, State
from workhooks.platforms.wordy import callback
from workhooks.platforms.wordy.settings import WordySettings
from workhooks.platforms.wordy.statuses import MESSAGE_ADDED, NEXT, STATUS_CHANGED, STATUS_LABELS, reachable

MAX_JOBS = 10_000
KEPT_ENTRIES = 500  # a job's newest conversation entries its snapshot remembers


def client(settings: WordySettings) -> ApiClient:
    assert settings.api_key is not None
    return ApiClient(settings.timeout, auth=httpx.BasicAuth("", settings.api_key.get_secret_value()))


def _base(settings: WordySettings) -> str:
    return str(settings.base_url).rstrip("/")


def job(settings: WordySettings, api: ApiClient, job_id: int) -> dict[str, Any]:
    found = api.get_json(f"{_base(settings)}/job/{job_id}/")
    if not isinstance(found, dict) or "status" not in found:
        raise PollError(f"GET /job/{job_id}/ answered no status")
    return found


def conversation(settings: WordySettings, api: ApiClient, job_id: int) -> list[dict[str, Any]]:
    found = api.get_json(f"{_base(settings)}/job/{job_id}/conversation/")
    if not isinstance(found, list):
        raise PollError(f"GET /job/{job_id}/conversation/ did not answer a list")
    return [entry for entry in found if isinstance(entry, dict) and isinstance(entry.get("message"), str)]


def entries(talk: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Each message with its key: when, who, a digest of the words, and its place among identical ones
    (the same words by the same author in the same second). Stable while the conversation only grows."""
    same: Counter[str] = Counter()
    keyed = []
    for entry in talk:
        base = f"{entry.get('created')}:{digest(entry.get('user'), entry['message'])}"
        same[base] += 1
        keyed.append((f"{base}:{same[base]}", entry))
    return keyed


def fetch(settings: WordySettings, api: ApiClient) -> list[dict[str, Any]]:
    ids = api.get_json(f"{_base(settings)}/job/")
    if not isinstance(ids, list):
        raise PollError("GET /job/ did not answer a list of job ids")
    found = (ascii_integer(str(job_id)) for job_id in ids[:MAX_JOBS] if not isinstance(job_id, bool))
    jobs = [job(settings, api, job_id) for job_id in found if job_id is not None]
    open_jobs = sorted((item for item in jobs if item.get("status") != "c"), key=lambda item: str(item.get("id")))
    for item in take_turns(open_jobs, settings.conversations_per_poll, settings.reconcile_interval or 1):
        try:
            item["conversation"] = conversation(settings, api, int(item["id"]))
        except PollError as error:  # keep the jobs and conversations read so far
            raise PartialPollError(error, jobs, complete=True) from None
    return jobs


def key(item: dict[str, Any]) -> str:
    return str(item["id"])


def snapshot(item: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {"status": item.get("status")}
    if "conversation" in item:
        kept["said"] = [entry_key for entry_key, _ in entries(item["conversation"])][-KEPT_ENTRIES:]
    return kept


def carry(previous: dict[str, Any] | None, current: dict[str, Any]) -> dict[str, Any]:
    """A conversation not read this poll (the budget, an error): keep what the last read saw."""
    if "said" not in current and previous is not None and "said" in previous:
        return {**current, "said": previous["said"]}
    return current


def previous(state: State | None) -> dict[str, Any] | None:
    return {"status": state["status"]} if state and state.get("status") else None


def initial_state(item: dict[str, Any]) -> dict[str, Any]:
    status = str(item.get("status"))
    return {"status": status, "status_label": STATUS_LABELS.get(status, status)}


def changes(before: dict[str, Any] | None, item: dict[str, Any]) -> list[Callback]:
    return _status_change(before, item) + _new_messages(before, item)


def _status_change(before: dict[str, Any] | None, item: dict[str, Any]) -> list[Callback]:
    if before is None or before.get("status") == item.get("status"):
        return []
    previous, status = str(before["status"]), str(item.get("status"))
    body = {"status": [previous, status], "job_id": int(item["id"])}
    try:
        found = callback.parse(json.dumps(body).encode(), "application/json")  # what Wordy would have sent
    except CallbackError:  # a status we do not know: leave it to the operator, do not invent one
        return []
    # Reconciliation sees only where the job is now: a move that is not one step of the job's life
    # (aer -> c: the acr between was never seen) is announced as a gap, not as a transition.
    marks = {"reconciled": True, **({"gap": True} if status not in NEXT.get(previous, ()) else {})}
    return [dataclasses.replace(found, data={**found.data, **marks})]


def _new_messages(before: dict[str, Any] | None, item: dict[str, Any]) -> list[Callback]:
    """Conversation entries new since the last read (none on a first read: that only records them)."""
    if before is None or "said" not in before or "conversation" not in item:
        return []
    known, job_id = set(before["said"]), int(item["id"])
    found = []
    for entry_key, entry in entries(item["conversation"])[-KEPT_ENTRIES:]:
        if entry_key not in known:
            data = {"job_id": job_id, "author": entry.get("user"), "message": entry["message"],
                    "created": entry.get("created"), "entry": entry_key, "reconciled": True}  # fmt: skip
            found.append(Callback(MESSAGE_ADDED, f"job/{job_id}", data, (job_id, "conversation", entry_key)))
    return found


def due(item: dict[str, Any]) -> float | None:
    """The job's ``delivery_date`` (the document's example is 123: Unix seconds, placeholders ignored)."""
    return parse_time(item.get("delivery_date"))


def confirm(settings: WordySettings, event: Event) -> Confirmed | None:
    """With `confirm: true`, a status callback is trusted only if GET /job/{id}/ shows that status, or
    one the job can have reached from it since: ``actual`` None when so, else what Wordy shows. The job's
    ``delivery_date`` read on the way is kept in its state (``facts``)."""
    if not settings.confirm or event.type != STATUS_CHANGED:
        return None
    api = client(settings)
    try:
        found = job(settings, api, int(event.data["job_id"]))
    finally:
        api.close()
    actual, claimed = str(found.get("status")), str(event.data.get("status"))
    deadline = due(found)
    facts = {"due": deadline} if deadline is not None else {}
    # A fast reject loop may have moved the job on since it called: its callbacks are still real.
    return Confirmed(None if reachable(claimed, actual) else actual, facts)


_AMOUNT = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def money(text: object) -> Decimal:
    """``"$100.00"`` -> 100.00. Whatever the currency sign or code around it ($, €, £, USD), the number is
    read as is, in the account's own currency, which the threshold is compared in; "1,234.50" is 1234.50."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return Decimal(str(text))
    found = _AMOUNT.search(text) if isinstance(text, str) else None
    if found is None:
        raise PollError(f"GET /account/ answered a balance that is not an amount: {str(text)[:40]!r}")
    try:
        return Decimal(found.group(0).replace(",", ""))
    except InvalidOperation:
        raise PollError(f"GET /account/ answered a balance that is not an amount: {str(text)[:40]!r}") from None


def balance(settings: WordySettings) -> Decimal:
    """GET /account/: the funds remaining (AuthError when the key is refused)."""
    api = client(settings)
    try:
        found = api.get_json(f"{_base(settings)}/account/")
    finally:
        api.close()
    if not isinstance(found, dict) or "balance" not in found:
        raise PollError("GET /account/ answered no balance")
    return money(found["balance"])


def occurrences(settings: WordySettings, event: Event) -> list[str] | None:
    """The conversation entries a message event may be, oldest first (the entry a reconciled one
    names). None when the conversation is not consulted (no API key, neither confirm nor reconcile)."""
    if event.type != MESSAGE_ADDED or settings.api_key is None or not (settings.confirm or settings.reconcile_interval):
        return None
    named = event.data.get("entry")
    if isinstance(named, str):
        return [named]
    api = client(settings)
    try:
        talk = conversation(settings, api, int(event.data["job_id"]))
    finally:
        api.close()
    author, words = event.data.get("author"), event.data.get("message")
    return [
        entry_key
        for entry_key, entry in entries(talk)
        if entry["message"] == words and (author is None or entry.get("user") == author)
    ]


RECONCILER = Poller(
    entity="job",
    client=client,
    fetch=fetch,
    key=key,
    snapshot=snapshot,
    changes=changes,
    previous=previous,
    initial_state=initial_state,
    announce_new=False,  # a job first seen by a poll has no previous status to compare with
    carry=carry,
    due=due,
)

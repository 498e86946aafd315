"""The normalized event: a CloudEvents 1.0 envelope (structured JSON), the contract with workers.

Two kinds of identity. Where content identifies an occurrence (a Shared Workforce response id,
a Worksection comment id) the id is derived from it, so the same callback always yields the same
id. Where a callback reports a value the subject now has (a status) or something said (a
message), the callback carries an ``Observation`` and the ingest script gives the id
(store/ingest.py): an observation that repeats the subject's current value is a resend (the
same id), the same observation after the subject moved on is a new occurrence (a new id).
Every event gets a ``sequence`` (CloudEvents extension: a string that sorts a subject's events in
the order they reached a receiver — its arrival time in ms, then a count — whatever order spools
drained in).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from workhooks.core.clock import utc_now

Phase = Literal["queued", "in_progress", "awaiting_client", "completed", "canceled"]
SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
# Stand-ins the ingest script replaces with the id and sequence it assigns (store/ingest.py).
PENDING_ID = "@@pending-id@@"
PENDING_SEQUENCE = "@@pending-sequence@@"


def event_id(source: str, *identity: object) -> str:
    """A stable id from the source name and the parts that identify one callback (stored ids depend on these
    exact bytes: the standard library's ``json.dumps`` as below, or orjson where it writes the same)."""
    parts = [source, *identity]
    if all(_plain(part) for part in parts):
        material = orjson.dumps(parts)
    else:
        material = json.dumps(parts, separators=(",", ":"), sort_keys=True, default=str).encode()
    return "evt_" + hashlib.sha256(material).hexdigest()[:32]


def _plain(part: object) -> bool:
    """Written alike by ``json.dumps(ensure_ascii=True)`` and orjson: text of printable ASCII with nothing to
    escape, a 64-bit int, None (a float, a container or anything else: the standard library, as ever)."""
    kind = type(part)
    if kind is str:
        text: str = part  # type: ignore[assignment]
        return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text
    if kind is int:
        return -(2**63) <= part < 2**64  # type: ignore[operator]
    return part is None


@dataclass(frozen=True, slots=True)
class Observation:
    """What a callback or a poll saw of its subject, in one lane of its life.

    ``enters``: the subject now has ``value`` in ``lane`` (a status, a snapshot): a resend repeats
    the lane's current value. ``says``: something said (a message, whose ``value`` is a digest of
    its words): a resend repeats the subject's last observation in any lane.
    """

    lane: str
    value: str
    kind: Literal["enters", "says"] = "enters"


def digest(*parts: object) -> str:
    """A short, stable value for an observation too long or too free-form to keep whole."""
    material = json.dumps(parts, separators=(",", ":"), sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Callback:
    """What a platform module parsed out of one callback, before it becomes an event.

    ``identity``: the parts that identify it by content (and, for an observation, the id the
    release before observations gave it: recognised as a resend while it is stored).
    """

    type: str
    subject: str
    data: dict[str, Any]
    identity: tuple[object, ...]
    phase: Phase | None = None
    observation: Observation | None = None


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    source: str  # the source's name in workhooks.yaml; /sources/<name> in the envelope
    type: str
    subject: str
    time: str
    data: dict[str, Any] = field(default_factory=dict)
    phase: Phase | None = None
    sequence: str | None = None
    # For ingest only, never stored: what was observed, and the id content identity gives.
    observation: Observation | None = field(default=None, compare=False)
    content_id: str = field(default="", compare=False)

    @classmethod
    def from_callback(cls, source: str, callback: Callback, time: str | None = None) -> Event:
        """The event before ingest; an observation's id and every sequence are the ingest script's to give."""
        content_id = event_id(source, callback.type, *callback.identity)
        return cls(
            id=PENDING_ID if callback.observation else content_id,
            source=source,
            type=callback.type,
            subject=callback.subject,
            time=time or utc_now(),
            data=callback.data,
            phase=callback.phase,
            sequence=PENDING_SEQUENCE,
            observation=callback.observation,
            content_id=content_id,
        )

    def to_cloudevent(self) -> dict[str, Any]:
        envelope: dict[str, Any] = {
            "specversion": SPECVERSION,
            "id": self.id,
            "source": f"/sources/{self.source}",
            "type": self.type,
            "subject": self.subject,
            "time": self.time,
            "datacontenttype": CONTENT_TYPE,
        }
        if self.phase is not None:
            envelope["phase"] = self.phase
        if self.sequence is not None:
            envelope["sequence"] = self.sequence
        envelope["data"] = self.data
        return envelope

    def to_json(self) -> str:
        try:
            return orjson.dumps(self.to_cloudevent()).decode()
        except (TypeError, orjson.JSONEncodeError):  # an int past 64 bits, a lone surrogate
            return json.dumps(self.to_cloudevent(), separators=(",", ":"), ensure_ascii=False)

    def to_bytes(self) -> bytes:
        """``to_json().encode()`` without the round trip through str (orjson writes UTF-8 bytes)."""
        try:
            return orjson.dumps(self.to_cloudevent())
        except (TypeError, orjson.JSONEncodeError):
            return self.to_json().encode()

    @classmethod
    def from_json(cls, text: str | bytes) -> Event:
        envelope = json.loads(text)
        return cls(
            id=envelope["id"],
            source=envelope["source"].removeprefix("/sources/"),
            type=envelope["type"],
            subject=envelope["subject"],
            time=envelope["time"],
            data=envelope.get("data") or {},
            phase=envelope.get("phase"),
            sequence=envelope.get("sequence"),
        )

    def with_phase(self, phase: Phase | None) -> Event:
        return Event(self.id, self.source, self.type, self.subject, self.time, self.data, phase, self.sequence)

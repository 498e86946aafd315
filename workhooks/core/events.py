"""The normalized event: a CloudEvents 1.0 envelope (structured JSON), the contract with workers.

Event ids are derived from a callback's identity, so the same callback always yields the
same id and is stored and delivered once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from workhooks.core.clock import utc_now

Phase = Literal["queued", "in_progress", "awaiting_client", "completed", "canceled"]
SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"


def event_id(source: str, *identity: object) -> str:
    """A stable id from the source name and the parts that identify one callback."""
    material = json.dumps([source, *identity], separators=(",", ":"), sort_keys=True, default=str)
    return "evt_" + hashlib.sha256(material.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Callback:
    """What a platform module parsed out of one callback, before it becomes an event."""

    type: str
    subject: str
    data: dict[str, Any]
    identity: tuple[object, ...]
    phase: Phase | None = None


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    source: str  # the source's name in workhooks.yaml; /sources/<name> in the envelope
    type: str
    subject: str
    time: str
    data: dict[str, Any] = field(default_factory=dict)
    phase: Phase | None = None

    @classmethod
    def from_callback(cls, source: str, callback: Callback, time: str | None = None) -> Event:
        return cls(
            id=event_id(source, callback.type, *callback.identity),
            source=source,
            type=callback.type,
            subject=callback.subject,
            time=time or utc_now(),
            data=callback.data,
            phase=callback.phase,
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
        envelope["data"] = self.data
        return envelope

    def to_json(self) -> str:
        return json.dumps(self.to_cloudevent(), separators=(",", ":"), ensure_ascii=False)

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
        )

    def with_phase(self, phase: Phase) -> Event:
        return Event(self.id, self.source, self.type, self.subject, self.time, self.data, phase)

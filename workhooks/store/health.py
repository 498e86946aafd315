"""The one reader of a deployment's health, for its three renderers: /metrics, the console, `workhooks stats`.

Two pipelined round trips, sync or async alike: ``ask`` queues the reads on a pipeline,
``Health.parse`` reads the replies, then ``ask_heads``/``with_heads`` add the age of the oldest
waiting work (which needs the heads the first round trip found).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import redis
import redis.asyncio

from workhooks.config.schema import Config
from workhooks.core.clock import seconds_since
from workhooks.store import keys, outbox, telemetry

DELIVERY_OUTCOMES = ("delivered", "failed", "dead")


@dataclass(frozen=True)
class Poll:
    last_ok_at: str | None = None
    last_error: str | None = None

    @property
    def age(self) -> float | None:
        return seconds_since(self.last_ok_at)


@dataclass(frozen=True)
class Health:
    queue_depth: int  # events in the inbox plus jobs in the queue (drains, polls)
    dead_letters: int
    dead_last_hour: int
    quarantined: int
    workers: int
    events_last_5m: int
    events_last_hour: int
    counters: dict[str, list[tuple[list[str], float]]]
    polls: dict[str, Poll]
    sinks: dict[str, outbox.SinkState] = field(default_factory=dict)  # each sink's queue, breaker, pause
    oldest_age: float | None = None  # the longer wait of the queue's head job and the inbox's head event
    _heads: tuple[bytes | None, bytes | None] = field(default=(None, None), repr=False)

    def deliveries(self, sinks: Iterable[str]) -> dict[str, dict[str, int]]:
        """Delivery attempts per sink and outcome, every configured sink listed."""
        found: dict[str, dict[str, int]] = {sink: dict.fromkeys(DELIVERY_OUTCOMES, 0) for sink in sinks}
        for (sink, outcome), value in self.counters.get("workhooks_deliveries", []):
            if sink in found:
                found[sink][outcome] = int(value)
        return found

    def sink_rows(self, config: Config) -> list[dict[str, Any]]:
        """Each configured sink as `sinks list --json`, the console and the admin API show it."""
        counts = self.deliveries(config.sinks)
        listed = []
        for name, sink in config.sinks.items():
            rate = sink.rate()
            state = self.sinks.get(name)
            listed.append(
                {
                    "name": name,
                    "type": sink.type,
                    "where": sink.where(),
                    "people": sink.for_people,
                    "deliveries": counts[name],
                    "max_in_flight": sink.in_flight(),
                    "rate_limit": None if rate is None else rate.model_dump(exclude_none=True),
                    **(state.as_dict() if state is not None else {}),
                }
            )
        return listed

    @classmethod
    def parse(cls, replies: list[Any], sources: list[str], sinks: list[str] | None = None) -> Health:
        depth, head, waiting, first, workers, last5, last60, dead_hour, dead, quarantined, counters, *rest = replies
        polls, states = rest[: len(sources)], rest[len(sources) :]
        return cls(
            queue_depth=int(depth) + int(waiting),
            dead_letters=int(dead),
            dead_last_hour=int(dead_hour),
            quarantined=int(quarantined),
            workers=int(workers),
            events_last_5m=int(last5),
            events_last_hour=int(last60),
            counters=telemetry.split(counters),
            polls={name: _poll(status) for name, status in zip(sources, polls, strict=True) if status},
            sinks=outbox.parse_states(states, sinks or []),
            _heads=(head, first),
        )

    def ask_heads(self, pipe: Any) -> None:
        head, first = self._heads
        pipe.hget(keys.rq_job((head or b"-").decode()), "enqueued_at")
        pipe.zscore(keys.EVENTS_INDEX, first or b"-")

    def with_heads(self, replies: list[Any]) -> Health:
        enqueued_at, received = replies
        ages = [seconds_since(enqueued_at), None if received is None else max(0.0, time.time() - received)]
        known = [age for age in ages if age is not None]
        return replace(self, oldest_age=max(known) if known else None)


def _poll(status: dict[bytes, bytes]) -> Poll:
    text = {key.decode(): value.decode() for key, value in status.items()}
    return Poll(text.get("last_ok_at"), text.get("last_error") or None)


def ask(pipe: Any, sources: Iterable[str], sinks: Iterable[str] = (), now: float | None = None) -> None:
    """Queue every read ``Health.parse`` needs on ``pipe`` (sync or async)."""
    now = time.time() if now is None else now
    pipe.llen(keys.QUEUE_KEY)
    pipe.lindex(keys.QUEUE_KEY, 0)
    pipe.llen(keys.INBOX)
    pipe.lindex(keys.INBOX, 0)
    pipe.scard(keys.RQ_WORKERS)
    pipe.zcount(keys.EVENTS_INDEX, now - 300, "+inf")
    pipe.zcount(keys.EVENTS_INDEX, now - 3600, "+inf")
    pipe.zcount(keys.DEAD_INDEX, now - 3600, "+inf")
    pipe.zcount(keys.DEAD_INDEX, now - keys.EVENT_TTL, "+inf")  # what is not expired, trimmed or not yet
    pipe.zcount(keys.QUARANTINE_INDEX, now - keys.QUARANTINE_TTL, "+inf")
    pipe.hgetall(keys.WORKER_COUNTERS)
    for name in sources:
        pipe.hgetall(keys.poll_status(name))
    outbox.ask_states(pipe, sinks)


def read(connection: redis.Redis, sources: Iterable[str], sinks: Iterable[str] = ()) -> Health:
    sources, sinks = list(sources), list(sinks)
    with connection.pipeline(transaction=False) as pipe:
        ask(pipe, sources, sinks)
        health = Health.parse(pipe.execute(), sources, sinks)
    with connection.pipeline(transaction=False) as pipe:
        health.ask_heads(pipe)
        return health.with_heads(pipe.execute())


async def read_async(client: redis.asyncio.Redis, sources: Iterable[str], sinks: Iterable[str] = ()) -> Health:
    sources, sinks = list(sources), list(sinks)
    async with client.pipeline(transaction=False) as pipe:
        ask(pipe, sources, sinks)
        health = Health.parse(await pipe.execute(), sources, sinks)
    async with client.pipeline(transaction=False) as pipe:
        health.ask_heads(pipe)
        return health.with_heads(await pipe.execute())

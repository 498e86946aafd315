"""Accept a callback durably: into Redis, or — while Redis cannot be reached — into the local spool.

After a Redis failure, requests go straight to the spool for a moment instead of each
waiting out a connection timeout; the drainer moves spooled records to Redis as soon as it
answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Literal

import anyio
import redis.asyncio
import structlog
from redis.exceptions import RedisError

from receiver.spool import Spool, SpoolError, in_arrival_order
from workhooks.store.ingest import WAIT_MS, Ingest, NotReplicatedError, Prepared

BREAKER_SECONDS = 1.0
DRAIN_INTERVAL = 0.5

Outcome = Literal["accepted", "duplicate", "spooled"]
log = structlog.get_logger("workhooks.receiver")


class UnavailableError(Exception):
    """Neither Redis nor the spool could take the callback."""


class Intake:
    def __init__(self, client: redis.asyncio.Redis, spool: Spool, ingest: Ingest | None = None) -> None:
        self.client = client
        self.spool = spool
        self.ingest = ingest or Ingest()
        self._redis_down_until = 0.0
        self._drain_lock = asyncio.Lock()
        self._others_waiting = False  # spool files of other processes; refreshed by the drainer

    def _trip(self) -> None:
        self._redis_down_until = time.monotonic() + BREAKER_SECONDS

    @property
    def redis_down(self) -> bool:
        return time.monotonic() < self._redis_down_until

    async def accept(self, item: Prepared) -> tuple[Outcome, str]:
        """What became of the callback, and its id (a receipt for an observation spooled: its id is
        given when the spool is drained)."""
        if not self.redis_down and not self.spool.pending and not self._others_waiting:  # spooled ones first
            try:
                accepted = await self.ingest.submit(self.client, item)
                return ("accepted" if accepted.created else "duplicate"), accepted.id
            except NotReplicatedError as error:
                # On the primary only: keep a copy on disk too, so losing the primary now loses nothing.
                log.warning("not_replicated", action="spooling a copy", wait_ms=WAIT_MS)
                await self._spool(item)
                return ("accepted" if error.accepted.created else "duplicate"), error.accepted.id
            except RedisError as error:
                self._trip()
                log.warning("redis_unavailable", error=type(error).__name__, action="spooling")
        await self._spool(item)
        return "spooled", item.event_id

    async def _spool(self, item: Prepared) -> None:
        try:
            await anyio.to_thread.run_sync(self.spool.append, item)
        except SpoolError as error:
            raise UnavailableError(str(error)) from None

    async def drain(self) -> int:
        """Move every spooled record into Redis in the order the callbacks arrived (across every
        file, not file by file), each compared with its subject as of its arrival; returns how many."""
        moved = 0
        async with self._drain_lock:
            with self.spool.claim() as paths:
                for item in in_arrival_order(paths):
                    with contextlib.suppress(NotReplicatedError):  # best effort: the primary has it
                        await self.ingest.submit(self.client, item, late=True)
                    moved += 1
                for path in paths:
                    path.unlink()
        return moved

    async def run_drainer(self) -> None:
        """Background task for the app's lifetime."""
        while True:
            await asyncio.sleep(DRAIN_INTERVAL)
            self._others_waiting = self.spool.waiting()
            if not self._others_waiting:
                continue
            try:
                await self.client.ping()
                moved = await self.drain()
            except RedisError:
                self._trip()  # still down: keep requests off Redis until a ping succeeds
                continue
            except Exception:  # a corrupt file must not stop draining the others forever
                log.exception("spool_drain_failed")
                continue
            self._redis_down_until = 0.0
            self._others_waiting = False
            if moved:
                log.info("spool_drained", moved=moved)

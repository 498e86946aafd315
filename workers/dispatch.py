"""The dispatcher a worker runs beside RQ: takes deliveries from the sinks' queues, sends them on threads.

One dispatcher thread takes (workhooks/store/outbox.py: one Lua call each, under the sink's
`max_in_flight`, rate limit, breaker and pause, shared by every worker through Redis) while one
of its sending threads is free, one per sink per pass so no sink starves the others; then it
waits on the wake list until something is due (at most a second). Why threads and not asyncio,
and what a crash does: docs/delivery.md.
"""

from __future__ import annotations

import itertools
import os
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

import redis
import structlog

from workers import delivery, settings
from workhooks.store import keys, outbox

DEFAULT_THREADS = 64
# Reasons a sink gave for not handing out a delivery that pass to something else within a second
# or two by themselves: a --burst run waits for them; for the others (paused, open, a retry due
# later, nothing queued) it is done.
SOON = {"full", "probing", "rate", "not_before"}
SOON_MS = 5_000

log = structlog.get_logger("workhooks.worker")


def threads() -> int:
    """Deliveries one worker process keeps in flight at most (WORKHOOKS_DELIVERY_THREADS)."""
    return max(1, int(os.environ.get("WORKHOOKS_DELIVERY_THREADS", DEFAULT_THREADS)))


class Dispatcher:
    def __init__(self, connection: redis.Redis, size: int | None = None) -> None:
        self.connection = connection
        self.size = size or threads()
        self.pool = ThreadPoolExecutor(self.size, thread_name_prefix="workhooks-deliver")
        self.busy = 0
        self.changed = threading.Condition()
        self.name = secrets.token_hex(6)
        self.counter = itertools.count()
        self.turn = 0

    def free(self) -> int:
        with self.changed:
            return self.size - self.busy

    def pass_once(self) -> tuple[int, int, bool]:
        """One take per sink while threads are free: (taken, earliest time (ms) worth looking again, any soon)."""
        config = settings.config()
        names = list(config.sinks)
        if not names:
            return 0, outbox.now_ms() + outbox.IDLE_WAIT_MS, False
        self.turn = (self.turn + 1) % len(names)
        taken, due, soon = 0, outbox.now_ms() + outbox.IDLE_WAIT_MS, False
        for name in names[self.turn :] + names[: self.turn]:
            if self.free() <= 0:
                break
            sink = config.sinks[name]
            rate = sink.rate()
            found = outbox.take(
                self.connection,
                name,
                f"{self.name}-{next(self.counter)}",
                sink.in_flight(),
                delivery.lease_ms(name),
                rate.interval_ms() if rate is not None else 0,
                rate.burst if rate is not None else 1,
            )
            if isinstance(found, outbox.Taken):
                taken += 1
                self._start(found)
                continue
            if found.until_ms:
                due = min(due, found.until_ms)
            soon = (
                soon
                or (found.reason in SOON)
                or (found.reason == "later" and found.until_ms - outbox.now_ms() < SOON_MS)
            )
        return taken, due, soon

    def _start(self, taken: outbox.Taken) -> None:
        with self.changed:
            self.busy += 1
        self.pool.submit(self._send, taken)

    def _send(self, taken: outbox.Taken) -> None:
        try:
            structlog.contextvars.clear_contextvars()  # a pool thread runs delivery after delivery
            with structlog.contextvars.bound_contextvars(delivery_id=taken.delivery_id, sink=taken.sink):
                delivery.attempt(self.connection, taken)
        except Exception:  # Redis gone mid-way, or a bug: the lease expires and the attempt is made again
            log.exception("delivery_not_completed", reason="tried again when its lease expires", sink=taken.sink)
        finally:
            with self.changed:
                self.busy -= 1
                self.changed.notify_all()

    def wait(self, due_ms: int, stop: threading.Event) -> None:
        """Until a wake token, a free thread, or ``due_ms``: at most IDLE_WAIT_MS."""
        with self.changed:
            while self.busy >= self.size and not stop.is_set():
                self.changed.wait(0.5)
        timeout = min(max(due_ms - outbox.now_ms(), 10), outbox.IDLE_WAIT_MS) / 1000
        self.connection.blpop([keys.OUTBOX_WAKE], timeout=timeout)

    def run(self, stop: threading.Event, burst: bool = False) -> None:
        """Dispatch until ``stop``; with ``burst``, until nothing is left that is due now or soon."""
        log.info("dispatcher_started", threads=self.size, burst=burst)
        while not stop.is_set():
            try:
                taken, due, soon = self.pass_once()
                if taken and self.free() > 0:
                    continue
                if burst and not taken and not soon and self.free() == self.size:
                    break
                self.wait(due, stop)
            except redis.RedisError as error:
                log.warning("dispatcher_redis_unavailable", error=str(error)[:200])
                stop.wait(1.0)
            except Exception:  # a bug must not stop deliveries for good: log it, go on
                log.exception("dispatcher_pass_failed")
                stop.wait(1.0)
        self.pool.shutdown(wait=True)  # what is in flight finishes (each attempt is bounded by its timeout)
        log.info("dispatcher_stopped")


def drain(connection: redis.Redis, limit_s: float = 120.0, size: int | None = None) -> None:
    """Deliver everything due now or soon, then return (`workhooks worker --burst`, tests); bounded by ``limit_s``."""
    stop = threading.Event()
    timer = threading.Timer(limit_s, stop.set)
    timer.daemon = True
    timer.start()
    try:
        Dispatcher(connection, size).run(stop, burst=True)
    finally:
        timer.cancel()


def start(connection: redis.Redis) -> tuple[threading.Thread, threading.Event]:
    """The dispatcher on a thread of its own; set the event to stop it, then join the thread."""
    stop = threading.Event()
    thread = threading.Thread(target=Dispatcher(connection).run, args=(stop,), name="workhooks-dispatch", daemon=True)
    thread.start()
    return thread, stop

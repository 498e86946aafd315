"""The dispatcher a worker runs beside RQ: takes deliveries from the sinks' queues, sends them on threads.

One dispatcher thread takes (workhooks/store/outbox.py: one Lua call each, under the sink's
`max_in_flight`, rate limit, breaker and pause, shared by every worker through Redis) while one
of its sending threads is free, one per sink per pass so no sink starves the others; then it
waits on the wake list until something is due (at most a second). Why threads and not asyncio,
and what a crash does: docs/delivery.md.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import os
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import redis
import structlog

from workers import delivery, settings
from workhooks.core.logs import CachedLogger
from workhooks.store import inbox, keys, outbox

DEFAULT_THREADS = 64
# Reasons a sink gave for not handing out a delivery that pass to something else within a second
# or two by themselves: a --burst run waits for them; for the others (paused, open, a retry due
# later, nothing queued) it is done.
SOON = {"full", "probing", "rate", "not_before"}
SOON_MS = 5_000
TAKE_AT_ONCE = 16  # deliveries one take may hand out: fewer round trips, and sinks still take turns
EWMA = 0.2  # weight of the newest attempt in a sink's mean CPU time
COLD_START = 4
COMING_BACK = 0.02  # seconds: a fast sink's thread this recently started takes the sink's next itself when done
CAPPED_WAIT = 0.05  # seconds a dispatcher whose sinks all have their useful attempts waits before looking again
WALL_DRIFT = 1.02  # the shortest wall time seen rises 2% per attempt, so a sink that slows down is followed
HEADROOM = 1.5
RENEW_EVERY = 2.0  # seconds: the leases of attempts in progress are renewed this often (each lasts >= 10 s)
SWEEP_EVERY = 5.0  # seconds: how often a worker queues a drain job for events nobody is coming for (inbox.sweep)
STOP_WAIT = 30.0  # on stop, attempts in progress get this long; their leases then run out and others send them

log = CachedLogger("workhooks.worker")


def threads() -> int:
    """Deliveries one worker process keeps in flight at most (WORKHOOKS_DELIVERY_THREADS)."""
    return max(1, int(os.environ.get("WORKHOOKS_DELIVERY_THREADS", DEFAULT_THREADS)))


class Dispatcher:
    def __init__(self, connection: redis.Redis, size: int | None = None) -> None:
        self.connection = connection
        self.size = size or threads()
        self.pool = ThreadPoolExecutor(self.size, thread_name_prefix="workhooks-deliver")
        self.busy: dict[tuple[str, str], outbox.Taken] = {}  # (sink, subject) -> what a sending thread holds
        self.began: dict[str, float] = {}  # sink -> when its newest attempt here began (monotonic)
        self.reserved = 0  # threads promised to what finishing attempts are taking in their completions' calls
        self.changed = threading.Condition()
        self.name = secrets.token_hex(6)
        self.counter = itertools.count()
        self.turn = 0
        self.renewed = time.monotonic()
        self.swept = time.monotonic()
        self.timing: dict[str, tuple[float, float]] = {}  # sink -> (shortest recent wall, mean CPU) s per attempt
        self.attempts: dict[str, int] = {}  # sink -> attempts timed here
        self.stopping = threading.Event()
        self.capped = False

    def useful(self, sink: str, cap: int) -> int:
        """How many attempts to one sink are worth running at once here (Little's law): while an attempt
        waits on the destination, others use the CPU; past wall / CPU threads they only queue for the GIL.
        A sink answering in 100 ms gets dozens, one answering at once two, so its cost per event stays low."""
        wall, cpu = self.timing.get(sink, (0.0, 0.0))
        if cpu <= 0:  # nothing measured yet: a few, and the first answers say how many more are worth it (starting
            return min(cap, COLD_START)  # at the cap measured the crowd's GIL waits, not the sink, and stayed there)
        return max(2, min(cap, math.ceil(wall / cpu * HEADROOM) + 1))

    def coming_back(self, sink: str) -> bool:
        """Whether one of this sink's threads will be done within moments and take (in its completion's call, as
        many as the sink has room for) what is waiting: then taking here too would only double the calls.
        A sink that answers slowly, or an attempt that is taking long, is topped up here as before."""
        wall, _ = self.timing.get(sink, (1.0, 0.0))
        with self.changed:
            began = self.began.get(sink, 0.0) if any(taken.sink == sink for taken in self.busy.values()) else 0.0
        return wall < COMING_BACK and time.monotonic() - began < COMING_BACK

    def running(self, sink: str) -> int:
        with self.changed:
            return sum(1 for taken in self.busy.values() if taken.sink == sink)

    def free(self) -> int:
        with self.changed:
            return self.size - len(self.busy) - self.reserved

    def pass_once(self) -> tuple[int, int, bool]:
        """One take per sink while threads are free: (taken, ms until worth looking again, any soon).
        ``self.capped`` says whether a sink was skipped for having all the attempts here it can use."""
        config = settings.config()
        names = list(config.sinks)
        if not names:
            return 0, outbox.IDLE_WAIT_MS, False
        self.turn = (self.turn + 1) % len(names)
        taken, due, soon = 0, outbox.IDLE_WAIT_MS, False
        self.capped = False
        for name in names[self.turn :] + names[: self.turn]:
            if self.free() <= 0:
                break
            sink = config.sinks[name]
            room = min(self.free(), self.useful(name, sink.in_flight()) - self.running(name), TAKE_AT_ONCE)
            if room <= 0 or self.coming_back(name):
                soon = self.capped = True  # its threads take its next deliveries themselves
                continue
            found, refused = self._take(name, room)
            for item in found:
                self._start(item)
            taken += len(found)
            if refused.reason == "take":
                continue  # stopped at the count asked for: more may wait
            if refused.in_ms:
                due = min(due, refused.in_ms)
            soon = soon or refused.reason in SOON or (refused.reason == "later" and refused.in_ms < SOON_MS)
        return taken, due, soon

    def _take(self, name: str, count: int) -> tuple[list[outbox.Taken], outbox.Refused]:
        asked = self._asking(name, count)
        return outbox.take(self.connection, name, asked.token, asked.in_flight, asked.lease_ms, asked.interval_ms,
                           asked.burst, count)  # fmt: skip

    def _asking(self, name: str, count: int) -> outbox.Next:
        sink = settings.config().sinks[name]
        rate = sink.rate()
        interval = rate.interval_ms() if rate is not None else 0
        token = f"{self.name}-{next(self.counter)}"
        return outbox.Next(token, sink.in_flight(), delivery.lease_ms(name), interval, rate.burst if rate else 1, count)

    def _then(self, done: outbox.Taken) -> outbox.Next | None:
        """What a sending thread completing ``done`` takes next from its sink in the same call, under the same
        limits: no hand-off through the dispatcher thread (which waits behind the busy threads for the GIL)
        and no second round trip. ``done`` is still counted as running here: it is finishing."""
        if self.stopping.is_set() or done.sink not in settings.config().sinks:
            return None
        cap = settings.config().sinks[done.sink].in_flight()
        useful = self.useful(done.sink, cap)
        with self.changed:  # the threads it may use are reserved until it knows what it took: never more than the pool
            room = min(self.free() + 1, useful - self.running(done.sink) + 1, TAKE_AT_ONCE)
            if room <= 0:
                return None
            self.reserved += room - 1  # the first runs on this thread
        try:
            return self._asking(done.sink, room)
        except Exception:
            with self.changed:
                self.reserved -= room - 1
            raise

    def _asked(self, done: outbox.Taken, asked: list[outbox.Next]) -> outbox.Next | None:
        """``_then``, asked by the attempt just before its completion (threads are reserved for that call only),
        and kept in ``asked`` for ``_next``."""
        try:
            made = self._then(done)
        except Exception:  # settings unreadable: the next is taken by the dispatcher
            return None
        asked.extend([made] if made else [])
        return made

    def _next(self, then: outbox.Next | None) -> outbox.Taken | None:
        """The first of what ``then`` took runs on this thread; the rest start on others. Taken while a stop
        began: put back at once for another worker, no attempt counted."""
        if then is None:
            return None
        with self.changed:
            self.reserved -= then.count - 1
        if not then.found:
            return None
        if self.stopping.is_set():
            for taken in then.found:
                with contextlib.suppress(redis.RedisError):
                    delivery.put_back(self.connection, taken)
            return None
        first, *more = then.found
        with self.changed:
            self.busy[first.sink, first.member] = first
            self.began[first.sink] = time.monotonic()
        for taken in more:  # room for more since it last looked (its concurrency grows as it is measured)
            self._start(taken)
        return first

    def sweep(self) -> None:
        """Events in the inbox that no drain job is queued or holding the flag for (its holder died, or a batch
        outlived its hold) get one: at most SWEEP_EVERY plus a job's pick-up after that."""
        if time.monotonic() - self.swept < SWEEP_EVERY:
            return
        self.swept = time.monotonic()
        if inbox.sweep(self.connection):
            log.info("inbox_swept", reason="events waited with no drain job queued or holding the inbox")

    def renew(self) -> None:
        """Keep the leases of slow attempts in progress, so nobody takes them for a dead worker's."""
        if time.monotonic() - self.renewed < RENEW_EVERY:
            return
        self.renewed = time.monotonic()
        with self.changed:
            held = list(self.busy.values())
        for sink in {taken.sink for taken in held}:
            outbox.renew(self.connection, sink, delivery.lease_ms(sink), [t for t in held if t.sink == sink])

    def _start(self, taken: outbox.Taken) -> None:
        with self.changed:
            self.busy[taken.sink, taken.member] = taken
            self.began[taken.sink] = time.monotonic()
        self.pool.submit(self._send, taken)

    def _send(self, taken: outbox.Taken) -> None:
        current: outbox.Taken | None = taken
        while current is not None:
            asked: list[outbox.Next] = []
            then = functools.partial(self._asked, current, asked)  # when the attempt is done, before its completion
            self._attempt(current, then)
            with self.changed:
                self.busy.pop((current.sink, current.member), None)
            current = self._next(asked[0] if asked else None)
            with self.changed:
                self.changed.notify_all()

    def _attempt(self, taken: outbox.Taken, then: delivery.Then | None = None) -> None:
        try:
            structlog.contextvars.clear_contextvars()  # a pool thread runs delivery after delivery
            wall, cpu = time.perf_counter(), time.thread_time()
            with structlog.contextvars.bound_contextvars(delivery_id=taken.delivery_id, sink=taken.sink):
                delivery.attempt(self.connection, taken, then)
            self._timed(taken.sink, time.perf_counter() - wall, time.thread_time() - cpu)
        except redis.RedisError:  # Redis gone mid-way: the lease runs out and the attempt is made again
            log.exception("delivery_not_completed", reason="Redis; tried again when its lease runs out")
        except Exception as error:  # a bug of ours: recorded, tried again in a minute, the lane kept
            log.exception("delivery_failed_in_workhooks", reason="tried again in a minute")
            with contextlib.suppress(redis.RedisError):
                delivery.release(self.connection, taken, f"{type(error).__name__}: {error}")

    def _timed(self, sink: str, wall: float, cpu: float) -> None:
        """The sink's answer time is the shortest wall time seen lately (a longer one was also waiting for
        the GIL behind the other threads, which more threads would only make worse); CPU a running mean."""
        with self.changed:
            old_wall, old_cpu = self.timing.get(sink, (wall, cpu))
            seen = self.attempts.get(sink, 0) + 1
            self.attempts[sink] = seen
            # The first attempts also pay for what a process does once (TLS context, first use of its code):
            # their cheapest, not their mean, seeds the estimate, so that cost does not cap the sink for long.
            mean = min(old_cpu, cpu) if seen <= COLD_START else old_cpu + EWMA * (cpu - old_cpu)
            self.timing[sink] = (min(old_wall * WALL_DRIFT, wall), mean)

    def wait(self, due_ms: int, stop: threading.Event) -> None:
        """Until a wake token, a free thread, or ``due_ms`` from now: at most IDLE_WAIT_MS."""
        with self.changed:
            if self.size - len(self.busy) - self.reserved <= 0:  # back to run(): leases renewed, then look again
                self.changed.wait(0.5)
                return
            if self.capped:  # wake tokens now mostly announce what its own threads take next: do not spin on
                self.changed.wait(CAPPED_WAIT)  # them; a completion, or a short while for the other sinks
                return
        timeout = min(max(due_ms, 10), outbox.IDLE_WAIT_MS) / 1000
        self.connection.blpop([keys.OUTBOX_WAKE], timeout=timeout)

    def run(self, stop: threading.Event, burst: bool = False) -> None:
        """Dispatch until ``stop``; with ``burst``, until nothing is left that is due now or soon."""
        log.info("dispatcher_started", threads=self.size, burst=burst)
        while not stop.is_set():
            try:
                self.renew()
                self.sweep()
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
        self.finish()

    def finish(self) -> None:
        """Let attempts in progress end (bounded); what is still out then goes to another worker with its lease."""
        self.stopping.set()
        ends = time.monotonic() + STOP_WAIT
        with self.changed:
            while self.busy and time.monotonic() < ends:
                self.changed.wait(0.5)
            left = len(self.busy)
        self.pool.shutdown(wait=left == 0, cancel_futures=True)
        log.info("dispatcher_stopped", abandoned=left)

    def abandoned(self) -> int:
        with self.changed:
            return len(self.busy)


def drain(connection: redis.Redis, limit_s: float = 120.0, size: int | None = None) -> int:
    """Deliver everything due now or soon, then return (`workhooks worker --burst`, tests); bounded by
    ``limit_s`` (plus STOP_WAIT for attempts in progress). Returns the attempts left in progress."""
    stop = threading.Event()
    timer = threading.Timer(limit_s, stop.set)
    timer.daemon = True
    timer.start()
    dispatcher = Dispatcher(connection, size)
    try:
        dispatcher.run(stop, burst=True)
    finally:
        timer.cancel()
    return dispatcher.abandoned()


def start(connection: redis.Redis) -> tuple[threading.Thread, threading.Event, Dispatcher]:
    """The dispatcher on a thread of its own; set the event to stop it, then join the thread."""
    stop = threading.Event()
    dispatcher = Dispatcher(connection)
    thread = threading.Thread(target=dispatcher.run, args=(stop,), name="workhooks-dispatch", daemon=True)
    thread.start()
    return thread, stop, dispatcher

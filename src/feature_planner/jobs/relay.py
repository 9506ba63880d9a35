"""The in-process relay: a job's framed events and the connections reading them.

Each event is framed once, appended to its job's ``EventLog``, and every ``Subscriber``
(one per open stream) reads the log from its own position at its own pace: a slow client
falls behind in the log instead of making the server queue bytes for it. An append wakes
the subscribers waiting on that log; no task or timer is created per event, and nobody
polls. Heartbeats come from one shared ``Heartbeat`` timer per process.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from ..sse import PING

__all__ = ["EventLog", "Heartbeat", "Subscriber"]


class EventLog:
    """The framed events of one job, numbered from ``base + 1``, in order."""

    __slots__ = ("_waiting", "base", "finished", "frames")

    def __init__(self, base: int = 0) -> None:
        self.base = base
        self.frames: list[bytes] = []
        self.finished = False
        self._waiting: set[Subscriber] = set()

    @property
    def last_id(self) -> int:
        return self.base + len(self.frames)

    def append(self, frame: bytes) -> None:
        self.frames.append(frame)
        self._wake_all()

    def extend(self, frames: list[bytes]) -> None:
        """Several events at once: one wake-up for the subscribers."""
        if frames:
            self.frames.extend(frames)
            self._wake_all()

    def finish(self) -> None:
        """No event will follow: subscribers drain what is left and end."""
        self.finished = True
        self._wake_all()

    def frames_after(self, event_id: int) -> bytes:
        return b"".join(self.frames[max(0, event_id - self.base) :])

    def _park(self, subscriber: Subscriber) -> None:
        self._waiting.add(subscriber)

    def _unpark(self, subscriber: Subscriber) -> None:
        self._waiting.discard(subscriber)

    def _wake_all(self) -> None:
        waiting, self._waiting = self._waiting, set()
        for subscriber in waiting:
            subscriber.wake()


class Subscriber:
    """One open stream's read position in a job's log.

    ``next_chunk`` returns the bytes to write next (all the events the reader has not yet
    received, a heartbeat, or ``first`` on the first call), or ``None`` when the stream is
    over: after the final event, or once ``close`` was called.
    """

    __slots__ = (
        "_farewell",
        "_first",
        "_log",
        "_on_close",
        "_ping",
        "_waiter",
        "closed",
        "delivered",
        "last_write",
        "position",
    )

    def __init__(
        self,
        log: EventLog,
        after: int,
        *,
        first: bytes = b"",
        on_close: Callable[[Subscriber], None] | None = None,
    ) -> None:
        self._log = log
        self.position = max(after, log.base)
        self._first = first
        self._on_close = on_close
        self._ping = False
        self._waiter: asyncio.Future[None] | None = None
        self._farewell: bytes | None = None
        self.delivered = 0  # job events handed to the connection (for the metrics)
        self.closed = False
        self.last_write = asyncio.get_running_loop().time()

    async def next_chunk(self) -> bytes | None:
        while True:
            if self.closed:
                return None
            if self._farewell is not None:
                return self._say_farewell()
            log = self._log
            if self._first or self.position < log.last_id:
                chunk = self._first + log.frames_after(self.position)
                self._first = b""
                self._advance()
                return self._written(chunk)
            if log.finished:
                return None
            if self._ping:
                self._ping = False
                return self._written(PING)
            self._waiter = asyncio.get_running_loop().create_future()
            log._park(self)
            try:
                await self._waiter
            finally:
                self._waiter = None
                log._unpark(self)

    def _written(self, chunk: bytes) -> bytes:
        self.last_write = asyncio.get_running_loop().time()
        return chunk

    def _advance(self) -> None:
        # Never backwards: a client that resumed after an id the job has not reached yet
        # (a bogus Last-Event-ID) gets only the events after it.
        last_id = self._log.last_id
        if last_id > self.position:
            self.delivered += last_id - self.position
            self.position = last_id

    def hand_off(self, farewell: bytes) -> None:
        """End the stream cleanly: the events not yet sent, then ``farewell``, then the end;
        the client reconnects (to another process) and resumes with ``Last-Event-ID``."""
        self._farewell = farewell
        self.wake()

    def _say_farewell(self) -> bytes | None:
        farewell, self._farewell = self._farewell, b""
        if not farewell:
            return None  # said already: the stream is over
        log = self._log
        chunk = self._first + log.frames_after(self.position) + farewell
        self._first = b""
        self._advance()
        return self._written(chunk)

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def ping(self) -> None:
        """Ask for a heartbeat comment if nothing else is pending."""
        self._ping = True
        self.wake()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.wake()
        if self._on_close is not None:
            self._on_close(self)


class Heartbeat:
    """One timer per process that pings the subscribers that have been quiet too long."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._tick = min(1.0, interval / 5)
        self._subscribers: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None

    def add(self, subscriber: Subscriber) -> None:
        self._subscribers.add(subscriber)

    def discard(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def __len__(self) -> int:
        return len(self._subscribers)

    def subscribers(self) -> list[Subscriber]:
        return list(self._subscribers)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._tick)
            quiet_since = loop.time() - self.interval
            for subscriber in self._subscribers:
                if subscriber.last_write <= quiet_since:
                    subscriber.ping()

"""The Redis store's writer: the events of this process's runs, sent in order, in pipelines.

A run's ``append`` only queues the event. One task per process sends everything queued, for
every job, in one pipeline of ``XADD``s (event N is entry ``N-0``); what is appended while a
pipeline is in flight goes in the next. A job's final event is not written here: the store's
``FINISH`` script writes it with the job's state, after a last ``flush``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from ..errors import StoreUnavailableError
from ..events import JobEvent
from ..redis_client import guarded
from . import redis_schema as schema

__all__ = ["EventWriter"]


class EventWriter:
    """``on_refused(job_ids)``: Redis refused some of those jobs' events (``XADD`` of an id
    not above the stream's last). ``on_unreachable(where)`` and ``on_reachable()`` tell the
    store how Redis answers."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        maxlen: int,
        ttl_ms: int,
        on_refused: Callable[[set[str]], Awaitable[None]],
        on_unreachable: Callable[[str], Awaitable[None]],
        on_reachable: Callable[[], None],
    ) -> None:
        self._client = client
        self._maxlen = maxlen
        self._ttl_ms = ttl_ms
        self._on_refused = on_refused
        self._on_unreachable = on_unreachable
        self._on_reachable = on_reachable
        self._queue: list[tuple[str, JobEvent]] = []  # (job id, event) to XADD, in order
        self._queued = asyncio.Event()
        # One flush at a time: a later batch must never reach Redis before an earlier one
        # still in flight on another pooled connection, or the earlier one's XADDs (lower
        # ids) would be refused and taken for duplicates: deltas lost.
        self._flushing = asyncio.Lock()

    def append(self, job_id: str, event: JobEvent) -> None:
        self._queue.append((job_id, event))
        self._queued.set()

    def clear(self) -> None:
        """Drop what is queued (Redis has been unreachable too long: the runs are over)."""
        self._queue.clear()

    async def write_forever(self) -> None:
        while True:
            await self._queued.wait()
            try:
                await self.flush(raise_errors=True)
            except StoreUnavailableError:
                await self._on_unreachable("writer")
                await asyncio.sleep(0.1)

    async def flush(self, *, raise_errors: bool) -> None:
        """Send every queued event in one pipeline, in order, after any flush in flight.

        A batch whose answer was lost (a timeout) is sent again: entries that made it the
        first time are then refused as duplicates, which ``on_refused`` tells apart from
        a job that another process has ended.
        """
        async with self._flushing:
            await self._flush_batch(raise_errors=raise_errors)

    async def _flush_batch(self, *, raise_errors: bool) -> None:
        if not self._queue:
            self._queued.clear()
            return
        batch, self._queue = self._queue, []
        self._queued.clear()
        pipe = self._client.pipeline(transaction=False)
        for job_id, event in batch:
            pipe.xadd(
                schema.events_key(job_id),
                {"e": event.name, "d": event.data},
                id=f"{event.id}-0",
                maxlen=self._maxlen,
                approximate=True,
            )
        jobs = list(dict.fromkeys(job_id for job_id, _ in batch))
        for job_id in jobs:  # every batch: a key rebuilt after a Redis restart expires too
            pipe.pexpire(schema.events_key(job_id), self._ttl_ms)
        try:
            results = await guarded(pipe.execute(raise_on_error=False))
        except StoreUnavailableError:
            self._queue[:0] = batch  # keep the order; try again
            if raise_errors:
                raise
            return
        self._on_reachable()
        refused = {
            job_id
            for result, (job_id, _) in zip(results, batch, strict=False)
            if isinstance(result, ResponseError)
        }
        if refused:
            await self._on_refused(refused)

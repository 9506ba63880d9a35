"""The Redis store's reader: this process's copies of the event streams it has subscribers on.

One task per process runs one blocking ``XREAD`` over every such job and appends what it
reads, framed once, to the job's in-process ``EventLog`` (its *mirror*), which fans out to
the connections. A job's first subscriber loads its stream so far (``XRANGE``) and makes the
reader cover it; its last one drops the mirror.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .. import events
from ..models import FINAL_EVENTS, ErrorCode
from ..redis_client import UNREACHABLE, guarded
from ..sse import encode_event
from . import redis_schema as schema
from .relay import EventLog

__all__ = ["StreamReader"]


@dataclass(slots=True)
class _Mirror:
    """This process's copy of a job's events, for its local subscribers."""

    log: EventLog = field(default_factory=EventLog)
    cursor: int = 0  # the last event id read from Redis
    subscribers: int = 0


class StreamReader:
    """``on_unreachable(where)`` and ``on_reachable()`` tell the store how Redis answers."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        on_unreachable: Callable[[str], Awaitable[None]],
        on_reachable: Callable[[], None],
    ) -> None:
        self._client = client
        self._on_unreachable = on_unreachable
        self._on_reachable = on_reachable
        self._mirrors: dict[str, _Mirror] = {}
        self._reader_id: int | None = None
        self._has_streams = asyncio.Event()

    async def subscribe(self, job_id: str) -> EventLog | None:
        """The job's mirror, made by its first subscriber; None if the job is gone."""
        mirror = self._mirrors.get(job_id)
        if mirror is None:
            mirror = _Mirror()
            entries = await guarded(self._client.xrange(schema.events_key(job_id), "-", "+"))
            if not entries and not await guarded(self._client.exists(schema.job_key(job_id))):
                return None
            if job_id in self._mirrors:  # another subscriber raced us here: share its mirror
                mirror = self._mirrors[job_id]
            else:
                self._mirrors[job_id] = mirror
                self._apply(mirror, entries)
                if not mirror.log.finished:
                    await self._wake()
        mirror.subscribers += 1
        return mirror.log

    def release(self, job_id: str, log: EventLog) -> None:
        mirror = self._mirrors.get(job_id)
        if mirror is None or mirror.log is not log:
            return  # that mirror was ended and dropped already
        mirror.subscribers -= 1
        if mirror.subscribers <= 0:
            del self._mirrors[job_id]

    def following(self) -> list[str]:
        """The jobs whose mirrors have not seen their final event yet."""
        return [job_id for job_id, mirror in self._mirrors.items() if not mirror.log.finished]

    def end(self, job_id: str, message: str) -> None:
        """End the local streams of a job with STORE_UNAVAILABLE (not a job event: it
        carries the id of the last event received, like ``connected``)."""
        mirror = self._mirrors.pop(job_id, None)
        if mirror is None or mirror.log.finished:
            return
        end = events.error(ErrorCode.STORE_UNAVAILABLE, message)
        mirror.log.append(events.frame(mirror.cursor, end))
        mirror.log.finish()

    def end_all(self, message: str) -> None:
        for job_id in list(self._mirrors):
            self.end(job_id, message)

    async def read_forever(self, reader: aioredis.Redis) -> None:
        """The reader task, on a connection of its own (``reader``: its XREAD blocks)."""
        while True:
            streams: dict[Any, Any] = {
                schema.events_key(job_id): f"{mirror.cursor}-0"
                for job_id, mirror in self._mirrors.items()
                if not mirror.log.finished
            }
            try:
                if self._reader_id is None:
                    self._reader_id = int(await reader.client_id())
                if not streams:
                    self._has_streams.clear()
                    await self._has_streams.wait()
                    continue
                response: Any = await reader.xread(streams, block=5000, count=1000)
            except asyncio.CancelledError:
                raise
            except (*UNREACHABLE, RedisError):
                self._reader_id = None
                await self._on_unreachable("reader")
                await asyncio.sleep(0.2)
                continue
            self._on_reachable()
            for key, entries in response or []:
                job_id = key.decode().split("{", 1)[1].split("}", 1)[0]
                mirror = self._mirrors.get(job_id)
                if mirror is not None:
                    self._apply(mirror, entries)

    def _apply(self, mirror: _Mirror, entries: Any) -> None:
        frames = []
        for entry_id, fields in entries:
            event_id = int(entry_id.split(b"-", 1)[0])
            if event_id <= mirror.cursor:
                continue
            name = fields[b"e"].decode()
            frames.append(encode_event(event_id, name, fields[b"d"]))
            mirror.cursor = event_id
            if name in FINAL_EVENTS:
                mirror.log.extend(frames)
                mirror.log.finish()
                return
        mirror.log.extend(frames)

    async def _wake(self) -> None:
        """Make the reader cover a new job: wake it if idle, interrupt its XREAD if not."""
        if not self._has_streams.is_set():
            self._has_streams.set()
        elif self._reader_id is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._client.client_unblock(self._reader_id)

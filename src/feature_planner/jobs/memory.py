"""The embedded job store: everything in this process's memory."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..events import JobEvent
from ..models import JobState
from .relay import EventLog
from .store import CancelHandler, JobRecord, JobStore, JobTTLs

__all__ = ["MemoryJobStore"]


@dataclass(slots=True)
class _Entry:
    record: JobRecord
    log: EventLog
    expires_at: float  # on the store's clock; math.inf while running
    on_cancel: CancelHandler | None = None  # the claim's, while it runs


class MemoryJobStore(JobStore):
    """Jobs in a dict. Atomicity comes from the event loop: no method awaits mid-change."""

    def __init__(
        self,
        ttls: JobTTLs | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sweep_interval: float = 5.0,
    ) -> None:
        self._ttls = ttls or JobTTLs()
        self._clock = clock
        self._sweep_interval = sweep_interval
        self._jobs: dict[str, _Entry] = {}
        self._watchers: dict[str, set[str]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._jobs)

    async def create(self, job: JobRecord) -> None:
        self._jobs[job.id] = _Entry(job, EventLog(), self._clock() + self._ttls.pending)

    async def get(self, job_id: str) -> JobRecord | None:
        entry = self._live(job_id)
        return entry.record if entry else None

    async def claim(self, job_id: str, runner_id: str, *, on_cancel: CancelHandler) -> bool:
        entry = self._live(job_id)
        if entry is None or entry.record.state is not JobState.PENDING:
            return False
        entry.record.state = JobState.IN_PROGRESS
        entry.expires_at = math.inf
        entry.on_cancel = on_cancel
        return True

    async def cancel_pending(self, job_id: str, final_event: JobEvent) -> bool:
        entry = self._live(job_id)
        if entry is None or entry.record.state is not JobState.PENDING:
            return False
        entry.log.append(final_event.frame)
        self._end(entry, JobState.CANCELLED, entry.log.last_id)
        return True

    def append(self, job_id: str, event: JobEvent) -> None:
        entry = self._jobs.get(job_id)
        if entry is not None:
            entry.log.append(event.frame)

    async def finish(self, job_id: str, state: JobState, last_event_id: int) -> None:
        entry = self._jobs.get(job_id)
        if entry is not None:
            self._end(entry, state, last_event_id)

    async def subscribe_log(self, job_id: str) -> EventLog | None:
        entry = self._live(job_id)
        return entry.log if entry else None

    def add_watcher(self, job_id: str, watcher_id: str) -> None:
        self._watchers.setdefault(job_id, set()).add(watcher_id)

    def remove_watcher(self, job_id: str, watcher_id: str) -> None:
        watchers = self._watchers.get(job_id)
        if watchers is not None:
            watchers.discard(watcher_id)
            if not watchers:
                del self._watchers[job_id]

    async def watcher_counts(self, job_ids: Iterable[str]) -> dict[str, int]:
        return {job_id: len(self._watchers.get(job_id, ())) for job_id in job_ids}

    async def request_cancel(self, job_id: str, message: str) -> None:
        entry = self._jobs.get(job_id)
        if entry is not None and entry.on_cancel is not None:
            entry.on_cancel(message)

    async def ping(self) -> None:
        return None

    async def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    def sweep(self) -> int:
        """Drop expired jobs; returns how many."""
        now = self._clock()
        expired = [job_id for job_id, entry in self._jobs.items() if entry.expires_at <= now]
        for job_id in expired:
            del self._jobs[job_id]
        return len(expired)

    def _end(self, entry: _Entry, state: JobState, last_event_id: int) -> None:
        entry.record.state = state
        entry.record.last_event_id = last_event_id
        entry.expires_at = self._clock() + self._ttls.after(state)
        entry.on_cancel = None
        entry.log.finish()

    def _live(self, job_id: str) -> _Entry | None:
        entry = self._jobs.get(job_id)
        if entry is not None and entry.expires_at <= self._clock():
            del self._jobs[job_id]
            return None
        return entry

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            self.sweep()

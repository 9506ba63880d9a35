"""Reading jobs without a stream: one job's status, the user's runs, removing one.

Two places know a job: the job store (live, and briefly after it ends) and the history (SQL,
for ``history_days``). The store is the truth while it has the job; the history after. A
job that ended where this process did not see it end (another replica's run, a runner that
died, a pending job nobody opened) is written to the history here, the first time it is
read, from its final event — so every replica answers the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import replace

from .. import events
from ..errors import (
    InvalidJobIdError,
    JobActiveError,
    JobForbiddenError,
    JobNotFoundError,
    StoreUnavailableError,
)
from ..history import HistoryEntry, HistoryStore
from ..models import CompleteEvent, ErrorCode, ErrorEvent, JobState
from .relay import EventLog, Subscriber
from .store import JobRecord, JobStore

__all__ = ["JobReader", "check_owner", "ended", "entry_of", "is_uuid4", "wait_finished"]

logger = logging.getLogger("feature_planner.jobs")

MAX_WAIT_S = 30
# How long a read waits for this process's queued history writes to land (milliseconds,
# normally); with the database down, the read goes on without them.
_CATCH_UP_S = 1.0


class _Unread:
    """The history could not be read (its database is down) while the store had the job."""


UNREAD = _Unread()


class JobReader:
    def __init__(self, store: JobStore, history: HistoryStore) -> None:
        self.store = store
        self.history = history

    async def status(self, user_id: str, job_id: str, *, wait_s: float = 0) -> HistoryEntry:
        """The job as its owner sees it now; with ``wait_s``, once it is final or that
        many seconds have passed, whichever comes first."""
        record, entry = await self._find(user_id, job_id)
        if record is not None and not record.state.is_final and wait_s > 0:
            await self._wait_final(job_id, wait_s)
            record, entry = await self._find(user_id, job_id)
        return await self._current(job_id, record, entry)

    async def page(
        self, user_id: str, *, limit: int, cursor: str | None, status: JobState | None
    ) -> tuple[list[HistoryEntry], str | None]:
        """The user's runs, newest first; active ones brought up to date from the store."""
        await self.history.caught_up(_CATCH_UP_S)
        entries, next_cursor = await self.history.page(
            user_id, limit=limit, cursor=cursor, status=status
        )
        current = [await self._refreshed(entry) for entry in entries]
        # A row the store showed to have moved on no longer matches the filter.
        return [entry for entry in current if status in (None, entry.status)], next_cursor

    async def remove(self, user_id: str, job_id: str) -> None:
        """Remove a finished job from the history; ``JobActiveError`` if it is not finished."""
        record, entry = await self._find(user_id, job_id)
        current = await self._current(job_id, record, entry)
        if not current.status.is_final:
            raise JobActiveError
        await self.history.delete(user_id, job_id)

    async def finished_entry(self, user_id: str, job_id: str) -> HistoryEntry:
        """A job the store no longer has: its history, if it belongs to ``user_id``."""
        entry = await self.history_entry(job_id)
        if entry is None:
            raise JobNotFoundError
        check_owner(user_id, entry.user_id, job_id)
        return await self._current(job_id, None, entry)

    # -- the two sources -------------------------------------------------------------------

    async def _find(
        self, user_id: str, job_id: str
    ) -> tuple[JobRecord | None, HistoryEntry | _Unread | None]:
        """The job in the store and in the history. While the store has it, the history
        being unreachable does not matter (``UNREAD``); after, it is ``StoreUnavailableError``."""
        if not is_uuid4(job_id):
            raise InvalidJobIdError(f"{job_id[:64]!r} is not a UUID v4 job id")
        record = await self.store.get(job_id)
        entry: HistoryEntry | _Unread | None
        try:
            entry = await self.history_entry(job_id)
        except StoreUnavailableError:
            if record is None:
                raise
            entry = UNREAD
        if record is not None:
            check_owner(user_id, record.user_id, job_id)
        elif isinstance(entry, HistoryEntry):
            check_owner(user_id, entry.user_id, job_id)
        else:
            raise JobNotFoundError
        return record, entry

    async def history_entry(self, job_id: str) -> HistoryEntry | None:
        """The job's row, this process's queued writes included."""
        await self.history.caught_up(_CATCH_UP_S)
        return await self.history.get(job_id)

    async def _refreshed(self, entry: HistoryEntry) -> HistoryEntry:
        if entry.status.is_final:
            return entry
        try:
            record = await self.store.get(entry.job_id)
        except StoreUnavailableError:
            return entry  # as last known; the store's return will settle it
        return await self._current(entry.job_id, record, entry)

    async def _current(
        self, job_id: str, record: JobRecord | None, entry: HistoryEntry | _Unread | None
    ) -> HistoryEntry:
        """One view of the job from both sources, the history repaired when it lags."""
        if record is not None and not record.state.is_final:
            return await self._live(record, entry if isinstance(entry, HistoryEntry) else None)
        if entry is UNREAD and record is not None:  # the store's view; the runner's own
            final = await self._final_event(job_id)  # write reaches the history later
            return ended(entry_of(record), final, record.last_event_id, record.state)
        if not isinstance(entry, HistoryEntry):  # never kept, or removed by its owner
            raise JobNotFoundError
        if entry.status.is_final:
            return entry
        if record is not None:
            final = await self._final_event(job_id)
            repaired = ended(entry, final, record.last_event_id, record.state)
        else:
            repaired = _lost(entry)
        self.history.record(repaired)
        logger.info(
            "job %s recorded from its final event",
            repaired.status.value,
            extra={"job_id": job_id, "user_id": repaired.user_id, "transition": "recorded"},
        )
        return repaired

    async def _live(self, record: JobRecord, entry: HistoryEntry | None) -> HistoryEntry:
        log = await self.store.subscribe_log(record.id)
        last_id = 0
        if log is not None:
            last_id = log.last_id
            self.store.release_log(record.id, log)
        base = entry or entry_of(record)
        return replace(base, status=record.state, last_event_id=last_id)

    async def _final_event(self, job_id: str) -> CompleteEvent | ErrorEvent | None:
        log = await self.store.subscribe_log(job_id)
        if log is None:
            return None
        try:
            return events.final_event(log.frames[-1]) if log.frames else None
        finally:
            self.store.release_log(job_id, log)

    async def _wait_final(self, job_id: str, wait_s: float) -> None:
        log = await self.store.subscribe_log(job_id)
        if log is None:
            return
        try:
            await wait_finished(log, timeout=min(wait_s, MAX_WAIT_S))
        finally:
            self.store.release_log(job_id, log)


def check_owner(user_id: str, owner: str, job_id: str) -> None:
    if owner != user_id:
        raise JobForbiddenError(caller=user_id, owner=owner, job_id=job_id)


async def wait_finished(log: EventLog, timeout: float) -> None:
    """Until ``log`` has its final event, or ``timeout`` seconds."""
    reader = Subscriber(log, log.last_id)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while await reader.next_chunk() is not None:
                pass


def is_uuid4(value: str) -> bool:
    if len(value) != 36:
        return False
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    return parsed.version == 4 and str(parsed) == value.lower()


def entry_of(record: JobRecord) -> HistoryEntry:
    """The history row of a job as its store record describes it."""
    return HistoryEntry(
        job_id=record.id,
        user_id=record.user_id,
        status=record.state,
        request=record.request,
        created_at_ms=record.created_at_ms,
        last_event_id=record.last_event_id,
        parent_job_id=record.parent_job_id,
    )


def ended(
    entry: HistoryEntry,
    final: CompleteEvent | ErrorEvent | None,
    last_event_id: int,
    state: JobState,
) -> HistoryEntry:
    """``entry`` once the job has ended with ``final`` (its event ``last_event_id``)."""
    if isinstance(final, CompleteEvent):
        return replace(
            entry,
            status=JobState.COMPLETED,
            finished_at_ms=final.timestamp,
            last_event_id=last_event_id,
            result=final.to_wire(),
            suggestions_count=len(final.suggestions),
            provider=final.provider,
            model=final.model,
        )
    if final is None:
        final = events.error(ErrorCode.WORKER_LOST, "The job's events were lost")
    status = JobState.CANCELLED if final.code == ErrorCode.CANCELLED else JobState.FAILED
    if state.is_final and state is not JobState.COMPLETED:
        status = state
    return replace(
        entry,
        status=status,
        finished_at_ms=final.timestamp,
        last_event_id=last_event_id,
        error=final.to_wire(),
    )


def _lost(entry: HistoryEntry) -> HistoryEntry:
    """A job the store no longer has, whose end the history never heard of."""
    if entry.status is JobState.PENDING:
        final = events.error(
            ErrorCode.CANCELLED, "Nobody opened the job's stream before it expired, so it never ran"
        )
        return ended(entry, final, entry.last_event_id, JobState.CANCELLED)
    final = events.error(
        ErrorCode.WORKER_LOST, "The job's runner stopped before the job finished; please try again"
    )
    return ended(entry, final, entry.last_event_id, JobState.FAILED)

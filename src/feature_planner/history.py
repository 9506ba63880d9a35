"""The history of jobs: each job's input, state, result and times, kept in the SQL database.

Writes are write-behind. ``record`` queues the whole row and returns at once; one background
task takes everything queued so far and upserts it in one transaction. An upsert never moves
a row back (pending < in_progress < final): a final row is never overwritten by a late
non-final one, so order and repeats are harmless. A failed write is retried with backoff
(``tenacity``), each failure logged and counted; after the last attempt the batch is given up,
so that ``flushed()`` returns. Reads see what has been written: ``flushed()`` first to read
one's own writes (``delete`` and ``revoke_shares`` do).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import json
import logging
import math
import re
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Row, and_, case, delete, func, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from .database import Database, reason
from .metrics import Metrics
from .models import JobState, SuggestionRequest
from .tables import job_history

__all__ = ["HistoryEntry", "HistoryStore"]

logger = logging.getLogger("feature_planner.history")

_UNAVAILABLE = "The job history database is unreachable; try again shortly"
_MAX_QUEUED = 10_000
_CLOSE_WAIT_S = 5.0
_PRUNE_EVERY_S = 3600.0
# A write costs ~0.5 ms however few rows it holds: under load, rows gather this long after
# the previous write so that each write carries many (a lone row is written at once).
_GATHER_S = 0.01
_DAY_MS = 86_400_000
_FINAL = tuple(state.value for state in JobState if state.is_final)
_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,200}")


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One job as the history keeps it; times are epoch milliseconds."""

    job_id: str
    user_id: str
    status: JobState
    request: SuggestionRequest
    created_at_ms: int
    started_at_ms: int | None = None
    finished_at_ms: int | None = None
    provider: str | None = None
    model: str | None = None
    last_event_id: int = 0
    result: dict[str, Any] | None = None  # the `complete` event's data
    error: dict[str, Any] | None = None  # the `error` event's data
    suggestions_count: int | None = None
    parent_job_id: str | None = None
    shares_revoked_at_ms: int | None = None
    files_read: tuple[str, ...] | None = None  # the paths the run read, once it has ended
    tokens: int | None = None  # what the run was charged, once it has ended
    cost_usd: float | None = None  # where the provider reports a cost


class HistoryStore:
    """``record`` (write-behind) and read the jobs' history; ``prune`` what is too old.

    The ``database`` is started before ``start()`` and closed after ``close()`` by its owner.
    ``retry_*`` shape the backoff of a failed write (attempts in all, first and longest wait).
    """

    def __init__(
        self,
        database: Database,
        *,
        retention_days: float,
        metrics: Metrics | None = None,
        retry_attempts: int = 8,
        retry_initial_s: float = 0.2,
        retry_max_s: float = 10.0,
    ) -> None:
        if retention_days <= 0:
            raise ValueError("retention_days must be positive")
        if retry_attempts < 1:
            raise ValueError("retry_attempts must be at least 1")
        self._database = database
        self._retention_ms = int(retention_days * _DAY_MS)
        self._metrics = metrics
        self._attempts = retry_attempts
        self._wait = wait_exponential(multiplier=retry_initial_s, max=retry_max_s) + wait_random(
            0, retry_initial_s
        )
        self._queue: deque[HistoryEntry] = deque()
        self._queued = 0  # entries ever queued; they settle in order, as a prefix
        self._settled = 0  # of those: written, given up or dropped
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._pruner: asyncio.Task[None] | None = None
        self._closed = False
        self._dropping = False

    async def start(self) -> None:
        """Start the writer, and the pruner (it prunes now, then hourly)."""
        if self._writer is not None:
            raise RuntimeError("HistoryStore is already started")
        self._writer = asyncio.create_task(self._write_loop(), name="history-writer")
        self._pruner = asyncio.create_task(self._prune_loop(), name="history-pruner")

    async def close(self) -> None:
        """Write what is queued (waiting at most a few seconds), then stop."""
        self._closed = True
        writer, pruner = self._writer, self._pruner
        if writer is not None and not writer.done():
            try:
                async with asyncio.timeout(_CLOSE_WAIT_S):
                    await self.flushed()
            except TimeoutError:
                pass
        for task in (writer, pruner):
            if task is not None:
                task.cancel()
        await asyncio.gather(
            *(t for t in (writer, pruner) if t is not None), return_exceptions=True
        )

    def record(self, entry: HistoryEntry) -> None:
        """Queue an upsert of the whole row; never raises, never waits."""
        if self._closed:
            logger.error("job history: closed; job %s not recorded", entry.job_id)
            self._count_lost("shutdown", 1)
            return
        if len(self._queue) >= _MAX_QUEUED:
            self._queue.popleft()
            self._count_lost("queue_full", 1)
            if not self._dropping:
                self._dropping = True
                logger.error(
                    "job history: %d rows waiting to be written; dropping the oldest",
                    _MAX_QUEUED,
                )
        self._queue.append(entry)
        self._queued += 1
        self._wakeup.set()

    async def flushed(self) -> None:
        """Return once every row queued before this call is written or given up."""
        target = self._queued
        if self._settled >= target or self._writer is None or self._writer.done():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((target, waiter))
        await waiter

    async def caught_up(self, timeout_s: float = _CLOSE_WAIT_S) -> None:
        """``flushed()``, for at most a few seconds: with the database down, the read or change
        that follows fails at once rather than after every retry of the queued writes."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self.flushed()

    async def get(self, job_id: str) -> HistoryEntry | None:
        return await self._database.run(_get, job_id, unavailable=_UNAVAILABLE)

    async def tokens_since(self, user_id: str, since_ms: int) -> list[tuple[int, int]]:
        """The user's runs that ended after ``since_ms`` and were charged tokens: (when they
        ended, their tokens), oldest first (the daily budget's question)."""
        return await self._database.run(_tokens_since, user_id, since_ms, unavailable=_UNAVAILABLE)

    async def page(
        self, user_id: str, *, limit: int, cursor: str | None, status: JobState | None
    ) -> tuple[list[HistoryEntry], str | None]:
        """The user's jobs, newest first, after ``cursor``; and the next page's cursor, if any.

        ``ValueError`` for a cursor this store did not make, or a ``limit`` below 1.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        after = _decode_cursor(cursor) if cursor is not None else None
        rows = await self._database.run(
            _page, user_id, limit + 1, after, status, unavailable=_UNAVAILABLE
        )
        entries = rows[:limit]
        more = len(rows) > limit
        return entries, _encode_cursor(entries[-1]) if more else None

    async def delete(self, user_id: str, job_id: str) -> bool:
        """Remove the user's job from the history; ``False`` if they have no such job."""
        await self.caught_up()  # else a queued row of it would come back
        return await self._database.run(_delete, user_id, job_id, unavailable=_UNAVAILABLE)

    async def revoke_shares(self, job_id: str, at_ms: int) -> None:
        """Mark every share of the job made up to ``at_ms`` as revoked (it never moves back)."""
        await self.caught_up()
        await self._database.run(_revoke, job_id, at_ms, unavailable=_UNAVAILABLE)

    async def prune(self, now_ms: int | None = None) -> int:
        """Delete the finished jobs created more than the retention period ago; how many."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        count = await self._database.run(
            _prune, now_ms - self._retention_ms, unavailable=_UNAVAILABLE
        )
        if count:
            logger.info("job history: pruned %d jobs older than the history period", count)
        return count

    # -- the background tasks ----------------------------------------------------------

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last_write = -math.inf
        try:
            while True:
                if not self._queue:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                if (since := loop.time() - last_write) < _GATHER_S:
                    await asyncio.sleep(_GATHER_S - since)
                last_write = loop.time()
                batch = list(self._queue)
                self._queue.clear()
                upto = self._queued
                await self._write(_latest_per_job(batch))
                self._settle(upto)
        finally:
            # Nothing will write them now: count them, and release every waiter.
            lost = self._queued - self._settled
            if lost:
                logger.error("job history: %d rows not written before shutdown", lost)
                self._count_lost("shutdown", lost)
            self._queue.clear()
            self._settle(self._queued)

    async def _write(self, rows: list[HistoryEntry]) -> None:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=self._wait,
            before_sleep=self._on_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._database.run(_upsert, rows, unavailable=_UNAVAILABLE)
        except Exception as exc:
            self._count_failure()
            logger.error(
                "job history: gave up writing %d rows after %d attempts: %s",
                len(rows),
                self._attempts,
                reason(exc),
            )
            self._count_lost("given_up", len(rows))
            return
        self._dropping = False
        if self._metrics is not None:
            self._metrics.history_writes.inc(len(rows))

    def _on_retry(self, state: RetryCallState) -> None:
        self._count_failure()
        exc = state.outcome.exception() if state.outcome is not None else None
        wait_s = state.next_action.sleep if state.next_action is not None else 0.0
        logger.warning(
            "job history: writing failed (attempt %d of %d, retrying in %.1fs): %s",
            state.attempt_number,
            self._attempts,
            wait_s,
            reason(exc) if exc is not None else "unknown",
        )

    async def _prune_loop(self) -> None:
        while True:
            try:
                await self.prune()
            except Exception as exc:
                logger.warning("job history: pruning failed: %s", reason(exc))
            await asyncio.sleep(_PRUNE_EVERY_S)

    def _settle(self, upto: int) -> None:
        self._settled = max(self._settled, upto)
        waiting = []
        for target, waiter in self._waiters:
            if target <= self._settled:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                waiting.append((target, waiter))
        self._waiters = waiting

    def _count_failure(self) -> None:
        if self._metrics is not None:
            self._metrics.history_write_failures.inc()

    def _count_lost(self, why: str, rows: int) -> None:
        if self._metrics is not None:
            self._metrics.history_writes_lost.labels(why).inc(rows)


def _latest_per_job(batch: Sequence[HistoryEntry]) -> list[HistoryEntry]:
    """One row per job, by the upsert's own rule: a later entry wins unless it moves back."""
    latest: dict[str, HistoryEntry] = {}
    for entry in batch:
        kept = latest.get(entry.job_id)
        if kept is None or _rank(entry.status) >= _rank(kept.status):
            latest[entry.job_id] = entry
    return list(latest.values())


def _rank(status: JobState) -> int:
    return 2 if status.is_final else 1 if status is JobState.IN_PROGRESS else 0


# -- cursors ---------------------------------------------------------------------------


def _encode_cursor(entry: HistoryEntry) -> str:
    raw = json.dumps([entry.created_at_ms, entry.job_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode("ascii")


def _decode_cursor(cursor: str) -> tuple[int, str]:
    if not _CURSOR.fullmatch(cursor):
        raise ValueError("malformed cursor")
    try:
        padded = cursor.replace("-", "+").replace("_", "/") + "=" * (-len(cursor) % 4)
        value = json.loads(binascii.a2b_base64(padded, strict_mode=True))
    except (binascii.Error, ValueError):
        raise ValueError("malformed cursor") from None
    match value:
        case [int() as created_at_ms, str() as job_id] if (
            not isinstance(created_at_ms, bool) and 0 < len(job_id) <= 36
        ):
            return created_at_ms, job_id
    raise ValueError("malformed cursor")


# -- the calls, each run in a worker thread --------------------------------------------


def _values(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "job_id": entry.job_id,
        "user_id": entry.user_id,
        "status": entry.status.value,
        "input": entry.request.to_wire(),
        "created_at_ms": entry.created_at_ms,
        "started_at_ms": entry.started_at_ms,
        "finished_at_ms": entry.finished_at_ms,
        "provider": entry.provider,
        "model": entry.model,
        "last_event_id": entry.last_event_id,
        "result": entry.result,
        "error": entry.error,
        "suggestions_count": entry.suggestions_count,
        "parent_job_id": entry.parent_job_id,
        "shares_revoked_at_ms": entry.shares_revoked_at_ms,
        "tokens": entry.tokens,
        "cost_usd": entry.cost_usd,
        "files_read": list(entry.files_read) if entry.files_read is not None else None,
    }


def _upsert(engine: Engine, entries: list[HistoryEntry]) -> None:
    statement = _upsert_statement(engine.dialect.name)
    with engine.begin() as conn:
        conn.execute(statement, [_values(entry) for entry in entries])


@functools.cache
def _upsert_statement(dialect: str) -> Insert:
    """The upsert, built once per dialect: building it costs more than running it."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(job_history)
    new, stored = statement.excluded, job_history.c
    kept = {"job_id", "user_id"}  # a record never moves a job to another user
    changes: dict[str, Any] = {
        column.name: new[column.name] for column in job_history.c if column.name not in kept
    }
    # A revocation only moves forward: a row recorded without it keeps the stored one.
    changes["shares_revoked_at_ms"] = case(
        (new.shares_revoked_at_ms.is_(None), stored.shares_revoked_at_ms),
        (stored.shares_revoked_at_ms.is_(None), new.shares_revoked_at_ms),
        (new.shares_revoked_at_ms > stored.shares_revoked_at_ms, new.shares_revoked_at_ms),
        else_=stored.shares_revoked_at_ms,
    )
    # Only the run's own end knows what it read: a repair from its final event elsewhere,
    # recorded later, keeps it.
    changes["files_read"] = func.coalesce(new.files_read, stored.files_read)
    changes["tokens"] = func.coalesce(new.tokens, stored.tokens)  # likewise what it cost
    changes["cost_usd"] = func.coalesce(new.cost_usd, stored.cost_usd)
    # pending < in_progress < final: the stored row is replaced unless that moves it back.
    # (Plain comparisons, not IN: an expanding IN cannot run as executemany.)
    forward = or_(
        *(new.status == value for value in _FINAL),
        and_(
            *(stored.status != value for value in _FINAL),
            or_(new.status == JobState.IN_PROGRESS.value, stored.status == "pending"),
        ),
    )
    return statement.on_conflict_do_update(index_elements=["job_id"], set_=changes, where=forward)


def _entry(row: Row[Any]) -> HistoryEntry:
    return HistoryEntry(
        job_id=row.job_id,
        user_id=row.user_id,
        status=JobState(row.status),
        request=SuggestionRequest.model_validate(row.input),
        created_at_ms=row.created_at_ms,
        started_at_ms=row.started_at_ms,
        finished_at_ms=row.finished_at_ms,
        provider=row.provider,
        model=row.model,
        last_event_id=row.last_event_id,
        result=row.result,
        error=row.error,
        suggestions_count=row.suggestions_count,
        parent_job_id=row.parent_job_id,
        shares_revoked_at_ms=row.shares_revoked_at_ms,
        tokens=row.tokens,
        cost_usd=row.cost_usd,
        files_read=tuple(row.files_read) if row.files_read is not None else None,
    )


def _get(engine: Engine, job_id: str) -> HistoryEntry | None:
    with engine.connect() as conn:
        row = conn.execute(select(job_history).where(job_history.c.job_id == job_id)).one_or_none()
    return None if row is None else _entry(row)


def _page(
    engine: Engine,
    user_id: str,
    limit: int,
    after: tuple[int, str] | None,
    status: JobState | None,
) -> list[HistoryEntry]:
    c = job_history.c
    query = select(job_history).where(c.user_id == user_id)
    if status is not None:
        query = query.where(c.status == status.value)
    if after is not None:
        query = query.where(tuple_(c.created_at_ms, c.job_id) < tuple_(*after))
    query = query.order_by(c.created_at_ms.desc(), c.job_id.desc()).limit(limit)
    with engine.connect() as conn:
        return [_entry(row) for row in conn.execute(query)]


def _tokens_since(engine: Engine, user_id: str, since_ms: int) -> list[tuple[int, int]]:
    c = job_history.c
    query = (
        select(c.finished_at_ms, c.tokens)
        .where(c.user_id == user_id, c.finished_at_ms > since_ms, c.tokens > 0)
        .order_by(c.finished_at_ms)
    )
    with engine.connect() as conn:
        return [(row.finished_at_ms, row.tokens) for row in conn.execute(query)]


def _delete(engine: Engine, user_id: str, job_id: str) -> bool:
    c = job_history.c
    with engine.begin() as conn:
        result = conn.execute(delete(job_history).where(c.user_id == user_id, c.job_id == job_id))
    return result.rowcount > 0


def _revoke(engine: Engine, job_id: str, at_ms: int) -> None:
    c = job_history.c
    with engine.begin() as conn:
        conn.execute(
            update(job_history)
            .where(
                c.job_id == job_id,
                or_(c.shares_revoked_at_ms.is_(None), c.shares_revoked_at_ms < at_ms),
            )
            .values(shares_revoked_at_ms=at_ms)
        )


def _prune(engine: Engine, cutoff_ms: int) -> int:
    c = job_history.c
    with engine.begin() as conn:
        result = conn.execute(
            delete(job_history).where(c.created_at_ms < cutoff_ms, c.status.in_(_FINAL))
        )
    return result.rowcount

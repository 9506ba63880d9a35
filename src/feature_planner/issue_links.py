"""The GitHub issue filed for each suggestion, kept in the SQL database (``issue_links``), so
that a suggestion is filed once, whichever replica is asked and however many at once.

Filing first *reserves* the suggestion's row (an insert that only one request can make; the
row has no number yet), then calls GitHub, then *settles* the row with the issue, or
*releases* it when GitHub refused, so that a later request may try again. A request that
finds the row reserved waits for it to be settled (and answers with that issue) or released
(and reserves it itself). A reservation older than ``stale_after_s`` (its process died while
filing) is taken over; the delay is longer than any filing can take, GitHub's timeouts
included.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Engine, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .database import Database
from .errors import StoreUnavailableError
from .github import FiledIssue
from .tables import issue_links

__all__ = ["IssueLinks"]

_UNAVAILABLE = "The issue database is unreachable; try again shortly"
_STUCK = "Another request is still filing this suggestion as an issue; try again shortly"


@dataclass(frozen=True, slots=True)
class _Reserved:
    at_ms: int  # the row's created_at_ms: whose reservation it is


class _Wait:
    """Another request is filing it (or just released it): look again shortly."""


_WAIT = _Wait()


class IssueLinks:
    """``file_once``: the suggestion's issue, filed by ``file`` only if it has none yet.

    The ``database`` is started and closed by its owner, before and after the store is used.
    """

    def __init__(
        self,
        database: Database,
        *,
        stale_after_s: float = 60.0,
        wait_s: float | None = None,
        poll_s: float = 0.05,
    ) -> None:
        self._database = database
        self._stale_after_ms = int(stale_after_s * 1000)
        # A waiter gives up (503) after this; by then the row is settled, released or stale.
        self._wait_s = wait_s if wait_s is not None else 2 * stale_after_s
        self._poll_s = poll_s

    async def file_once(
        self,
        job_id: str,
        index: int,
        *,
        user_id: str,
        repository: str,
        file: Callable[[], Awaitable[FiledIssue]],
    ) -> tuple[FiledIssue, bool]:
        """The suggestion's issue, and whether this call filed it (else it was filed before,
        or by a request that ran at the same time)."""
        deadline = time.monotonic() + self._wait_s
        while True:
            claim = await self._database.run(
                _reserve,
                job_id,
                index,
                user_id,
                repository,
                self._stale_after_ms,
                unavailable=_UNAVAILABLE,
            )
            if isinstance(claim, FiledIssue):
                return claim, False
            if isinstance(claim, _Reserved):
                return await self._file(job_id, index, claim, file), True
            if time.monotonic() > deadline:  # the takeover above should have come first
                raise StoreUnavailableError(_STUCK)
            await asyncio.sleep(self._poll_s)

    async def _file(
        self, job_id: str, index: int, mine: _Reserved, file: Callable[[], Awaitable[FiledIssue]]
    ) -> FiledIssue:
        try:
            link = await file()
        except BaseException:
            await self._database.run(_release, job_id, index, mine.at_ms, unavailable=_UNAVAILABLE)
            raise
        await self._database.run(_settle, job_id, index, mine.at_ms, link, unavailable=_UNAVAILABLE)
        return link


# -- the calls, each run in a worker thread --------------------------------------------


def _key(job_id: str, index: int) -> list[ColumnElement[bool]]:
    return [issue_links.c.job_id == job_id, issue_links.c.suggestion_index == index]


def _reserve(
    engine: Engine, job_id: str, index: int, user_id: str, repository: str, stale_after_ms: int
) -> FiledIssue | _Reserved | _Wait:
    """Reserve the row (or take over a stale reservation); else its issue, or ``_WAIT``."""
    now = _now_ms()
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    statement = insert(issue_links).values(
        job_id=job_id,
        suggestion_index=index,
        user_id=user_id,
        repository=repository,
        number=None,
        url=None,
        created_at_ms=now,
    )
    with engine.begin() as conn:
        # RETURNING says whether this insert made the row (rowcount is not reliable here).
        made = conn.execute(
            statement.on_conflict_do_nothing().returning(issue_links.c.created_at_ms)
        ).first()
        if made is not None:
            return _Reserved(now)
        row = conn.execute(select(issue_links).where(*_key(job_id, index))).one_or_none()
        if row is None:  # released in between: try again
            return _WAIT
        if row.number is not None:
            return FiledIssue(row.number, row.url)
        if now - row.created_at_ms < stale_after_ms:
            return _WAIT
        taken = conn.execute(
            update(issue_links)
            .where(
                *_key(job_id, index),
                issue_links.c.number.is_(None),
                issue_links.c.created_at_ms == row.created_at_ms,
            )
            .values(user_id=user_id, repository=repository, created_at_ms=now)
            .returning(issue_links.c.created_at_ms)
        ).first()
        return _Reserved(now) if taken is not None else _WAIT


def _settle(engine: Engine, job_id: str, index: int, at_ms: int, link: FiledIssue) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(issue_links)
            .where(*_key(job_id, index), issue_links.c.created_at_ms == at_ms)
            .values(number=link.number, url=link.url)
        )


def _release(engine: Engine, job_id: str, index: int, at_ms: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            delete(issue_links).where(
                *_key(job_id, index),
                issue_links.c.number.is_(None),
                issue_links.c.created_at_ms == at_ms,
            )
        )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000

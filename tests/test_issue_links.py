"""The issue_links store: one filing per suggestion, in SQLite and PostgreSQL — the reservation,
its release when filing fails, a waiter answered with the issue, a dead filer's row taken
over, and a waiter that never gets an answer stopped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Engine, insert

from feature_planner.database import Database
from feature_planner.errors import StoreUnavailableError, UpstreamError
from feature_planner.github import FiledIssue
from feature_planner.issue_links import IssueLinks
from feature_planner.tables import issue_links
from tests.test_agent_store import database_url, postgres_url  # noqa: F401 - fixtures

JOB = "0b3c8a52-5f6e-4d8c-9a1b-2c3d4e5f6a7b"
ISSUE = FiledIssue(7, "https://github.com/acme/shop/issues/7")


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:  # noqa: F811
    database = Database(database_url)
    await database.start()
    yield database
    await database.close()


class Filer:
    """A stand-in for GitHub: counts its calls; may wait, fail, or never return."""

    def __init__(self, delay_s: float = 0.0, fail: bool = False) -> None:
        self.calls = 0
        self.delay_s = delay_s
        self.fail = fail

    async def __call__(self) -> FiledIssue:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        if self.fail:
            raise UpstreamError("GitHub refused")
        return FiledIssue(ISSUE.number + self.calls - 1, ISSUE.url)


async def file_once(links: IssueLinks, filer: Filer, index: int = 0) -> tuple[FiledIssue, bool]:
    return await links.file_once(JOB, index, user_id="alice", repository="acme/shop", file=filer)


async def test_filed_once_then_answered_from_the_row(database: Database) -> None:
    links, filer = IssueLinks(database), Filer()
    assert await file_once(links, filer) == (ISSUE, True)
    assert await file_once(links, filer) == (ISSUE, False)
    assert await file_once(IssueLinks(database), filer) == (ISSUE, False)  # another replica
    assert filer.calls == 1
    assert (await file_once(links, filer, index=1))[1] is True  # each suggestion its own


async def test_a_waiter_gets_the_issue_the_first_request_files(database: Database) -> None:
    links, filer = IssueLinks(database), Filer(delay_s=0.3)
    answers = await asyncio.gather(file_once(links, filer), file_once(IssueLinks(database), filer))
    assert sorted(answers, key=lambda answer: answer[1]) == [(ISSUE, False), (ISSUE, True)]
    assert filer.calls == 1


async def test_a_failed_filing_releases_the_suggestion(database: Database) -> None:
    links = IssueLinks(database)
    failing = Filer(delay_s=0.2, fail=True)
    first = asyncio.ensure_future(file_once(links, failing))
    await asyncio.sleep(0.05)
    waiter = asyncio.ensure_future(file_once(links, Filer()))  # waits, then files itself
    with pytest.raises(UpstreamError):
        await first
    assert await waiter == (ISSUE, True)


def reserved_by_a_dead_process(engine: Engine, age_ms: int) -> None:
    """The row a process leaves when it dies between reserving and settling."""
    with engine.begin() as conn:
        conn.execute(
            insert(issue_links).values(
                job_id=JOB,
                suggestion_index=0,
                user_id="alice",
                repository="acme/shop",
                created_at_ms=time.time_ns() // 1_000_000 - age_ms,
            )
        )


async def test_a_dead_filers_reservation_is_taken_over(database: Database) -> None:
    await database.run(reserved_by_a_dead_process, 200)
    filer = Filer()
    started = time.monotonic()
    assert await file_once(IssueLinks(database, stale_after_s=0.5), filer) == (ISSUE, True)
    assert 0.2 < time.monotonic() - started < 3  # it waited for the row to turn stale
    assert filer.calls == 1


async def test_a_waiter_is_not_held_for_ever(database: Database) -> None:
    await database.run(reserved_by_a_dead_process, 0)
    waiter = IssueLinks(database, stale_after_s=3600, wait_s=0.3)
    with pytest.raises(StoreUnavailableError, match="still filing"):
        await asyncio.wait_for(file_once(waiter, Filer()), 5)

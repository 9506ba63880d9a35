"""The jobs' history, on SQLite files and on this machine's PostgreSQL (a schema per test)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from prometheus_client import generate_latest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from feature_planner.database import Database
from feature_planner.errors import StoreUnavailableError
from feature_planner.history import HistoryEntry, HistoryStore
from feature_planner.metrics import Metrics
from feature_planner.models import FeatureType, JobState, PriorityLevel, SuggestionRequest
from tests import test_agent_store
from tests.test_agent_store import TcpProxy, raw_engine

# The same databases as the agent store's tests: a SQLite file, a fresh PostgreSQL schema.
postgres_url = test_agent_store.postgres_url
database_url = test_agent_store.database_url

REQUEST = SuggestionRequest(
    page_or_component="Checkout",
    feature_type=FeatureType.ENHANCEMENT,
    priority_level=PriorityLevel.HIGH,
    additional_context="Mobile first",
)
DAY_MS = 86_400_000
# Recent: the prune that every start runs leaves these jobs alone.
NOW_MS = int(time.time() * 1000)


def entry(job_id: str, status: JobState = JobState.PENDING, **fields: Any) -> HistoryEntry:
    values: dict[str, Any] = {"user_id": "alice", "request": REQUEST, "created_at_ms": NOW_MS}
    return HistoryEntry(job_id=job_id, status=status, **(values | fields))


COMPLETED = entry(
    "job-done",
    JobState.COMPLETED,
    created_at_ms=NOW_MS,
    started_at_ms=NOW_MS + 100,
    finished_at_ms=NOW_MS + 9_000,
    provider="scripted",
    model="script-1",
    last_event_id=42,
    result={"suggestions": [{"title": "Saved carts"}], "retryCount": 0},
    suggestions_count=1,
    parent_job_id="job-parent",
)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.start()
    yield database
    await database.close()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
async def history(database: Database, metrics: Metrics) -> AsyncIterator[HistoryStore]:
    store = HistoryStore(database, retention_days=30, metrics=metrics, retry_initial_s=0.01)
    await store.start()
    yield store
    await store.close()


def metric(metrics: Metrics, line: str) -> float:
    """The value of the sample ``line`` names (``name{labels}``) in the /metrics text."""
    for sample in generate_latest(metrics.registry).decode().splitlines():
        name, _, value = sample.rpartition(" ")
        if name == line:
            return float(value)
    return 0.0


async def eventually(check: Any, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


# -- writes ----------------------------------------------------------------------------


async def test_a_recorded_job_reads_back_whole(history: HistoryStore, metrics: Metrics) -> None:
    history.record(COMPLETED)
    await history.flushed()
    assert await history.get(COMPLETED.job_id) == COMPLETED
    assert await history.get("no-such-job") is None
    assert metric(metrics, "feature_planner_history_writes_total") == 1


async def test_a_failed_job_keeps_its_error_and_no_result(history: HistoryStore) -> None:
    failed = entry(
        "job-failed",
        JobState.FAILED,
        error={"message": "The model is unreachable", "code": "PROVIDER_ERROR", "timestamp": 5},
    )
    history.record(failed)
    await history.flushed()
    stored = await history.get("job-failed")
    assert stored == failed
    assert stored is not None and stored.result is None


async def test_a_job_moves_forward_and_never_back(history: HistoryStore) -> None:
    running = replace(COMPLETED, status=JobState.IN_PROGRESS, result=None, finished_at_ms=None)
    history.record(replace(running, status=JobState.PENDING, started_at_ms=None))
    history.record(running)
    await history.flushed()
    assert await history.get(COMPLETED.job_id) == running

    history.record(COMPLETED)
    await history.flushed()
    history.record(running)  # late: written after the final row
    await history.flushed()
    assert await history.get(COMPLETED.job_id) == COMPLETED

    history.record(replace(running, status=JobState.PENDING))  # late, within one batch
    history.record(running)
    history.record(COMPLETED)
    history.record(running)
    await history.flushed()
    assert await history.get(COMPLETED.job_id) == COMPLETED


async def test_a_late_in_progress_does_not_undo_a_pending_to_running_order(
    history: HistoryStore,
) -> None:
    history.record(entry("job-1", JobState.IN_PROGRESS))
    await history.flushed()
    history.record(entry("job-1", JobState.PENDING))
    await history.flushed()
    stored = await history.get("job-1")
    assert stored is not None and stored.status is JobState.IN_PROGRESS


async def test_revoking_shares_survives_later_records(history: HistoryStore) -> None:
    history.record(COMPLETED)
    await history.revoke_shares(COMPLETED.job_id, 5_000)
    history.record(COMPLETED)  # knows nothing of the revocation
    await history.flushed()
    stored = await history.get(COMPLETED.job_id)
    assert stored is not None and stored.shares_revoked_at_ms == 5_000
    await history.revoke_shares(COMPLETED.job_id, 4_000)  # never moves back
    await history.revoke_shares(COMPLETED.job_id, 9_000)
    stored = await history.get(COMPLETED.job_id)
    assert stored is not None and stored.shares_revoked_at_ms == 9_000


async def test_close_writes_what_is_queued(database: Database) -> None:
    store = HistoryStore(database, retention_days=30)
    await store.start()
    store.record(COMPLETED)
    await store.close()
    store.record(COMPLETED)  # after close: dropped, not raised
    reader = HistoryStore(database, retention_days=30)
    assert await reader.get(COMPLETED.job_id) == COMPLETED


# -- pages -----------------------------------------------------------------------------


async def test_pages_walk_every_job_newest_first_once(history: HistoryStore) -> None:
    # Several jobs share a creation time: the job id orders them.
    mine = [entry(f"job-{n:02}", created_at_ms=NOW_MS + n // 3) for n in range(45)]
    for job in mine:
        history.record(job)
    history.record(entry("bobs-job", user_id="bob", created_at_ms=NOW_MS + 5))
    await history.flushed()

    seen: list[HistoryEntry] = []
    sizes = []
    cursor: str | None = None
    while True:
        page, cursor = await history.page("alice", limit=20, cursor=cursor, status=None)
        sizes.append(len(page))
        seen += page
        if cursor is None:
            break
    assert sizes == [20, 20, 5]
    expected = sorted(mine, key=lambda job: (job.created_at_ms, job.job_id), reverse=True)
    assert [job.job_id for job in seen] == [job.job_id for job in expected]

    exact, cursor = await history.page("alice", limit=45, cursor=None, status=None)
    assert len(exact) == 45 and cursor is None
    assert await history.page("carol", limit=20, cursor=None, status=None) == ([], None)


async def test_a_page_filters_by_status(history: HistoryStore) -> None:
    statuses = [JobState.COMPLETED, JobState.FAILED, JobState.IN_PROGRESS]
    for n in range(9):
        history.record(entry(f"job-{n}", statuses[n % 3], created_at_ms=NOW_MS + n))
    history.record(entry("bobs", JobState.FAILED, user_id="bob"))
    await history.flushed()
    page, cursor = await history.page("alice", limit=2, cursor=None, status=JobState.FAILED)
    assert [job.job_id for job in page] == ["job-7", "job-4"]
    assert cursor is not None
    page, cursor = await history.page("alice", limit=2, cursor=cursor, status=JobState.FAILED)
    assert [job.job_id for job in page] == ["job-1"]
    assert cursor is None


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor!",
        "a",
        "e30",  # {}
        "WzFd",  # [1]
        "W3RydWUsImpvYiJd",  # [true,"job"]
        "WzEsIiJd",  # [1,""]
        "WyIxIiwiam9iIl0",  # ["1","job"]
        "/w==",
    ],
)
async def test_a_malformed_cursor_is_a_value_error(history: HistoryStore, cursor: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        await history.page("alice", limit=20, cursor=cursor, status=None)


# -- delete and prune ------------------------------------------------------------------


async def test_a_user_deletes_only_their_own_jobs(history: HistoryStore) -> None:
    history.record(COMPLETED)
    assert await history.delete("bob", COMPLETED.job_id) is False
    assert await history.get(COMPLETED.job_id) == COMPLETED
    assert await history.delete("alice", COMPLETED.job_id) is True
    assert await history.get(COMPLETED.job_id) is None
    assert await history.delete("alice", COMPLETED.job_id) is False


async def test_prune_removes_old_finished_jobs_only(history: HistoryStore) -> None:
    now = NOW_MS + 1_000 * DAY_MS  # ahead of the clock: the prune at start keeps them all
    old = now - 31 * DAY_MS
    history.record(entry("old-done", JobState.COMPLETED, created_at_ms=old))
    history.record(entry("old-cancelled", JobState.CANCELLED, created_at_ms=old))
    history.record(entry("old-running", JobState.IN_PROGRESS, created_at_ms=old))
    history.record(entry("recent-done", JobState.COMPLETED, created_at_ms=now - 29 * DAY_MS))
    await history.flushed()
    assert await history.prune(now) == 2
    assert await history.get("old-done") is None
    assert await history.get("old-cancelled") is None
    assert await history.get("old-running") is not None
    assert await history.get("recent-done") is not None
    assert await history.prune(now) == 0


async def test_start_prunes_at_once(database: Database) -> None:
    writer = HistoryStore(database, retention_days=1)
    await writer.start()
    writer.record(entry("ancient", JobState.COMPLETED, created_at_ms=1_000))
    await writer.close()
    pruning = HistoryStore(database, retention_days=1)
    await pruning.start()
    try:
        await asyncio.wait_for(_gone(pruning, "ancient"), 10)
    finally:
        await pruning.close()


async def _gone(history: HistoryStore, job_id: str) -> None:
    while await history.get(job_id) is not None:
        await asyncio.sleep(0.02)


# -- failures --------------------------------------------------------------------------


async def test_a_failed_write_is_retried_until_the_database_is_back(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "feature_planner.history")
    metrics = Metrics()
    failures = "feature_planner_history_write_failures_total"
    if database_url.startswith("sqlite"):
        database = Database(database_url)
        await database.start()
        # Another writer holds the file's write lock: each attempt waits out the busy timeout.
        path = make_url(database_url).database
        assert path is not None
        locker = sqlite3.connect(path, isolation_level=None, timeout=0)
        locker.execute("BEGIN IMMEDIATE")
        outage = _Outage(end=locker.rollback, close=locker.close)
    else:
        url = make_url(database_url)
        assert url.host is not None
        proxy = TcpProxy(url.host, url.port or 5432).__enter__()
        database = Database(url.set(port=proxy.port).render_as_string(hide_password=False))
        await database.start()
        proxy.cut()  # the server is gone: every connection dropped, new ones refused
        outage = _Outage(end=proxy.restore, close=proxy.close)
    history = HistoryStore(
        database,
        retention_days=30,
        metrics=metrics,
        retry_attempts=1_000,
        retry_initial_s=0.01,
        retry_max_s=0.05,
    )
    await history.start()
    try:
        history.record(COMPLETED)
        await eventually(lambda: metric(metrics, failures) >= 1)
        if database_url.startswith("sqlite"):
            assert await history.get(COMPLETED.job_id) is None  # readers do not wait (WAL)
        else:
            with pytest.raises(StoreUnavailableError, match="job history"):
                await history.get(COMPLETED.job_id)
        outage.end()
        await asyncio.wait_for(history.flushed(), 15)
        assert await history.get(COMPLETED.job_id) == COMPLETED
    finally:
        await history.close()
        await database.close()
        outage.close()
    assert metric(metrics, "feature_planner_history_writes_total") == 1
    warnings = [r for r in caplog.records if r.name == "feature_planner.history"]
    assert warnings and all(r.levelno == logging.WARNING for r in warnings)
    assert any("writing failed (attempt 1 of 1000" in r.getMessage() for r in warnings)


async def test_a_write_that_keeps_failing_is_given_up(
    database: Database, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    history = HistoryStore(
        database, retention_days=30, metrics=metrics, retry_attempts=3, retry_initial_s=0.01
    )
    await history.start()
    engine = raw_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE job_history RENAME TO job_history_away"))
    try:
        history.record(COMPLETED)
        history.record(entry("job-2"))
        await asyncio.wait_for(history.flushed(), 10)
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE job_history_away RENAME TO job_history"))
        engine.dispose()
    assert metric(metrics, "feature_planner_history_write_failures_total") == 3
    assert metric(metrics, 'feature_planner_history_writes_lost_total{reason="given_up"}') == 2
    assert any(
        r.levelno == logging.ERROR and "gave up" in r.getMessage()
        for r in caplog.records
        if r.name == "feature_planner.history"
    )
    history.record(COMPLETED)  # the next write goes through
    await history.flushed()
    assert await history.get(COMPLETED.job_id) == COMPLETED
    await history.close()


class _Outage:
    def __init__(self, *, end: Any, close: Any) -> None:
        self.end, self.close = end, close

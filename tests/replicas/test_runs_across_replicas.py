"""Runs are kept, across replicas (DESIGN.md part two, "Runs are kept" and "Idempotent
create"): several replicas sharing one Redis and one SQL database — a SQLite file of the
test's own, or a fresh PostgreSQL schema — answer the same about every job, wherever it was
created, run or read."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from feature_planner.tables import job_history
from tests.conftest import ALICE, API, BOB, VALID_BODY
from tests.replicas.conftest import LONG_RUN, Received, Replica, ReplicaFactory, wait_until
from tests.sse_decoder import ServerSentEvent
from tests.test_agent_store import postgres_url, raw_engine  # noqa: F401 - a fixture

JOBS = "/api/feature-planner/jobs"
JSON = {"accept": "application/json"}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The one database every replica of the test is given: never the session's default."""
    if request.param == "sqlite":
        directory = tmp_path / "history"
        directory.mkdir()
        return f"sqlite:///{directory / 'feature-planner.db'}"
    return str(request.getfixturevalue("postgres_url"))


def status(replica: Replica, job_id: str, token: str = ALICE, **params: Any) -> httpx.Response:
    """The job's JSON status (``Accept: application/json``), ``?wait=`` as given."""
    wait = float(params.get("wait", 0))
    return replica.http.get(
        f"{API}/{job_id}",
        headers={**replica.auth(token), **JSON},
        params=params,
        timeout=10 + wait,
    )


def status_data(replica: Replica, job_id: str, token: str = ALICE, **params: Any) -> Any:
    response = status(replica, job_id, token, **params)
    assert response.status_code == 200, (replica.url, response.text)
    return response.json()["data"]


def listed(replica: Replica, token: str = ALICE, **params: Any) -> list[dict[str, Any]]:
    """The caller's whole list on ``replica``, page after page."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {"limit": 100, **params, **({"cursor": cursor} if cursor else {})}
        response = replica.http.get(JOBS, headers=replica.auth(token), params=query)
        assert response.status_code == 200, (replica.url, response.text)
        data = response.json()["data"]
        found += data["jobs"]
        cursor = data["nextCursor"]
        if cursor is None:
            return found


def listed_ids(replica: Replica, token: str = ALICE, **params: Any) -> list[str]:
    return [job["jobId"] for job in listed(replica, token, **params)]


def summary(replica: Replica, job_id: str, token: str = ALICE) -> dict[str, Any]:
    matches = [job for job in listed(replica, token) if job["jobId"] == job_id]
    assert len(matches) == 1, (replica.url, job_id, matches)
    return matches[0]


def create(
    replica: Replica, key: str, payload: dict[str, Any] | None = None, token: str = ALICE
) -> httpx.Response:
    headers = {**replica.auth(token), "idempotency-key": key}
    return replica.http.post(API, json=payload or VALID_BODY, headers=headers)


def history_row(database_url: str, job_id: str) -> dict[str, Any] | None:
    """The job's row as the database holds it (not as a replica answers)."""
    engine = raw_engine(database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(select(job_history).where(job_history.c.job_id == job_id)).first()
    finally:
        engine.dispose()
    return None if row is None else dict(row._mapping)


def is_delta(event: ServerSentEvent) -> bool:
    return event.event == "delta"


def assert_completed_everywhere(
    trio: list[Replica], job_id: str, streamed: Received
) -> list[dict[str, Any]]:
    """Every replica lists the job completed and reads it as the stream delivered it."""
    complete = streamed.last
    assert complete.event == "complete", complete
    result = complete.json()
    reads = []
    for replica in trio:
        job = summary(replica, job_id)
        assert job["status"] == "completed", (replica.url, job)
        assert job["suggestionsCount"] == len(result["suggestions"]) >= 1, (replica.url, job)
        assert job["finishedAt"] >= job["createdAt"], job
        assert job["input"] == VALID_BODY
        assert job["streamUrl"] == f"{API}/{job_id}"
        data = status_data(replica, job_id)
        assert data["jobId"] == job_id
        assert data["status"] == "completed", (replica.url, data)
        assert data["result"] == result, replica.url
        assert str(data["lastEventId"]) == complete.id, (replica.url, data["lastEventId"])
        assert data["input"] == VALID_BODY
        assert "error" not in data
        assert data["finishedAt"] >= data["startedAt"] >= data["createdAt"], data
        reads.append(data)
    assert all(read == reads[0] for read in reads[1:]), reads
    return reads


# -- 1. created on A, streamed on B, read everywhere --------------------------------------------


def test_a_job_run_elsewhere_is_listed_and_read_alike_on_every_replica(
    redis_url: str, database_url: str, replicas: ReplicaFactory, processes: ReplicaFactory
) -> None:
    """A and B in this process, C a process of its own: all share Redis and the database."""
    a = replicas(redis_url, database_url=database_url)
    b = replicas(redis_url, database_url=database_url)
    c = processes(redis_url, database_url=database_url)
    job_id = a.create_job()

    # Before it runs, every replica already lists it, pending.
    for replica in (a, b, c):
        wait_until(lambda: job_id in listed_ids(replica), timeout=3)  # noqa: B023
        assert summary(replica, job_id)["status"] == "pending"

    streamed = b.stream(job_id)
    assert streamed.status == 200
    assert (a.executions, b.executions) == (0, 1)
    assert_completed_everywhere([a, b, c], job_id, streamed)
    # The final event's id, wherever the log is replayed.
    assert a.stream(job_id, last_event_id=0).last.id == streamed.last.id


# -- 2. read on another replica after the event log expired -------------------------------------


def test_a_completed_job_is_read_on_another_replica_after_its_event_log_expired(
    redis_url: str, database_url: str, replicas: ReplicaFactory
) -> None:
    a, b, c = (replicas(redis_url, database_url=database_url, completed_ttl_s=1) for _ in range(3))
    job_id = a.create_job()
    streamed = b.stream(job_id)
    assert streamed.last.event == "complete"

    # The event log is gone from Redis: a resume finds nothing.
    wait_until(lambda: c.stream(job_id, last_event_id=1).status == 404, timeout=5)
    reads = assert_completed_everywhere([c, a, b], job_id, streamed)
    assert reads[0]["provider"] == streamed.last.json()["provider"] == "scripted"

    # A wait on a finished job answers at once.
    started = time.monotonic()
    assert status_data(a, job_id, wait=10) == reads[0]
    assert time.monotonic() - started < 3


def test_fifty_creates_with_one_key_across_replicas_make_one_job(
    redis_url: str, database_url: str, replicas: ReplicaFactory
) -> None:
    # The default create limit (10 a minute): replays must not count against it.
    trio = [replicas(redis_url, database_url=database_url) for _ in range(3)]
    barrier = threading.Barrier(50)

    def one(index: int) -> httpx.Response:
        barrier.wait(timeout=10)
        return create(trio[index % 3], "checkout-burst")

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(one, range(50)))

    assert [answer.status_code for answer in answers] == [201] * 50, [
        (answer.status_code, answer.text[:200]) for answer in answers if answer.status_code != 201
    ]
    job_ids = {answer.json()["data"]["jobId"] for answer in answers}
    assert len(job_ids) == 1, job_ids
    (job_id,) = job_ids
    first = [answer for answer in answers if answer.headers.get("idempotent-replayed") != "true"]
    assert len(first) == 1, [answer.headers.get("idempotent-replayed") for answer in first]
    assert "idempotent-replayed" not in first[0].headers

    for replica in trio:
        wait_until(lambda: listed_ids(replica) != [], timeout=3)  # noqa: B023
        assert [job["jobId"] for job in listed(replica)] == [job_id], replica.url

    # Another body with the same key, on another replica than most: refused.
    reused = create(trio[1], "checkout-burst", {**VALID_BODY, "pageOrComponent": "Cart"})
    assert reused.status_code == 422, reused.text
    assert reused.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    reused = create(trio[2], "checkout-burst", {**VALID_BODY, "priorityLevel": "low"})
    assert reused.status_code == 422, reused.text
    assert reused.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"

    # Keys are per user: bob's same key is a job of his own.
    bobs = create(trio[2], "checkout-burst", token=BOB)
    assert bobs.status_code == 201
    assert bobs.json()["data"]["jobId"] != job_id
    assert "idempotent-replayed" not in bobs.headers

    # Alice still has one job; the replays cost her nothing of the limit.
    for replica in trio:
        assert [job["jobId"] for job in listed(replica)] == [job_id], replica.url
    assert [trio[n % 3].create().status_code for n in range(9)] == [201] * 9


# -- 4. the runner killed mid-run ---------------------------------------------------------------


def test_a_run_whose_runner_was_killed_reads_failed_worker_lost_elsewhere(
    redis_url: str, database_url: str, replicas: ReplicaFactory, processes: ReplicaFactory
) -> None:
    settings = {**LONG_RUN, "runner_lease_s": 1, "database_url": database_url}
    runner = processes(redis_url, **settings)
    b, c = replicas(redis_url, **settings), replicas(redis_url, **settings)
    job_id = runner.create_job()
    on_runner = runner.watch(job_id)  # the runner claims and runs it
    on_runner.wait_for(is_delta)
    on_b = b.watch(job_id)
    on_b.wait_for(lambda e: is_delta(e) and int(e.id or 0) >= 5)
    assert status_data(c, job_id)["status"] == "in_progress"
    assert summary(c, job_id)["status"] == "in_progress"

    runner.kill()
    assert on_runner.join().broken is not None
    seen = on_b.join(timeout=10)
    assert seen.last.event == "error"
    error = seen.last.json()
    assert error["code"] == "WORKER_LOST"

    for replica in (c, b):
        data = status_data(replica, job_id)
        assert data["status"] == "failed", (replica.url, data)
        assert data["error"]["code"] == "WORKER_LOST"
        assert data["error"] == error, replica.url
        assert str(data["lastEventId"]) == seen.last.id, (replica.url, data["lastEventId"])
        assert "result" not in data
        assert data["finishedAt"] >= data["createdAt"]
        job = summary(replica, job_id)
        assert job["status"] == "failed", (replica.url, job)
        assert "suggestionsCount" not in job
    assert [job["jobId"] for job in listed(b, status="failed")] == [job_id]
    assert listed(c, status="in_progress") == []
    assert c.executions == b.executions == 0

    # The history row itself says so (written behind: poll), not only the live store.
    def row_failed() -> bool:
        row = history_row(database_url, job_id)
        return row is not None and row["status"] == "failed"

    wait_until(row_failed, timeout=5)
    row = history_row(database_url, job_id)
    assert row is not None
    assert row["error"]["code"] == "WORKER_LOST"
    assert row["last_event_id"] == int(seen.last.id or 0)


# -- 5. nothing of another user's -----------------------------------------------------------


def test_nothing_another_user_owns_is_listed_or_read_on_any_replica(
    redis_url: str, database_url: str, replicas: ReplicaFactory
) -> None:
    trio = [replicas(redis_url, database_url=database_url, completed_ttl_s=1) for _ in range(3)]
    a, b, c = trio
    expired = a.create_job()  # completed, its event log then gone: only the history knows it
    b.stream(expired)
    done = b.create_job()  # completed, its event log still kept
    c.stream(done)
    pending = c.create_job()
    failed = a.create_job()
    assert a.delete(failed).status_code == 202  # cancelled
    alices = {expired, done, pending, failed}
    bobs = b.create_job(token=BOB)
    wait_until(lambda: a.stream(expired, last_event_id=1).status == 404, timeout=5)

    for replica in trio:
        wait_until(lambda: len(listed_ids(replica)) == 4, timeout=3)  # noqa: B023
        assert {job["jobId"] for job in listed(replica)} == alices, replica.url
        assert [job["jobId"] for job in listed(replica, BOB)] == [bobs], replica.url
        for only in ("pending", "in_progress", "completed", "failed", "cancelled"):
            assert not {j["jobId"] for j in listed(replica, BOB, status=only)} & alices
        for job_id in sorted(alices):
            refused = status(replica, job_id, token=BOB)
            assert refused.status_code == 403, (replica.url, job_id, refused.text)
            assert refused.json()["success"] is False
            assert status(replica, job_id, token=BOB, wait=1).status_code == 403
        assert status(replica, bobs, token=ALICE).status_code == 403
        assert status_data(replica, bobs, token=BOB)["status"] == "pending"

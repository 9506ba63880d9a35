"""Several replicas sharing one real redis-server: the contract holds across processes,
and faults (a dead replica, a stopped Redis) have their defined outcomes."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from redis import Redis

from feature_planner.jobs.redis_schema import events_key, job_key
from tests.conftest import BOB
from tests.redis_server import RedisServer
from tests.replicas.conftest import (
    LONG_RUN,
    Received,
    Replica,
    ReplicaFactory,
    expected_text,
    wait_until,
)
from tests.sse_decoder import ServerSentEvent


def is_delta(event: ServerSentEvent) -> bool:
    return event.event == "delta"


def assert_whole_run(events: list[ServerSentEvent], chunks: int) -> None:
    """Events 1..N exactly once, the scripted text in the deltas, the suggestions one by one
    (``complete`` repeats them), ``complete`` last."""
    ids = [int(event.id or "-1") for event in events]
    assert ids == list(range(1, len(events) + 1)), ids
    names = [event.event for event in events[:-1]]
    assert set(names) <= {"delta", "suggestion", "progress"}, names
    assert events[-1].event == "complete", events[-1]
    sent = [event.json() for event in events if event.event == "suggestion"]
    assert [item["index"] for item in sent] == list(range(len(sent)))
    assert [item["suggestion"] for item in sent] == events[-1].json()["suggestions"]
    text = "".join(event.json()["text"] for event in events if event.event == "delta")
    assert text == expected_text(chunks)
    lengths = [event.json()["totalLength"] for event in events if event.event == "delta"]
    assert lengths[-1] == len(text)


def assert_prefix(events: list[ServerSentEvent], chunks: int) -> None:
    """Events 1..N exactly once so far, whose text starts the scripted text."""
    ids = [int(event.id or "-1") for event in events]
    assert ids == list(range(1, len(events) + 1)), ids
    text = "".join(event.json()["text"] for event in events if event.event == "delta")
    assert expected_text(chunks).startswith(text)


def keys_without_ttl(url: str) -> list[bytes]:
    with Redis.from_url(url) as client:
        return [key for key in client.scan_iter("*") if client.pttl(key) == -1]


def pttl(url: str, key: str) -> int:
    with Redis.from_url(url) as client:
        return int(client.pttl(key))


def total_executions(replicas: Iterable[Replica]) -> int:
    return sum(replica.executions for replica in replicas)


# -- 1. create on one, stream from another, resume on a third -------------------------


def test_create_on_a_stream_from_b_resume_on_c(redis_url: str, replicas: ReplicaFactory) -> None:
    a, b, c = (replicas(redis_url) for _ in range(3))
    job_id = a.create_job()

    first = b.stream(job_id, stop_after=lambda e: is_delta(e) and int(e.id or 0) >= 5)
    assert first.status == 200
    assert first.events[0].event == "connected"
    assert first.events[0].id == "0"
    dropped_at = first.last_id

    rest = c.stream(job_id, last_event_id=dropped_at)
    assert rest.status == 200
    assert rest.events[0].event == "connected"
    assert rest.events[0].id == str(dropped_at)
    assert rest.events[0].json()["resumedFrom"] == dropped_at

    assert_whole_run(first.job_events + rest.job_events, chunks=30)
    assert (a.executions, b.executions, c.executions) == (0, 1, 0)

    # An id always names the same event, wherever it is read.
    again = a.stream(job_id, last_event_id=0)
    assert [(e.id, e.event, e.data) for e in again.job_events] == [
        (e.id, e.event, e.data) for e in first.job_events + rest.job_events
    ]
    final = rest.last_id
    assert b.stream(job_id, last_event_id=final).status == 204
    assert c.stream(job_id).status == 410


def test_stream_survives_the_loss_of_the_replica_serving_it(
    redis_url: str, replicas: ReplicaFactory, processes: ReplicaFactory
) -> None:
    """The run is on A; the client streams through B (a process), B dies, the client
    resumes on C and receives every event exactly once."""
    a, c = replicas(redis_url, **LONG_RUN), replicas(redis_url, **LONG_RUN)
    b = processes(redis_url, **LONG_RUN)
    job_id = a.create_job()
    claimed = a.stream(job_id, stop_after=is_delta)  # A claims and runs it
    assert claimed.status == 200

    watch = b.watch(job_id, last_event_id=claimed.last_id)
    watch.wait_for(lambda e: int(e.id or 0) >= claimed.last_id + 10)
    b.kill()
    through_b = watch.join()
    assert through_b.broken is not None
    assert through_b.last.event == "delta"  # cut mid-run, no final event

    rest = c.stream(job_id, last_event_id=through_b.last_id)
    assert rest.status == 200
    events = claimed.job_events + through_b.job_events + rest.job_events
    assert_whole_run(events, chunks=200)
    assert (a.executions, c.executions) == (1, 0)


# -- 2. fifty streams open one pending job at once ------------------------------------


def test_fifty_streams_across_three_replicas_run_the_job_once(
    redis_url: str, replicas: ReplicaFactory
) -> None:
    # A 2 s run: every stream opens while it runs (a finished job would answer 410).
    settings = {"max_streams_per_user": 60, "scripted_chunks": 40, "scripted_interval_ms": 50}
    trio = [replicas(redis_url, **settings) for _ in range(3)]
    job_id = trio[0].create_job()
    barrier = threading.Barrier(50)

    def open_one(index: int) -> Received:
        barrier.wait(timeout=10)
        return trio[index % 3].stream(job_id)

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(open_one, range(50)))

    assert [result.status for result in results] == [200] * 50, [
        (result.status, result.body[:200]) for result in results if result.status != 200
    ]
    assert total_executions(trio) == 1
    reference = [(e.id, e.event, e.data) for e in results[0].job_events]
    assert_whole_run(results[0].job_events, chunks=40)
    for result in results[1:]:
        assert [(e.id, e.event, e.data) for e in result.job_events] == reference


# -- 3. kill -9 of the replica that runs the job --------------------------------------


def test_kill_9_of_the_runner_ends_other_streams_with_worker_lost(
    redis_url: str, processes: ReplicaFactory
) -> None:
    settings = {**LONG_RUN, "runner_lease_s": 1}
    a, b = processes(redis_url, **settings), processes(redis_url, **settings)
    job_id = a.create_job()
    on_a = a.watch(job_id)  # A claims and runs it
    on_a.wait_for(is_delta)
    on_b = b.watch(job_id)
    on_b.wait_for(lambda e: is_delta(e) and int(e.id or 0) >= 5)
    middle = 3

    killed_at = time.monotonic()
    a.kill()
    seen_on_b = on_b.join(timeout=10)
    assert on_a.join().broken is not None
    assert seen_on_b.broken is None

    assert seen_on_b.last.event == "error"
    assert seen_on_b.last.json()["code"] == "WORKER_LOST"
    assert seen_on_b.ended_at - killed_at < 1 + 2.5
    events = seen_on_b.job_events
    assert_prefix(events[:-1], chunks=200)
    assert int(events[-1].id or 0) == len(events)  # the error is the next job event

    # A client that resumes on B after the loss gets the rest, the error included.
    resumed = b.stream(job_id, last_event_id=middle)
    assert resumed.status == 200
    assert [(e.id, e.event, e.data) for e in resumed.job_events] == [
        (e.id, e.event, e.data) for e in events[middle:]
    ]
    assert b.stream(job_id, last_event_id=len(events)).status == 204


# -- 4. Redis stopped and restarted ---------------------------------------------------


def test_create_while_redis_is_down_is_503_at_once_and_recovers(
    own_redis: RedisServer, replicas: ReplicaFactory
) -> None:
    a = replicas(own_redis.url)
    job_id = a.create_job()
    own_redis.stop()

    started = time.monotonic()
    response = a.create()
    assert time.monotonic() - started < 2
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "STORE_UNAVAILABLE"

    started = time.monotonic()
    refused = a.stream(job_id)
    assert time.monotonic() - started < 2
    assert refused.status == 503
    assert refused.error()["code"] == "STORE_UNAVAILABLE"

    started = time.monotonic()
    ready = a.http.get("/readyz")
    assert time.monotonic() - started < 2
    assert ready.status_code == 503

    own_redis.start()  # same port, empty
    wait_until(lambda: a.http.get("/readyz").status_code == 200, timeout=3)
    wait_until(lambda: a.create().status_code == 201, timeout=3)
    new_job = a.create_job()
    result = a.stream(new_job)
    assert_whole_run(result.job_events, chunks=30)


def test_create_against_a_frozen_redis_is_503_at_once(
    own_redis: RedisServer, replicas: ReplicaFactory
) -> None:
    """A Redis that accepts connections but never answers (SIGSTOP) must not stall a
    request for redis-py's default retries."""
    a = replicas(own_redis.url)
    a.create_job()  # pooled connections exist
    assert own_redis.process is not None
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        response = a.create()
        elapsed = time.monotonic() - started
    finally:
        os.kill(own_redis.process.pid, signal.SIGCONT)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "STORE_UNAVAILABLE"
    assert elapsed < 2
    wait_until(lambda: a.create().status_code == 201, timeout=3)


def test_open_streams_end_with_store_unavailable_after_the_grace(
    own_redis: RedisServer, replicas: ReplicaFactory
) -> None:
    settings = {**LONG_RUN, "store_outage_grace_s": 1}
    a, b = replicas(own_redis.url, **settings), replicas(own_redis.url, **settings)
    job_id = a.create_job()
    on_a = a.watch(job_id)  # the runner's own replica
    on_a.wait_for(is_delta)
    on_b = b.watch(job_id)
    on_b.wait_for(is_delta)

    stopped_at = time.monotonic()
    own_redis.stop()
    for result in (on_a.join(timeout=8), on_b.join(timeout=8)):
        assert result.last.event == "error"
        assert result.last.json()["code"] == "STORE_UNAVAILABLE"
        assert result.ended_at - stopped_at < 1 + 3
        assert_prefix(result.job_events[:-1], chunks=200)
        # Not a job event: it carries the id of the last event received.
        assert result.last.id == (result.job_events[-2].id if len(result.job_events) > 1 else "0")

    own_redis.start()
    wait_until(lambda: a.create().status_code == 201, timeout=3)
    wait_until(lambda: b.create().status_code == 201, timeout=3)


def test_redis_frozen_briefly_during_a_stream_carries_on(
    own_redis: RedisServer, replicas: ReplicaFactory
) -> None:
    """Redis keeps its data but stops answering for 1 s (SIGSTOP/SIGCONT), inside the
    outage grace: the stream carries on and the run completes, every event once."""
    settings = {**LONG_RUN, "store_outage_grace_s": 5, "runner_lease_s": 3}
    a, b = replicas(own_redis.url, **settings), replicas(own_redis.url, **settings)
    job_id = a.create_job()
    on_a = a.watch(job_id)
    on_a.wait_for(is_delta)
    on_b = b.watch(job_id)
    on_b.wait_for(is_delta)
    assert own_redis.process is not None
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    time.sleep(1)
    os.kill(own_redis.process.pid, signal.SIGCONT)
    for result in (on_a.join(timeout=20), on_b.join(timeout=20)):
        assert_whole_run(result.job_events, chunks=200)
    assert (a.executions, b.executions) == (1, 0)


def test_redis_restarted_within_the_grace_during_a_stream(
    own_redis: RedisServer, replicas: ReplicaFactory
) -> None:
    """A restarted redis-server without persistence is empty: the job is gone. Streams on
    the runner's replica and on another one end with STORE_UNAVAILABLE (the keeper finds
    the record gone: ``_end_lost_jobs`` → ``StreamReader.end``); nothing hangs, nothing leaks."""
    settings = {**LONG_RUN, "store_outage_grace_s": 5, "runner_lease_s": 1}
    a, b = replicas(own_redis.url, **settings), replicas(own_redis.url, **settings)
    job_id = a.create_job()
    on_a = a.watch(job_id)
    on_a.wait_for(is_delta)
    on_b = b.watch(job_id)
    on_b.wait_for(is_delta)

    own_redis.stop()
    time.sleep(0.5)
    own_redis.start()
    restarted_at = time.monotonic()
    for result in (on_a.join(timeout=10), on_b.join(timeout=10)):
        assert result.last.event == "error"
        assert result.last.json()["code"] == "STORE_UNAVAILABLE"
        assert result.ended_at - restarted_at < 4
        assert_prefix(result.job_events[:-1], chunks=200)
    assert a.stream(job_id, last_event_id=1).status == 404
    assert b.stream(job_id).status == 404
    wait_until(lambda: a.service is not None and not a.service._runs, timeout=3)
    time.sleep(1.5)  # the run has stopped; its writer had time to write what it still had
    assert keys_without_ttl(own_redis.url) == []


def test_pending_job_after_redis_was_killed_is_404(
    own_redis: RedisServer, replicas: ReplicaFactory
) -> None:
    a, b = replicas(own_redis.url), replicas(own_redis.url)
    job_id = a.create_job()
    own_redis.kill()
    own_redis.start()
    wait_until(lambda: b.http.get("/readyz").status_code == 200, timeout=3)

    for replica in (a, b):
        result = replica.stream(job_id)
        assert result.status == 404, result.body
        assert result.error()["code"] == "JOB_NOT_FOUND"
        assert replica.delete(job_id).status_code == 404


# -- 5. TTLs, measured on the real keys -----------------------------------------------


def test_pending_job_key_ttl(redis_url: str, replicas: ReplicaFactory) -> None:
    a = replicas(redis_url, pending_ttl_s=600)
    job_id = a.create_job()
    assert 590_000 < pttl(redis_url, job_key(job_id)) <= 600_000


def test_completed_job_keys_ttl(redis_url: str, replicas: ReplicaFactory) -> None:
    a = replicas(redis_url, completed_ttl_s=60)
    job_id = a.create_job()
    assert a.stream(job_id).last.event == "complete"
    for key in (job_key(job_id), events_key(job_id)):
        assert 50_000 < pttl(redis_url, key) <= 60_000, key
    assert keys_without_ttl(redis_url) == []


def test_failed_job_keys_ttl(redis_url: str, replicas: ReplicaFactory) -> None:
    a = replicas(redis_url, scripted_fail_at=1, finished_ttl_s=3600)
    job_id = a.create_job()
    result = a.stream(job_id)
    assert result.last.event == "error"
    assert result.last.json()["code"] == "PROVIDER_ERROR"
    for key in (job_key(job_id), events_key(job_id)):
        assert 3_590_000 < pttl(redis_url, key) <= 3_600_000, key
    assert keys_without_ttl(redis_url) == []


# -- 6. rate limits across replicas ---------------------------------------------------


def test_create_limit_is_shared_by_the_replicas(redis_url: str, replicas: ReplicaFactory) -> None:
    trio = [replicas(redis_url, create_limit=3) for _ in range(3)]
    for replica in trio:
        replica.create_job()
    for replica in trio:
        refused = replica.create()
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "RATE_LIMITED"
        assert 0 < int(refused.headers["retry-after"]) <= 60
    assert trio[2].create(token=BOB).status_code == 201
    assert keys_without_ttl(redis_url) == []


def test_stream_limit_is_shared_by_the_replicas(redis_url: str, replicas: ReplicaFactory) -> None:
    a, b, c = (replicas(redis_url, max_streams_per_user=2, **LONG_RUN) for _ in range(3))
    job_id = a.create_job()
    on_a = a.watch(job_id)
    on_a.wait_for(is_delta)
    on_b = b.watch(job_id)
    on_b.wait_for(is_delta)

    refused = c.stream(job_id)
    assert refused.status == 429
    assert refused.error()["code"] == "TOO_MANY_STREAMS"
    assert c.stream(job_id, token=BOB).status == 403  # bob's own slots, alice's job

    on_b.drop()
    on_b.join()
    elapsed = wait_until(
        lambda: c.stream(job_id, stop_after=lambda e: True).status == 200, timeout=1.5
    )
    assert elapsed < 1.5
    on_a.drop()
    on_a.join()


def test_a_dead_replica_frees_its_stream_slots(
    redis_url: str, replicas: ReplicaFactory, processes: ReplicaFactory
) -> None:
    settings = {**LONG_RUN, "max_streams_per_user": 2, "stream_lease_s": 1}
    a = replicas(redis_url, **settings)
    dying = processes(redis_url, **settings)
    job_id = a.create_job()
    a.stream(job_id, stop_after=is_delta)  # the run is on A, which stays up
    watches = [dying.watch(job_id) for _ in range(2)]
    for watch in watches:
        watch.wait_for(is_delta)
    assert a.stream(job_id).status == 429

    killed_at = time.monotonic()
    dying.kill()
    for watch in watches:
        assert watch.join().broken is not None
    wait_until(lambda: a.stream(job_id, stop_after=lambda e: True).status == 200, timeout=3)
    assert time.monotonic() - killed_at < 1 + 1


# -- 7. DELETE on another replica -----------------------------------------------------


def test_delete_on_b_cancels_the_run_on_a(redis_url: str, replicas: ReplicaFactory) -> None:
    a, b, c = (replicas(redis_url, **LONG_RUN) for _ in range(3))
    job_id = a.create_job()
    on_a = a.watch(job_id)
    on_a.wait_for(is_delta)
    on_c = c.watch(job_id)
    on_c.wait_for(is_delta)

    started = time.monotonic()
    response = b.delete(job_id)
    assert response.status_code == 202, response.text
    for result in (on_a.join(timeout=5), on_c.join(timeout=5)):
        assert result.last.event == "error"
        assert result.last.json()["code"] == "CANCELLED"
        assert result.ended_at - started < 2
        assert_prefix(result.job_events[:-1], chunks=200)
    assert on_a.join().ids == on_c.join().ids
    assert b.delete(job_id).status_code == 410
    assert total_executions([a, b, c]) == 1


def test_pending_job_cancelled_on_another_replica_never_runs(
    redis_url: str, replicas: ReplicaFactory
) -> None:
    a, b, c = (replicas(redis_url) for _ in range(3))
    job_id = a.create_job()
    assert b.delete(job_id).status_code == 202
    assert c.stream(job_id).status == 410
    resumed = c.stream(job_id, last_event_id=0)
    assert [e.event for e in resumed.job_events] == ["error"]
    assert resumed.last.json()["code"] == "CANCELLED"
    assert a.stream(job_id, last_event_id=1).status == 204
    time.sleep(0.3)
    assert total_executions([a, b, c]) == 0


# -- 8. orphan cancel across replicas -------------------------------------------------


def test_orphan_cancel_counts_watchers_on_every_replica(
    redis_url: str, replicas: ReplicaFactory
) -> None:
    settings = {"scripted_chunks": 240, "scripted_interval_ms": 25, "orphan_grace_s": 1}
    a, b, c = (replicas(redis_url, **settings) for _ in range(3))
    job_id = a.create_job()
    claimed = a.stream(job_id, stop_after=is_delta)  # runs on A; A has no subscriber now
    assert a.executions == 1

    on_b = b.watch(job_id)
    on_b.wait_for(is_delta)
    time.sleep(2.5)  # well past the grace: B's watcher keeps it alive
    assert not any(e.event == "error" for e in on_b.events)
    on_b.drop()
    left = on_b.join()
    assert left.last.event == "delta"

    time.sleep(2.5)  # the grace, a tick, and more
    rest = c.stream(job_id, last_event_id=left.last_id)
    assert rest.status == 200
    assert rest.last.event == "error"
    assert rest.last.json()["code"] == "CANCELLED"
    events = left.job_events + rest.job_events
    assert_prefix(events[:-1], chunks=240)
    assert len(expected_text(240)) > len("".join(e.json()["text"] for e in events[:-1]))
    assert claimed.job_events == events[: len(claimed.job_events)]


# -- 9. serve --workers 2 -------------------------------------------------------------


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def test_serve_with_two_workers_on_one_port(redis_url: str, processes: ReplicaFactory) -> None:
    server = processes(
        redis_url,
        workers=2,
        scripted_chunks=20,
        scripted_interval_ms=10,
        max_streams_per_user=10,
    )
    assert server.process is not None
    pid = server.process.pid
    wait_until(lambda: len(_children(pid)) >= 2, timeout=10)

    def run_one(_: int) -> Received:
        job_id = server.create_job()
        return server.stream(job_id)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run_one, range(8)))
    for result in results:
        assert result.status == 200
        assert_whole_run(result.job_events, chunks=20)


def test_unknown_job_on_every_replica_is_404(redis_url: str, replicas: ReplicaFactory) -> None:
    a, b = replicas(redis_url), replicas(redis_url)
    job_id = a.create_job()
    assert b.stream(str(uuid.uuid4())).status == 404
    assert b.stream(job_id, token=BOB).status == 403

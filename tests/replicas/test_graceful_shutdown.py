"""SIGTERM mid-stream: the process stops taking streams, hands its open ones to another
replica (the client resumes there with Last-Event-ID), lets its runs finish within the
drain period, and exits."""

from __future__ import annotations

import signal
import subprocess
import time

import httpx

from tests.replicas.conftest import (
    LONG_RUN,
    Received,
    Replica,
    ReplicaFactory,
    expected_text,
)
from tests.sse_decoder import ServerSentEvent

SECRET = "shared-secret-key-of-the-replicas-0123456789"


def is_delta_after(event_id: int) -> object:
    def check(event: ServerSentEvent) -> bool:
        return event.event == "delta" and int(event.id or 0) >= event_id

    return check


def names(received: Received) -> list[str]:
    return [event.event for event in received.events]


def exited_gracefully(replica: Replica, timeout: float) -> bool:
    """uvicorn re-raises the signal once it has shut down, so a graceful end is 'killed by
    SIGTERM' (as the supervisor asked), or 0; not a traceback's 1, not SIGKILL's -9."""
    assert replica.process is not None
    try:
        code = replica.process.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the process did not exit within {timeout} s") from None
    return code in (0, -signal.SIGTERM)


def test_sigterm_hands_the_stream_to_another_replica_with_nothing_lost_or_repeated(
    processes: ReplicaFactory, redis_url: str
) -> None:
    options = {**LONG_RUN, "secret_key": SECRET, "drain_s": 20}
    first, second = processes(redis_url, **options), processes(redis_url, **options)
    job_id = first.create_job()
    watch = first.watch(job_id)
    watch.wait_for(is_delta_after(10))
    assert first.process is not None
    first.process.send_signal(signal.SIGTERM)

    on_first = watch.join(timeout=10)  # the stream ends cleanly, soon, before the job does
    assert on_first.broken is None
    assert names(on_first)[-1] == "delta", "handed off: no final event on the first replica"

    resumed = second.stream(job_id, last_event_id=on_first.last_id)
    assert names(resumed)[0] == "connected" and names(resumed)[-1] == "complete"
    ids = on_first.ids + resumed.ids
    assert ids == list(range(1, ids[-1] + 1)), "every event once, in order"
    assert on_first.text + resumed.text == expected_text(LONG_RUN["scripted_chunks"])
    # The run finished on the first replica, which then exited.
    assert exited_gracefully(first, timeout=20)


def test_a_draining_replica_refuses_new_streams_and_creates_go_elsewhere(
    processes: ReplicaFactory, redis_url: str
) -> None:
    options = {**LONG_RUN, "secret_key": SECRET, "drain_s": 20}
    first, second = processes(redis_url, **options), processes(redis_url, **options)
    running = first.create_job()
    watch = first.watch(running)
    watch.wait_for(is_delta_after(2))
    waiting = second.create_job()
    assert first.process is not None
    first.process.send_signal(signal.SIGTERM)
    watch.join(timeout=10)
    # The listening socket is closed: a new connection is refused outright.
    refused = False
    deadline = time.monotonic() + 5
    while not refused and time.monotonic() < deadline:
        try:
            httpx.get(f"{first.url}/healthz", timeout=1)
            time.sleep(0.05)
        except httpx.ConnectError:
            refused = True
    assert refused
    assert names(second.stream(waiting))[-1] == "complete"
    assert names(second.stream(running, last_event_id=0))[-1] == "complete"
    assert exited_gracefully(first, timeout=20)


def test_a_run_longer_than_the_drain_period_ends_with_worker_lost(
    processes: ReplicaFactory, redis_url: str
) -> None:
    options = {"scripted_chunks": 400, "scripted_interval_ms": 50, "secret_key": SECRET}
    first = processes(redis_url, **options, drain_s=1)
    second = processes(redis_url, **options)
    job_id = first.create_job()
    watch = first.watch(job_id)
    watch.wait_for(is_delta_after(3))
    assert first.process is not None
    first.process.send_signal(signal.SIGTERM)
    on_first = watch.join(timeout=10)
    resumed = second.stream(job_id, last_event_id=on_first.last_id)
    assert names(resumed)[-1] == "error"
    assert resumed.last.json()["code"] == "WORKER_LOST"
    assert exited_gracefully(first, timeout=10)


def test_in_memory_the_stream_finishes_on_the_stopping_process(
    processes: ReplicaFactory,
) -> None:
    """No other process could serve it: the job finishes where it runs, then the exit."""
    replica = processes(None, **LONG_RUN, drain_s=20)
    job_id = replica.create_job()
    watch = replica.watch(job_id)
    watch.wait_for(is_delta_after(5))
    assert replica.process is not None
    replica.process.send_signal(signal.SIGTERM)
    received = watch.join(timeout=20)
    assert names(received)[-1] == "complete"
    assert received.text == expected_text(LONG_RUN["scripted_chunks"])
    assert exited_gracefully(replica, timeout=10)

"""Phase 2 against a real server: refusals, framing, events, resume, lifecycle, limits."""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from feature_planner.agent.providers import scripted_text
from tests.conftest import ALICE, API, BOB, LiveServer, ServerFactory, Stream


def scripted(server: LiveServer) -> str:
    return "".join(
        scripted_text(server.settings.scripted_chunks, server.settings.scripted_chunk_size)
    )


def wait_until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


# -- refusals before the stream -------------------------------------------------------


def test_stream_without_credentials_is_401(server: LiveServer) -> None:
    job_id = server.create_job()
    response = server.http.get(f"{API}/{job_id}")
    assert response.status_code == 401
    assert response.json()["success"] is False


@pytest.mark.parametrize(
    "job_id",
    ["not-a-uuid", str(uuid.uuid1()), "12345678-1234-1234-1234-1234567890ab", "x" * 300],
)
def test_stream_of_a_non_uuid4_is_400(server: LiveServer, job_id: str) -> None:
    result = server.stream(job_id)
    assert result.status == 400
    assert result.json()["error"]["code"] == "INVALID_JOB_ID"


def test_stream_of_an_unknown_job_is_404(server: LiveServer) -> None:
    result = server.stream(str(uuid.uuid4()))
    assert result.status == 404
    assert result.json()["error"]["code"] == "JOB_NOT_FOUND"


def test_stream_of_another_users_job_is_403_and_does_not_start_it(server: LiveServer) -> None:
    job_id = server.create_job(token=ALICE)
    result = server.stream(job_id, token=BOB)
    assert result.status == 403
    assert result.json()["error"]["code"] == "FORBIDDEN"
    assert server.service.executions == 0
    assert server.stream(job_id).last.event == "complete"


def test_finished_job_without_last_event_id_is_410(server: LiveServer) -> None:
    job_id = server.create_job()
    assert server.stream(job_id).last.event == "complete"
    again = server.stream(job_id)
    assert again.status == 410
    assert again.json()["error"]["code"] == "JOB_FINISHED"


def test_resuming_from_the_final_event_is_204(server: LiveServer) -> None:
    job_id = server.create_job()
    final_id = int(server.stream(job_id).last.id or 0)
    assert server.stream(job_id, last_event_id=final_id).status == 204
    assert server.stream(job_id, last_event_id=final_id + 5).status == 204


def test_bad_last_event_id_is_400(server: LiveServer) -> None:
    job_id = server.create_job()
    result = server.stream(job_id, last_event_id="-3")
    assert result.status == 400
    assert result.json()["error"]["code"] == "INVALID_LAST_EVENT_ID"


def test_sixth_open_stream_of_a_user_is_429(make_server: ServerFactory) -> None:
    server = make_server(scripted_interval_ms=200, scripted_chunks=50)
    jobs = [server.create_job() for _ in range(6)]
    with contextlib.ExitStack() as stack:
        clients = [
            stack.enter_context(httpx.Client(base_url=server.url, timeout=10)) for _ in range(5)
        ]
        streams = [
            stack.enter_context(client.stream("GET", f"{API}/{job}", headers=server.auth()))
            for client, job in zip(clients, jobs, strict=False)
        ]
        assert all(stream.status_code == 200 for stream in streams)
        refused = server.stream(jobs[5])
        assert refused.status == 429
        assert refused.json()["error"]["code"] == "TOO_MANY_STREAMS"
        # Another user is not affected, and closing one stream frees a slot at once.
        other = server.stream(server.create_job(token=BOB), token=BOB, stop_after=lambda e: True)
        assert other.status == 200
        streams[0].close()
        clients[0].close()
        wait_until(lambda: server.service.open_streams <= 4)
        # With Redis the slot is freed by a write that follows the disconnect: allow for it.
        wait_until(
            lambda: (
                server.stream(jobs[5], stop_after=lambda e: e.event == "connected").status == 200
            ),
            timeout=2,
        )


# -- the stream itself ----------------------------------------------------------------


def test_stream_headers_and_byte_framing(server: LiveServer) -> None:
    job_id = server.create_job()
    result = server.stream(job_id)
    assert result.status == 200
    assert result.headers["content-type"].startswith("text/event-stream")
    assert result.headers["cache-control"] == "no-cache, no-transform"
    assert result.headers["connection"] == "keep-alive"
    assert result.headers["x-accel-buffering"] == "no"
    assert b"\r" not in result.raw
    blocks = result.raw.decode().split("\n\n")
    assert blocks[-1] == ""
    for block in blocks[:-1]:
        lines = block.split("\n")
        assert [line.split(":", 1)[0] for line in lines] == ["id", "event", "data"], block
        json.loads(lines[2].removeprefix("data: "))


def test_events_arrive_in_order_with_their_fields(server: LiveServer) -> None:
    job_id = server.create_job()
    result = server.stream(job_id)
    names = result.names
    assert names[0] == "connected"
    assert names[-1] == "complete"
    assert set(names[1:-1]) == {"delta", "suggestion", "progress"}
    connected = result.events[0]
    assert connected.id == "0"
    assert connected.json()["jobId"] == job_id
    assert "resumedFrom" not in connected.json()
    assert [int(e.id or 0) for e in result.job_events] == list(range(1, len(result.job_events) + 1))
    total = 0
    for event in (e for e in result.events if e.event == "delta"):
        data = event.json()
        assert set(data) == {"text", "totalLength", "timestamp"}
        total += len(data["text"])
        assert data["totalLength"] == total
    assert result.text == scripted(server)
    complete = result.last.json()
    assert {"suggestions", "context", "tokenUsage", "executionTimeMs", "retryCount"} <= set(
        complete
    )
    assert {"provider", "model", "timestamp", "evidenceStats"} <= set(complete)
    assert complete["provider"] == "scripted"
    assert len(complete["suggestions"]) >= 3
    # Each suggestion was sent on its own, before `complete`, which repeats them exactly.
    sent = [e.json() for e in result.events if e.event == "suggestion"]
    assert [item["index"] for item in sent] == list(range(len(complete["suggestions"])))
    assert [item["suggestion"] for item in sent] == complete["suggestions"]
    # Progress never goes back, and says 100 only as the last event before `complete`.
    progress = [e.json() for e in result.events if e.event == "progress"]
    percents = [item["percent"] for item in progress]
    assert percents == sorted(percents) and percents[-1] == 100
    assert names[-2] == "progress" and 100 not in percents[:-1]
    assert progress[-1]["suggestionsReady"] == len(complete["suggestions"])
    for suggestion in complete["suggestions"]:
        assert set(suggestion) == {
            "title",
            "rationale",
            "description",
            "implementationConsiderations",
        }
    assert {"inputTokens", "outputTokens"} <= set(complete["tokenUsage"])


def test_total_length_counts_code_points(make_server: ServerFactory) -> None:
    server = make_server(scripted_chunks=3, scripted_chunk_size=60)
    result = server.stream(server.create_job())
    assert "𝄞" in result.text  # outside the BMP: two UTF-16 units, one code point
    last_delta = [e for e in result.events if e.event == "delta"][-1]
    assert last_delta.json()["totalLength"] == len(result.text) == 180


def test_deltas_are_coalesced_per_throttle_interval_without_losing_text(
    make_server: ServerFactory,
) -> None:
    server = make_server(scripted_chunks=60, scripted_interval_ms=5, throttle_ms=100)
    result = server.stream(server.create_job())
    deltas = [e for e in result.events if e.event == "delta"]
    assert result.text == scripted(server)
    assert len(deltas) < 60 / 3
    stamps = [e.json()["timestamp"] for e in deltas]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    # At most one delta per 100 ms (ms clock granularity allowed); the last one is the
    # flush before `complete`, which never waits.
    assert min(gaps[:-1]) >= 99


def test_provider_failure_flushes_text_then_sends_error(make_server: ServerFactory) -> None:
    server = make_server(scripted_chunks=10, scripted_fail_at=6, throttle_ms=10_000)
    result = server.stream(server.create_job())
    assert result.names[-2:] == ["delta", "error"]
    assert result.text == "".join(scripted_text(10, 8)[:6])
    error = result.last.json()
    assert error["code"] == "PROVIDER_ERROR"
    assert set(error) == {"message", "code", "timestamp"}
    assert server.stream(server.create_job()).last.event == "error"


def test_heartbeat_comment_when_the_stream_is_quiet(make_server: ServerFactory) -> None:
    server = make_server(scripted_chunks=2, scripted_interval_ms=700, heartbeat_s=0.2)
    result = server.stream(server.create_job())
    assert result.last.event == "complete"
    assert result.comments.count("ping") >= 2
    assert b"\n: ping\n\n" in result.raw


def test_query_parameter_last_event_id_resumes_too(server: LiveServer) -> None:
    job_id = server.create_job()
    full = server.stream(job_id)
    resumed = server.stream(job_id, params={"lastEventId": "4"})
    assert resumed.events[0].json()["resumedFrom"] == 4
    assert resumed.events[0].id == "4"
    assert [e.data for e in resumed.job_events] == [e.data for e in full.job_events[4:]]


@pytest.mark.parametrize("seed", range(8))
def test_resume_after_a_drop_at_a_random_point_has_no_gap_or_duplicate(
    make_server: ServerFactory, seed: int
) -> None:
    server = make_server(scripted_chunks=30, scripted_interval_ms=3)
    job_id = server.create_job()
    rng = random.Random(seed)
    received: list[tuple[str, str, str]] = []
    last_id: int | None = None
    for _attempt in range(20):
        cut = rng.randint(1, 8)
        result = server.stream(
            job_id,
            last_event_id=last_id,
            stop_after=lambda event, cut=cut: event.event != "connected" and (cut := cut - 1) == 0,
        )
        if result.status == 204:
            break
        assert result.status == 200
        assert result.events[0].id == str(last_id or 0)
        for event in result.job_events:
            received.append((event.id or "", event.event, event.data))
            last_id = int(event.id or 0)
        if received and received[-1][1] in ("complete", "error"):
            break
    ids = [int(item[0]) for item in received]
    assert ids == list(range(1, len(ids) + 1))
    assert received[-1][1] == "complete"
    text = "".join(json.loads(d)["text"] for _, name, d in received if name == "delta")
    assert text == scripted(server)


def test_the_run_continues_when_the_client_drops(make_server: ServerFactory) -> None:
    server = make_server(scripted_chunks=20, scripted_interval_ms=20)
    job_id = server.create_job()
    first = server.stream(job_id, stop_after=lambda e: e.event == "delta")
    time.sleep(0.6)  # the run finishes while nobody is connected
    rest = server.stream(job_id, last_event_id=int(first.last.id or 0))
    assert rest.last.event == "complete"
    assert first.text + rest.text == scripted(server)
    assert server.service.executions == 1


def test_a_second_subscriber_sees_the_job_from_its_first_event(
    make_server: ServerFactory,
) -> None:
    server = make_server(scripted_chunks=20, scripted_interval_ms=20)
    job_id = server.create_job()
    results: dict[str, Stream] = {}
    first = threading.Thread(target=lambda: results.setdefault("a", server.stream(job_id)))
    first.start()
    wait_until(lambda: server.service.executions == 1)
    time.sleep(0.15)
    second = server.stream(job_id)
    first.join()
    assert second.events[1].id == "1"
    assert [e.data for e in second.job_events] == [e.data for e in results["a"].job_events]
    assert server.service.executions == 1


def test_twenty_five_simultaneous_streams_run_the_job_once(make_server: ServerFactory) -> None:
    server = make_server(max_streams_per_user=30)
    job_id = server.create_job()
    barrier = threading.Barrier(25)

    def open_stream(_: int) -> Stream:
        barrier.wait()
        return server.stream(job_id)

    with ThreadPoolExecutor(25) as pool:
        results = list(pool.map(open_stream, range(25)))
    assert server.service.executions == 1
    assert all(result.status == 200 for result in results)
    reference = [e.data for e in results[0].job_events]
    for result in results:
        assert [e.data for e in result.job_events] == reference
        assert result.text == scripted(server)


# -- lifecycle ------------------------------------------------------------------------


def test_unwatched_job_is_cancelled_after_the_orphan_grace(make_server: ServerFactory) -> None:
    server = make_server(scripted_chunks=200, scripted_interval_ms=20, orphan_grace_s=0.3)
    job_id = server.create_job()
    first = server.stream(job_id, stop_after=lambda e: e.event == "delta")
    time.sleep(0.8)
    rest = server.stream(job_id, last_event_id=int(first.last.id or 0))
    assert rest.last.event == "error"
    assert rest.last.json()["code"] == "CANCELLED"
    assert "watching" in rest.last.json()["message"]
    assert len(first.text + rest.text) < len(scripted(server))


def test_reconnecting_within_the_grace_keeps_the_job_running(make_server: ServerFactory) -> None:
    server = make_server(scripted_chunks=40, scripted_interval_ms=20, orphan_grace_s=0.5)
    job_id = server.create_job()
    first = server.stream(job_id, stop_after=lambda e: e.event == "delta")
    time.sleep(0.2)
    rest = server.stream(job_id, last_event_id=int(first.last.id or 0))
    assert rest.last.event == "complete"


def test_orphan_grace_zero_never_cancels(make_server: ServerFactory) -> None:
    server = make_server(scripted_chunks=30, scripted_interval_ms=10, orphan_grace_s=0)
    job_id = server.create_job()
    first = server.stream(job_id, stop_after=lambda e: e.event == "delta")
    time.sleep(0.6)
    assert server.stream(job_id, last_event_id=int(first.last.id or 0)).last.event == "complete"


def test_run_over_the_time_limit_ends_with_timeout(make_server: ServerFactory) -> None:
    server = make_server(scripted_chunks=100, scripted_interval_ms=20, time_limit_s=0.3)
    result = server.stream(server.create_job())
    assert result.last.event == "error"
    assert result.last.json()["code"] == "TIMEOUT"
    assert result.text == scripted(server)[: len(result.text)]
    assert 0 < len(result.text) < len(scripted(server))


def test_delete_cancels_a_running_job(make_server: ServerFactory) -> None:
    server = make_server(scripted_chunks=200, scripted_interval_ms=10)
    job_id = server.create_job()
    holder: dict[str, Stream] = {}
    reader = threading.Thread(target=lambda: holder.setdefault("s", server.stream(job_id)))
    reader.start()
    wait_until(lambda: server.service.executions == 1)
    time.sleep(0.1)
    response = server.delete(job_id)
    assert response.status_code == 202
    reader.join(5)
    result = holder["s"]
    assert result.last.event == "error"
    assert result.last.json()["code"] == "CANCELLED"
    assert server.delete(job_id).status_code == 410
    assert server.stream(job_id).status == 410


def test_delete_of_a_pending_job_means_it_never_runs(server: LiveServer) -> None:
    job_id = server.create_job()
    assert server.delete(job_id).status_code == 202
    assert server.stream(job_id).status == 410
    replay = server.stream(job_id, last_event_id=0)
    assert replay.names == ["connected", "error"]
    assert replay.last.json()["code"] == "CANCELLED"
    assert server.service.executions == 0


def test_delete_refusals(server: LiveServer) -> None:
    job_id = server.create_job()
    assert server.http.delete(f"{API}/{job_id}").status_code == 401
    assert server.delete("nope").status_code == 400
    assert server.delete(str(uuid.uuid4())).status_code == 404
    assert server.delete(job_id, token=BOB).status_code == 403
    server.stream(job_id)
    assert server.delete(job_id).status_code == 410


def test_pending_job_expires_after_its_ttl(make_server: ServerFactory) -> None:
    server = make_server(pending_ttl_s=0.3)
    job_id = server.create_job()
    time.sleep(0.45)
    assert server.stream(job_id).status == 404


def test_completed_job_log_is_kept_for_its_ttl_then_gone(make_server: ServerFactory) -> None:
    server = make_server(completed_ttl_s=0.5)
    job_id = server.create_job()
    server.stream(job_id)
    assert server.stream(job_id, last_event_id=2).last.event == "complete"
    time.sleep(0.65)
    assert server.stream(job_id, last_event_id=2).status == 404


def test_failed_job_is_kept_for_the_finished_ttl(make_server: ServerFactory) -> None:
    server = make_server(scripted_fail_at=0, completed_ttl_s=0.2, finished_ttl_s=1.0)
    job_id = server.create_job()
    assert server.stream(job_id).last.event == "error"
    time.sleep(0.4)
    assert server.stream(job_id).status == 410
    time.sleep(0.8)
    assert server.stream(job_id).status == 404


def test_a_stalled_client_does_not_hold_up_the_others(make_server: ServerFactory) -> None:
    """A client that stops reading falls behind in the job's log; nobody else waits for it."""
    server = make_server(scripted_chunks=300, scripted_chunk_size=2000, scripted_interval_ms=2)
    job_id = server.create_job()
    host, port = server.url.removeprefix("http://").split(":")
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect((host, int(port)))
    try:
        stalled.sendall(
            f"GET {API}/{job_id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ALICE}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        wait_until(lambda: server.service.executions == 1)
        started = time.monotonic()
        reader = server.stream(job_id)  # ~600 kB of text, while the stalled one reads nothing
        assert reader.status == 200, reader.raw
        assert reader.last.event == "complete"
        assert reader.text == scripted(server)
        assert time.monotonic() - started < 5
        # The stalled client still receives everything once it reads again.
        received = b""
        stalled.settimeout(5)
        while b"event: complete" not in received:
            chunk = stalled.recv(1 << 16)
            assert chunk, "connection closed before the final event"
            received += chunk
        assert received.count(b"event: delta") == reader.names.count("delta")
    finally:
        stalled.close()

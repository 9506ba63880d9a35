"""The Python clients and kept runs: history, status without a stream, ``follow``, removing
and sharing a run, and idempotent creates (DESIGN.md "Part two"), against a real uvicorn;
plus the create retries on a mock transport."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from feature_planner.client import (
    AsyncFeaturePlannerClient,
    ConnectionFailedError,
    CreatedJob,
    EventEnvelope,
    FeaturePlannerClient,
)
from feature_planner.errors import (
    AuthenticationError,
    IdempotencyKeyReusedError,
    JobActiveError,
    JobForbiddenError,
    JobNotCompleteError,
    JobNotFoundError,
    RateLimitedError,
    RequestValidationError,
    ShareReadOnlyError,
    StoreUnavailableError,
)
from feature_planner.models import (
    CompleteEvent,
    ConnectedEvent,
    DeltaEvent,
    ErrorEvent,
    JobState,
    SuggestionRequest,
)
from tests.test_client import REQUEST, start_server, text_of

API = "/api/feature-planner/suggest-feature"


def request_for(page: str) -> SuggestionRequest:
    return REQUEST.model_copy(update={"page_or_component": page})


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    background = start_server(tmp_path, database_url=f"sqlite:///{tmp_path}/history.db")
    try:
        yield background.url
    finally:
        background.stop()


@pytest.fixture
def slow_server(tmp_path: Path) -> Iterator[str]:
    """Runs that last about 1.5 s: 30 chunks, 50 ms apart."""
    background = start_server(
        tmp_path, database_url=f"sqlite:///{tmp_path}/history.db", scripted_interval_ms=50
    )
    try:
        yield background.url
    finally:
        background.stop()


def run_to_end(client: FeaturePlannerClient, job: str | CreatedJob) -> list[EventEnvelope]:
    return list(client.stream_envelopes(job))


class Watcher(threading.Thread):
    """Another subscriber: streams the job to its end in the background."""

    def __init__(self, url: str, job_id: str) -> None:
        super().__init__(daemon=True)
        self.url, self.job_id = url, job_id
        self.envelopes: list[EventEnvelope] = []
        self.first_delta = threading.Event()

    def run(self) -> None:
        with FeaturePlannerClient(self.url, "tok-a") as client:
            for envelope in client.stream_envelopes(self.job_id):
                self.envelopes.append(envelope)
                if envelope.name == "delta":
                    self.first_delta.set()


def watch(url: str, job_id: str) -> Watcher:
    """Start the job with a watcher, and return once it is streaming text."""
    watcher = Watcher(url, job_id)
    watcher.start()
    assert watcher.first_delta.wait(10)
    return watcher


# --- history: jobs() and iter_jobs() ----------------------------------------------------------


def test_jobs_lists_the_callers_own_jobs_newest_first_page_by_page(server: str) -> None:
    with (
        FeaturePlannerClient(server, "tok-a") as alice,
        FeaturePlannerClient(server, "tok-b") as bob,
    ):
        created = []
        for page in ("First page", "Second page", "Third page"):
            created.append(alice.create_job(request_for(page)).job_id)
            time.sleep(0.005)  # distinct creation times
        bobs = bob.create_job(REQUEST).job_id

        first = alice.jobs(limit=2)
        second = alice.jobs(limit=2, cursor=first.next_cursor)
        everything = list(alice.iter_jobs(page_size=1))
        bob_page = bob.jobs()

    newest_first = created[::-1]
    assert [job.job_id for job in first.jobs] == newest_first[:2]
    assert first.next_cursor is not None
    assert [job.job_id for job in second.jobs] == newest_first[2:]
    assert second.next_cursor is None
    assert [job.job_id for job in everything] == newest_first
    assert [job.job_id for job in bob_page.jobs] == [bobs]  # another user's are not listed
    third = first.jobs[0]
    assert third.status is JobState.PENDING  # active jobs are listed too
    assert third.input == request_for("Third page")
    assert third.stream_url == f"{API}/{third.job_id}"
    assert third.parent_job_id is None
    assert third.suggestions_count is None


def test_jobs_filters_by_status_and_counts_suggestions(server: str) -> None:
    with FeaturePlannerClient(server, "tok-a") as client:
        done = client.create_job(request_for("Done"))
        complete = run_to_end(client, done)[-1].event
        waiting = client.create_job(request_for("Waiting"))

        completed = client.jobs(status=JobState.COMPLETED)
        pending = client.jobs(status="pending")
        failed = client.jobs(status="failed")
        with pytest.raises(RequestValidationError) as info:
            client.jobs(limit=0)

    assert isinstance(complete, CompleteEvent)
    assert [job.job_id for job in completed.jobs] == [done.job_id]
    summary = completed.jobs[0]
    assert summary.status is JobState.COMPLETED
    assert summary.suggestions_count == len(complete.suggestions)
    assert summary.provider == "scripted"
    assert summary.finished_at is not None and summary.finished_at >= summary.created_at
    assert [job.job_id for job in pending.jobs] == [waiting.job_id]
    assert failed.jobs == []
    assert [item["field"] for item in info.value.fields] == ["limit"]


async def test_async_jobs_and_iter_jobs(server: str) -> None:
    async with AsyncFeaturePlannerClient(server, "tok-a") as client:
        ids = []
        for page in ("One", "Two", "Three"):
            ids.append((await client.create_job(request_for(page))).job_id)
            await asyncio.sleep(0.005)
        page = await client.jobs(limit=1, status=JobState.PENDING)
        listed = [job.job_id async for job in client.iter_jobs(page_size=2)]

    assert [job.job_id for job in page.jobs] == [ids[-1]]
    assert listed == ids[::-1]


# --- get(): a job without a stream ------------------------------------------------------------


def test_get_of_a_finished_job_returns_its_result(server: str) -> None:
    with FeaturePlannerClient(server, "tok-a") as client:
        job = client.create_job(REQUEST)
        pending = client.get(job.job_id)
        envelopes = run_to_end(client, job)
        status = client.get(job)

    assert pending.status is JobState.PENDING  # reading it does not start it
    assert pending.result is None and pending.error is None
    assert status.status is JobState.COMPLETED
    assert status.job_id == job.job_id
    assert status.input == REQUEST
    assert status.result == envelopes[-1].event
    assert status.error is None
    assert status.last_event_id == envelopes[-1].id
    assert status.started_at is not None and status.finished_at is not None
    assert status.created_at <= status.started_at <= status.finished_at
    assert status.provider == "scripted"


def test_get_of_a_failed_job_returns_its_error(tmp_path: Path) -> None:
    background = start_server(
        tmp_path, database_url=f"sqlite:///{tmp_path}/history.db", scripted_fail_at=5
    )
    try:
        with FeaturePlannerClient(background.url, "tok-a") as client:
            job = client.create_job(REQUEST)
            final = run_to_end(client, job)[-1]
            status = client.get(job.job_id)
    finally:
        background.stop()

    assert status.status is JobState.FAILED
    assert isinstance(status.error, ErrorEvent)
    assert status.error == final.event
    assert status.error.code == "PROVIDER_ERROR"
    assert status.result is None


def test_get_with_wait_of_a_running_job_returns_once_it_is_final(slow_server: str) -> None:
    # A read timeout shorter than the run: ``wait`` must lengthen it.
    with FeaturePlannerClient(slow_server, "tok-a", timeout=0.5) as client:
        job = client.create_job(REQUEST)
        watcher = watch(slow_server, job.job_id)
        running = client.get(job.job_id)
        started = time.monotonic()
        final = client.get(job.job_id, wait=20)
        waited = time.monotonic() - started
        watcher.join(10)

    assert running.status is JobState.IN_PROGRESS
    assert final.status is JobState.COMPLETED
    assert isinstance(final.result, CompleteEvent)
    assert 0.3 < waited < 15  # held until final, not for the whole wait
    assert final.result == watcher.envelopes[-1].event


async def test_async_get_with_wait(slow_server: str) -> None:
    async with AsyncFeaturePlannerClient(slow_server, "tok-a", timeout=0.5) as client:
        job = await client.create_job(REQUEST)
        watcher = await asyncio.to_thread(watch, slow_server, job.job_id)
        short = await client.get(job, wait=0.2)  # not final yet: answered after 0.2 s
        final = await client.get(job, wait=20)
        await asyncio.to_thread(watcher.join, 10)

    assert short.status is JobState.IN_PROGRESS
    assert final.status is JobState.COMPLETED
    assert final.result == watcher.envelopes[-1].event


def test_get_of_an_unknown_or_foreign_job(server: str) -> None:
    with (
        FeaturePlannerClient(server, "tok-a") as alice,
        FeaturePlannerClient(server, "tok-b") as bob,
    ):
        job = alice.create_job(REQUEST)
        with pytest.raises(JobNotFoundError):
            alice.get(str(uuid.uuid4()))
        with pytest.raises(JobForbiddenError):
            bob.get(job.job_id)


# --- follow(): whatever the job's state -------------------------------------------------------


def stream_requests(log: list[httpx.Request]) -> httpx.Client:
    """An httpx client that records the requests it sends."""
    return httpx.Client(timeout=30, event_hooks={"request": [log.append]})


def test_follow_of_a_running_job_yields_its_deltas_then_complete(slow_server: str) -> None:
    with FeaturePlannerClient(slow_server, "tok-a") as client:
        job = client.create_job(REQUEST)
        watcher = watch(slow_server, job.job_id)
        envelopes = list(client.follow(job.job_id))
        watcher.join(10)

    assert isinstance(envelopes[0].event, ConnectedEvent)
    assert isinstance(envelopes[-1].event, CompleteEvent)
    ids = [e.id for e in envelopes if e.name != "connected"]
    assert ids == list(range(1, len(ids) + 1))  # from its first event, each once
    assert text_of(envelopes) == text_of(watcher.envelopes)
    assert envelopes[-1] == watcher.envelopes[-1]


def test_follow_of_a_pending_job_starts_and_streams_it(server: str) -> None:
    with FeaturePlannerClient(server, "tok-a") as client:
        job = client.create_job(REQUEST)
        envelopes = list(client.follow(job))
        resumed = list(client.follow(job, last_event_id=3))

    assert envelopes[0].name == "connected"
    assert text_of(envelopes)
    assert isinstance(envelopes[-1].event, CompleteEvent)
    # Finished by then: its final event alone, whatever ``last_event_id`` said before it.
    assert resumed == [envelopes[-1]]


def test_follow_of_a_finished_job_yields_its_final_event_without_a_stream(server: str) -> None:
    sent: list[httpx.Request] = []
    with (
        stream_requests(sent) as http,
        FeaturePlannerClient(server, "tok-a", http_client=http) as client,
    ):
        job = client.create_job(REQUEST)
        streamed = run_to_end(client, job)
        sent.clear()
        followed = list(client.follow(job.job_id))
        after_final = list(client.follow(job.job_id, last_event_id=streamed[-1].id))

    assert followed == [streamed[-1]]  # same name, id and data as the stream's
    assert followed[0].name == "complete"
    assert after_final == []  # the caller already has it
    assert sent and all("text/event-stream" not in r.headers.get("accept", "") for r in sent)


def test_follow_of_a_finished_job_whose_event_log_expired(tmp_path: Path) -> None:
    background = start_server(
        tmp_path, database_url=f"sqlite:///{tmp_path}/history.db", completed_ttl_s=0.3
    )
    try:
        with FeaturePlannerClient(background.url, "tok-a") as client:
            job = client.create_job(REQUEST)
            final = run_to_end(client, job)[-1]
            time.sleep(0.8)
            with pytest.raises(JobNotFoundError):  # 404: its events are no longer kept
                list(client.stream(job))
            followed = list(client.follow(job))
    finally:
        background.stop()

    assert followed == [final]


def test_follow_of_a_failed_job_yields_its_error(tmp_path: Path) -> None:
    background = start_server(
        tmp_path, database_url=f"sqlite:///{tmp_path}/history.db", scripted_fail_at=3
    )
    try:
        with FeaturePlannerClient(background.url, "tok-a") as client:
            job = client.create_job(REQUEST)
            streamed = run_to_end(client, job)
            followed = list(client.follow(job))
    finally:
        background.stop()

    assert [e.name for e in followed] == ["error"]
    assert followed == [streamed[-1]]


async def test_async_follow_of_a_running_then_a_finished_job(slow_server: str) -> None:
    async with AsyncFeaturePlannerClient(slow_server, "tok-a") as client:
        job = await client.create_job(REQUEST)
        watcher = await asyncio.to_thread(watch, slow_server, job.job_id)
        live = [envelope async for envelope in client.follow(job.job_id)]
        finished = [envelope async for envelope in client.follow(job.job_id)]
        await asyncio.to_thread(watcher.join, 10)

    assert live[0].name == "connected"
    assert any(isinstance(e.event, DeltaEvent) for e in live)
    assert isinstance(live[-1].event, CompleteEvent)
    assert finished == [live[-1]]


# --- removing and sharing a run ---------------------------------------------------------------


def test_delete_job_removes_a_finished_job_and_refuses_an_active_one(server: str) -> None:
    with FeaturePlannerClient(server, "tok-a") as client:
        active = client.create_job(request_for("Active"))
        with pytest.raises(JobActiveError):
            client.delete_job(active.job_id)
        done = client.create_job(request_for("Done"))
        run_to_end(client, done)
        client.delete_job(done.job_id)
        listed = [job.job_id for job in client.iter_jobs()]
        with pytest.raises(JobNotFoundError):
            client.delete_job(str(uuid.uuid4()))

    assert listed == [active.job_id]


def test_share_gives_a_watch_only_token_and_unshare_revokes_it(server: str) -> None:
    with FeaturePlannerClient(server, "tok-a") as client:
        pending = client.create_job(REQUEST)
        with pytest.raises(JobNotCompleteError):
            client.share(pending.job_id)
        job = client.create_job(REQUEST)
        final = run_to_end(client, job)[-1]
        link = client.share(job.job_id)
        with FeaturePlannerClient(server, link.token) as viewer:
            seen = viewer.get(job.job_id)
            followed = list(viewer.follow(job.job_id))
            with pytest.raises(ShareReadOnlyError):
                viewer.create_job(REQUEST)
            with pytest.raises(ShareReadOnlyError):
                viewer.jobs()
            client.unshare(job.job_id)
            with pytest.raises(AuthenticationError):
                viewer.get(job.job_id)

    assert link.token and link.expires_at > time.time() * 1000
    assert job.job_id in link.url and link.token in link.url
    assert seen.result == final.event
    assert followed == [final]


# --- Idempotency-Key --------------------------------------------------------------------------

CREATED = {
    "jobId": "6f1c2a4e-8d4b-4c1e-9a57-0c1d2e3f4a5b",
    "streamUrl": f"{API}/6f1c2a4e-8d4b-4c1e-9a57-0c1d2e3f4a5b",
    "expiresAt": 1,
}


def error_answer(status: int, code: str, **headers: str) -> httpx.Response:
    body = {"success": False, "error": {"code": code, "message": code.lower()}}
    return httpx.Response(status, json=body, headers=headers)


def scripted_answers(
    answers: list[httpx.Response | Exception],
) -> tuple[httpx.Client, list[httpx.Request]]:
    """A mock server answering each request with the next of ``answers``."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[len(seen) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.Client(transport=httpx.MockTransport(handler)), seen


def test_create_job_sends_a_new_idempotency_key_each_call_or_the_one_given() -> None:
    created = httpx.Response(201, json={"success": True, "data": CREATED})
    http, seen = scripted_answers([created, created, created])
    with http, FeaturePlannerClient("http://t", "tok", http_client=http) as client:
        first, second = client.create_job(REQUEST), client.create_job(REQUEST)
        mine = client.create_job(REQUEST, idempotency_key="my-key-1")

    keys = [request.headers["idempotency-key"] for request in seen]
    assert keys[0] != keys[1]
    assert all(uuid.UUID(key).version == 4 for key in keys[:2])
    assert keys[2] == "my-key-1"
    assert (first.idempotency_key, second.idempotency_key, mine.idempotency_key) == tuple(keys)
    assert not first.replayed
    assert first.to_wire() == CREATED  # what the client adds is not wire data


def test_create_job_retries_transient_failures_with_the_same_key() -> None:
    created = httpx.Response(
        201, json={"success": True, "data": CREATED}, headers={"Idempotent-Replayed": "true"}
    )
    http, seen = scripted_answers(
        [
            httpx.ReadTimeout("no answer"),
            error_answer(503, "STORE_UNAVAILABLE"),
            error_answer(429, "RATE_LIMITED", **{"Retry-After": "1"}),
            httpx.Response(502, text="<html>Bad Gateway</html>"),
            created,
        ]
    )
    with (
        http,
        FeaturePlannerClient(
            "http://t", "tok", http_client=http, reconnect_delay=0, create_retries=4
        ) as client,
    ):
        started = time.monotonic()
        job = client.create_job(REQUEST)
        elapsed = time.monotonic() - started

    assert len(seen) == 5
    assert len({request.headers["idempotency-key"] for request in seen}) == 1
    assert [json.loads(request.content) for request in seen] == [REQUEST.to_wire()] * 5
    assert job.replayed
    assert job.idempotency_key == seen[0].headers["idempotency-key"]
    assert elapsed >= 1  # Retry-After was honoured


@pytest.mark.parametrize(
    ("answers", "error"),
    [
        ([error_answer(503, "STORE_UNAVAILABLE")] * 3, StoreUnavailableError),
        ([httpx.ConnectError("refused")] * 3, ConnectionFailedError),
        ([error_answer(422, "IDEMPOTENCY_KEY_REUSED")], IdempotencyKeyReusedError),
        ([error_answer(401, "UNAUTHORIZED")], AuthenticationError),
        ([error_answer(429, "RATE_LIMITED", **{"Retry-After": "42"})], RateLimitedError),
    ],
    ids=["503-until-give-up", "connect-until-give-up", "422", "401", "429-long"],
)
def test_create_job_gives_up_or_does_not_retry(
    answers: list[httpx.Response | Exception], error: type[Exception]
) -> None:
    http, seen = scripted_answers(answers)
    with (
        http,
        FeaturePlannerClient(
            "http://t", http_client=http, reconnect_delay=0, create_retries=2
        ) as client,
        pytest.raises(error),
    ):
        client.create_job(REQUEST)
    assert len(seen) == len(answers)


class DropFirstAnswer(httpx.HTTPTransport):
    """A real transport that loses the answer to the first POST after the server sent it:
    the server made the job; the client sees a dropped connection."""

    def __init__(self) -> None:
        super().__init__()
        self.posts: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST":
            self.posts.append(request)
            if len(self.posts) == 1:
                response.read()
                response.close()
                raise httpx.RemoteProtocolError("peer closed the connection", request=request)
        return response


class AsyncDropFirstAnswer(httpx.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.posts: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if request.method == "POST":
            self.posts.append(request)
            if len(self.posts) == 1:
                await response.aread()
                await response.aclose()
                raise httpx.ReadError("connection reset", request=request)
        return response


def test_a_create_retried_after_its_answer_was_lost_makes_one_job(server: str) -> None:
    transport = DropFirstAnswer()
    with (
        httpx.Client(transport=transport, timeout=30) as http,
        FeaturePlannerClient(server, "tok-a", http_client=http, reconnect_delay=0) as client,
    ):
        job = client.create_job(REQUEST)
        jobs = list(client.iter_jobs())
        final = run_to_end(client, job)[-1]

    keys = [request.headers["idempotency-key"] for request in transport.posts]
    assert len(keys) == 2 and keys[0] == keys[1]
    assert job.replayed
    assert job.idempotency_key == keys[0]
    assert [summary.job_id for summary in jobs] == [job.job_id]  # the server made ONE job
    assert isinstance(final.event, CompleteEvent)


async def test_async_create_retried_after_its_answer_was_lost_makes_one_job(server: str) -> None:
    transport = AsyncDropFirstAnswer()
    async with (
        httpx.AsyncClient(transport=transport, timeout=30) as http,
        AsyncFeaturePlannerClient(server, "tok-a", http_client=http, reconnect_delay=0) as client,
    ):
        job = await client.create_job(REQUEST.to_wire())
        jobs = [summary async for summary in client.iter_jobs()]

    assert len(transport.posts) == 2
    assert job.replayed
    assert [summary.job_id for summary in jobs] == [job.job_id]


def test_the_same_key_gives_the_same_job_and_another_body_is_refused(server: str) -> None:
    with (
        FeaturePlannerClient(server, "tok-a") as alice,
        FeaturePlannerClient(server, "tok-b") as bob,
    ):
        first = alice.create_job(REQUEST, idempotency_key="order-42")
        again = alice.create_job(REQUEST, idempotency_key="order-42")
        bobs = bob.create_job(REQUEST, idempotency_key="order-42")  # keys are per user
        with pytest.raises(IdempotencyKeyReusedError):
            alice.create_job(request_for("Another page"), idempotency_key="order-42")
        with pytest.raises(RequestValidationError) as info:
            alice.create_job(REQUEST, idempotency_key="x" * 256)
        listed = [job.job_id for job in alice.iter_jobs()]

    assert not first.replayed
    assert again.replayed
    assert again.job_id == first.job_id
    assert bobs.job_id != first.job_id and not bobs.replayed
    assert listed == [first.job_id]
    assert [item["field"] for item in info.value.fields] == ["Idempotency-Key"]


def test_concurrent_creates_with_one_key_make_one_job(server: str) -> None:
    results: list[CreatedJob] = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            with FeaturePlannerClient(server, "tok-a") as client:
                results.append(client.create_job(REQUEST, idempotency_key="same-key"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert not errors
    assert len({job.job_id for job in results}) == 1
    assert sum(not job.replayed for job in results) == 1

"""The Python clients against a real uvicorn, plus protocol edge cases on a mock transport."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest

from feature_planner.agent.profile import AgentProfile
from feature_planner.client import (
    AsyncFeaturePlannerClient,
    ConnectionFailedError,
    EventEnvelope,
    FeaturePlannerClient,
    UnexpectedResponseError,
)
from feature_planner.config import load_settings
from feature_planner.errors import (
    AuthenticationError,
    JobFinishedError,
    JobForbiddenError,
    JobNotFoundError,
    RateLimitedError,
    RequestValidationError,
    RouteNotFoundError,
)
from feature_planner.models import (
    CompleteEvent,
    ConnectedEvent,
    DeltaEvent,
    ErrorEvent,
    FeatureType,
    PriorityLevel,
    SuggestionRequest,
)
from feature_planner.serving import BackgroundServer
from feature_planner.web.app import create_app

REQUEST = SuggestionRequest(
    page_or_component="Collections page",
    feature_type=FeatureType.ENHANCEMENT,
    priority_level=PriorityLevel.HIGH,
)


def start_server(repository: Path, **overrides: Any) -> BackgroundServer:
    settings: dict[str, Any] = {
        "provider": "scripted",
        "users": "alice=tok-a,bob=tok-b",
        "scripted_chunks": 30,
        "scripted_chunk_size": 7,
        "scripted_interval_ms": 2,
        "throttle_ms": 0,
        "repository": str(repository),
        "create_limit": 1000,
    }
    settings.update(overrides)
    return BackgroundServer(create_app(load_settings(**settings))).start()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    background = start_server(tmp_path)
    try:
        yield background.url
    finally:
        background.stop()


def text_of(envelopes: list[EventEnvelope]) -> str:
    return "".join(e.event.text for e in envelopes if isinstance(e.event, DeltaEvent))


def job_event_ids(envelopes: list[EventEnvelope]) -> list[int | None]:
    return [e.id for e in envelopes if e.name != "connected"]


async def collect(
    client: AsyncFeaturePlannerClient, job: Any, **kwargs: Any
) -> list[EventEnvelope]:
    return [envelope async for envelope in client.stream_envelopes(job, **kwargs)]


def assert_complete_run(envelopes: list[EventEnvelope]) -> None:
    assert isinstance(envelopes[0].event, ConnectedEvent)
    assert envelopes[0].id == 0
    final = envelopes[-1].event
    assert isinstance(final, CompleteEvent)
    assert final.suggestions
    ids = job_event_ids(envelopes)
    assert ids == list(range(1, len(ids) + 1))


# --- full flow against the real server ---------------------------------------------------------


async def test_async_client_streams_a_job_from_connected_to_complete(server: str) -> None:
    async with AsyncFeaturePlannerClient(server, "tok-a") as client:
        first = await collect(client, await client.create_job(REQUEST))
        events = [event async for event in client.suggest(REQUEST.to_wire())]

    assert_complete_run(first)
    assert text_of(first)
    assert [e.event for e in first] != events  # timestamps and job ids differ...
    second_text = "".join(e.text for e in events if isinstance(e, DeltaEvent))
    assert second_text == text_of(first)  # ...the text does not
    assert isinstance(events[-1], CompleteEvent)


def test_sync_client_streams_the_same_text_as_the_async_one(server: str) -> None:
    with FeaturePlannerClient(server, "tok-a") as client:
        job = client.create_job(REQUEST)
        envelopes = list(client.stream_envelopes(job.job_id))
        events = list(client.suggest(REQUEST))

    async def run_async() -> list[EventEnvelope]:
        async with AsyncFeaturePlannerClient(server, "tok-a") as client:
            return await collect(client, await client.create_job(REQUEST))

    assert_complete_run(envelopes)
    assert text_of(envelopes) == text_of(asyncio.run(run_async()))
    assert "".join(e.text for e in events if isinstance(e, DeltaEvent)) == text_of(envelopes)
    complete = envelopes[-1].event
    assert isinstance(complete, CompleteEvent)
    assert complete.provider == "scripted"


async def test_stream_resuming_from_the_final_event_ends_without_events(server: str) -> None:
    async with AsyncFeaturePlannerClient(server, "tok-a") as client:
        job = await client.create_job(REQUEST)
        envelopes = await collect(client, job)
        final_id = envelopes[-1].id
        assert await collect(client, job, last_event_id=final_id) == []  # 204
        replay = await collect(client, job, last_event_id=3)
        with pytest.raises(JobFinishedError):  # 410: finished, and nothing to resume from
            await collect(client, job)

    assert replay[0].id == 3
    assert job_event_ids(replay) == job_event_ids(envelopes)[3:]
    assert replay[1:] == envelopes[4:]  # an id always names the same event


# --- the custom agent -------------------------------------------------------------------------

PROFILE = AgentProfile(
    name="Accessibility reviewer",
    role="Accessibility specialist",
    focus="Keyboard navigation",
    system_prompt="Propose accessibility features.",
    temperature=0.2,
    tools=["Read"],
)


def test_sync_client_reads_replaces_and_removes_the_agent(tmp_path: Path) -> None:
    background = start_server(tmp_path, database_url=f"sqlite:///{tmp_path}/agents.db")
    try:
        with FeaturePlannerClient(background.url, "tok-a") as client:
            assert client.get_agent() is None  # no agent: the normal case, not an error
            assert client.delete_agent() is False
            assert client.put_agent(PROFILE) == PROFILE
            assert client.get_agent() == PROFILE
            changed = client.put_agent({**PROFILE.to_wire(), "isActive": False})
            assert changed == PROFILE.model_copy(update={"is_active": False})
            assert client.delete_agent() is True
            assert client.get_agent() is None
            with pytest.raises(RequestValidationError) as info:
                client.put_agent({**PROFILE.to_wire(), "temperature": 2})
            assert [item["field"] for item in info.value.fields] == ["temperature"]
    finally:
        background.stop()


async def test_async_client_reads_replaces_and_removes_the_agent(tmp_path: Path) -> None:
    background = start_server(tmp_path, database_url=f"sqlite:///{tmp_path}/agents.db")
    try:
        async with (
            AsyncFeaturePlannerClient(background.url, "tok-a") as alice,
            AsyncFeaturePlannerClient(background.url, "tok-b") as bob,
        ):
            assert await alice.get_agent() is None
            assert await alice.put_agent(PROFILE) == PROFILE
            assert await alice.get_agent() == PROFILE
            assert await bob.get_agent() is None  # each user has their own
            assert await bob.delete_agent() is False
            assert await alice.delete_agent() is True
            assert await alice.get_agent() is None
            assert await alice.delete_agent() is False
    finally:
        background.stop()


# --- resuming across dropped connections -------------------------------------------------------


class CuttingRelay:
    """A TCP relay in front of the server that cuts its first connections after some bytes.

    ``cut_after[i]`` is how many bytes of the server's answer the i-th connection passes
    before the relay closes it; later connections pass everything.
    """

    def __init__(self, upstream_url: str, cut_after: list[int]) -> None:
        self._upstream_port = httpx.URL(upstream_url).port
        self._cut_after = cut_after
        self._handlers: set[asyncio.Task[None]] = set()
        self.connections = 0
        self.cuts = 0

    async def __aenter__(self) -> CuttingRelay:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.close()
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        limit = (
            self._cut_after[self.connections] if self.connections < len(self._cut_after) else None
        )
        self.connections += 1
        task = asyncio.get_running_loop().create_task(self._relay(reader, writer, limit))
        self._handlers.add(task)

    async def _relay(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limit: int | None
    ) -> None:
        writers = [writer]
        try:
            upstream = await asyncio.open_connection("127.0.0.1", self._upstream_port)
            writers.append(upstream[1])
            pumps = [
                asyncio.create_task(self._pump(reader, upstream[1], None)),
                asyncio.create_task(self._pump(upstream[0], writer, limit)),
            ]
            try:
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            for stream in writers:
                stream.close()
                with contextlib.suppress(OSError):
                    await stream.wait_closed()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limit: int | None
    ) -> None:
        passed = 0
        while data := await reader.read(65536):
            if limit is not None and passed + len(data) >= limit:
                writer.write(data[: limit - passed])  # most likely in the middle of an event
                await writer.drain()
                self.cuts += 1
                return
            writer.write(data)
            await writer.drain()
            passed += len(data)


async def reference_text(server: str) -> str:
    async with AsyncFeaturePlannerClient(server, "tok-a") as client:
        return text_of(await collect(client, await client.create_job(REQUEST)))


async def test_async_stream_resumes_after_dropped_connections_without_loss(server: str) -> None:
    expected = await reference_text(server)
    async with (
        CuttingRelay(server, cut_after=[600, 1100]) as relay,
        AsyncFeaturePlannerClient(server, "tok-a") as direct,
        AsyncFeaturePlannerClient(relay.url, "tok-a", reconnect_delay=0.01) as relayed,
    ):
        job = await direct.create_job(REQUEST)
        envelopes = await collect(relayed, job.job_id)

    assert relay.cuts == 2
    assert [e.name for e in envelopes].count("connected") == 3
    resumed_from = [e.event.resumed_from for e in envelopes if isinstance(e.event, ConnectedEvent)]
    assert resumed_from[0] is None
    assert all(isinstance(n, int) and n > 0 for n in resumed_from[1:])
    assert isinstance(envelopes[-1].event, CompleteEvent)
    ids = job_event_ids(envelopes)
    assert ids == list(range(1, len(ids) + 1))  # each event once, none lost
    assert text_of(envelopes) == expected


async def test_sync_stream_resumes_after_dropped_connections_without_loss(server: str) -> None:
    expected = await reference_text(server)

    def stream_through(url: str) -> list[EventEnvelope]:
        with (
            FeaturePlannerClient(server, "tok-a") as direct,
            FeaturePlannerClient(url, "tok-a", reconnect_delay=0.01) as relayed,
        ):
            return list(relayed.stream_envelopes(direct.create_job(REQUEST)))

    async with CuttingRelay(server, cut_after=[450, 800, 1300]) as relay:
        envelopes = await asyncio.to_thread(stream_through, relay.url)

    assert relay.cuts == 3
    assert isinstance(envelopes[-1].event, CompleteEvent)
    ids = job_event_ids(envelopes)
    assert ids == list(range(1, len(ids) + 1))
    assert text_of(envelopes) == expected


# --- errors mapped back to their classes -------------------------------------------------------


async def test_bad_token_raises_authentication_error(server: str) -> None:
    async with AsyncFeaturePlannerClient(server, "wrong") as client:
        with pytest.raises(AuthenticationError) as info:
            await client.create_job(REQUEST)
        with pytest.raises(AuthenticationError):
            await collect(client, str(uuid.uuid4()))
    assert info.value.status == 401


async def test_invalid_request_raises_validation_error_with_fields(server: str) -> None:
    body = {"pageOrComponent": "  ", "featureType": "nope", "priorityLevel": "high"}
    async with AsyncFeaturePlannerClient(server, "tok-a") as client:
        with pytest.raises(RequestValidationError) as info:
            await client.create_job(body)
    fields = {item["field"] for item in info.value.fields}
    assert {"pageOrComponent", "featureType"} <= fields
    assert all(item["message"] for item in info.value.fields)


async def test_unknown_job_raises_not_found(server: str) -> None:
    async with AsyncFeaturePlannerClient(server, "tok-a") as client:
        with pytest.raises(JobNotFoundError):
            await collect(client, str(uuid.uuid4()))
        with pytest.raises(JobNotFoundError):
            await client.cancel(str(uuid.uuid4()))


def test_another_users_job_raises_forbidden(server: str) -> None:
    with (
        FeaturePlannerClient(server, "tok-a") as alice,
        FeaturePlannerClient(server, "tok-b") as bob,
    ):
        job = alice.create_job(REQUEST)
        with pytest.raises(JobForbiddenError):
            list(bob.stream(job.job_id))
        with pytest.raises(JobForbiddenError):
            bob.cancel(job.job_id)
        assert isinstance(list(alice.stream(job))[-1], CompleteEvent)


async def test_cancel_ends_the_stream_with_a_cancelled_error(tmp_path: Path) -> None:
    background = start_server(tmp_path, scripted_interval_ms=50)
    try:
        async with AsyncFeaturePlannerClient(background.url, "tok-a") as client:
            job = await client.create_job(REQUEST)
            events = []
            async for event in client.stream(job):
                events.append(event)
                if isinstance(event, DeltaEvent) and len(events) == 2:
                    await client.cancel(job.job_id)
            with pytest.raises(JobFinishedError):
                await client.cancel(job.job_id)
    finally:
        background.stop()

    final = events[-1]
    assert isinstance(final, ErrorEvent)
    assert final.code == "CANCELLED"
    assert sum(isinstance(e, DeltaEvent) for e in events) < 30


# --- protocol edge cases on a mock transport ---------------------------------------------------

JOB_ID = "6f1c2a4e-8d4b-4c1e-9a57-0c1d2e3f4a5b"
STREAM_URL = f"/api/feature-planner/suggest-feature/{JOB_ID}"


def sse(event_id: int, name: str, data: dict[str, Any]) -> str:
    return f"id: {event_id}\nevent: {name}\ndata: {json.dumps(data)}\n\n"


def connected(resumed_from: int | None = None) -> str:
    data: dict[str, Any] = {"jobId": JOB_ID, "timestamp": 1}
    if resumed_from is not None:
        data["resumedFrom"] = resumed_from
    return sse(resumed_from or 0, "connected", data)


def delta(event_id: int, text: str) -> str:
    return sse(event_id, "delta", {"text": text, "totalLength": event_id, "timestamp": 1})


COMPLETE = {
    "suggestions": [{"title": "T", "rationale": "R", "description": "D"}],
    "context": "c",
    "tokenUsage": {"inputTokens": 1, "outputTokens": 2},
    "executionTimeMs": 3,
    "retryCount": 0,
    "provider": "scripted",
    "model": "m",
    "timestamp": 1,
    "notice": "no AI model was used",
}


def event_stream(body: str) -> httpx.Response:
    return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})


def mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


def test_stream_reconnects_with_last_event_id_when_closed_without_a_final_event() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("last-event-id"))
        assert request.headers["authorization"] == "Bearer tok"
        if len(seen) == 1:  # a ping, an unknown event, then the connection closes
            return event_stream(
                connected() + delta(1, "a") + ": ping\n\n" + sse(2, "future", {}) + delta(3, "b")
            )
        if len(seen) == 2:  # a server replaying an event already delivered
            return event_stream(connected(3) + delta(3, "b") + delta(4, "c"))
        return event_stream(connected(4) + sse(5, "complete", COMPLETE) + delta(6, "never"))

    with (
        mock_client(handler) as http,
        FeaturePlannerClient("http://test", "tok", reconnect_delay=0, http_client=http) as client,
    ):
        envelopes = list(client.stream_envelopes(STREAM_URL))

    assert seen == [None, "3", "4"]
    assert [(e.name, e.id) for e in envelopes if e.name != "connected"] == [
        ("delta", 1),
        ("delta", 3),
        ("delta", 4),
        ("complete", 5),
    ]
    assert text_of(envelopes) == "abc"
    complete = envelopes[-1].event
    assert isinstance(complete, CompleteEvent)
    assert getattr(complete, "notice", None) == "no AI model was used"
    assert envelopes[-1].to_wire()["data"]["notice"] == "no AI model was used"


async def test_stream_gives_up_after_max_reconnects_without_progress() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return event_stream(connected() + delta(1, "a"))
        raise httpx.ConnectError("refused", request=request)

    transport = httpx.MockTransport(handler)
    async with (
        httpx.AsyncClient(transport=transport) as http,
        AsyncFeaturePlannerClient(
            "http://test", max_reconnects=3, reconnect_delay=0, http_client=http
        ) as client,
    ):
        received = []
        with pytest.raises(ConnectionFailedError):
            async for event in client.stream(JOB_ID, last_event_id=0):
                received.append(event)

    assert calls == 1 + 3
    assert [type(e).__name__ for e in received] == ["ConnectedEvent", "DeltaEvent"]


def test_no_content_on_resume_ends_the_iteration() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["last-event-id"] == "7"
        return httpx.Response(204)

    with mock_client(handler) as http:
        assert (
            list(FeaturePlannerClient("http://t", http_client=http).stream(JOB_ID, last_event_id=7))
            == []
        )


def test_rate_limit_reads_retry_after() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"success": False, "error": {"code": "RATE_LIMITED", "message": "slow down"}}
        return httpx.Response(429, json=body, headers={"Retry-After": "42"})

    with mock_client(handler) as http, pytest.raises(RateLimitedError) as info:
        FeaturePlannerClient("http://t", http_client=http).create_job(REQUEST)
    assert info.value.retry_after == 42
    assert info.value.message == "slow down"


@pytest.mark.parametrize(
    ("response", "wire_code"),
    [
        (httpx.Response(500, text="<html>Internal Server Error</html>"), None),
        (
            httpx.Response(502, json={"success": False, "error": {"code": "WHAT", "message": "?"}}),
            "WHAT",
        ),
        (httpx.Response(201, json={"success": True, "data": {"jobId": 1}}), None),
        (httpx.Response(201, json=[1, 2]), None),
    ],
)
def test_unexpected_answers_raise_unexpected_response(
    response: httpx.Response, wire_code: str | None
) -> None:
    with (
        mock_client(lambda request: response) as http,
        pytest.raises(UnexpectedResponseError) as info,
    ):
        FeaturePlannerClient("http://t", http_client=http).create_job(REQUEST)
    assert info.value.http_status == response.status_code
    assert info.value.wire_code == wire_code


def test_a_stream_that_is_not_an_event_stream_raises_unexpected_response() -> None:
    with mock_client(lambda request: httpx.Response(200, text="hello")) as http:
        client = FeaturePlannerClient("http://t", http_client=http)
        with pytest.raises(UnexpectedResponseError):
            list(client.stream(JOB_ID))
        malformed = event_stream(connected() + sse(1, "delta", {"text": 3}))
        with (
            mock_client(lambda request: malformed) as http2,
            pytest.raises(UnexpectedResponseError),
        ):
            list(FeaturePlannerClient("http://t", http_client=http2).stream(JOB_ID))


def test_an_unreachable_server_raises_connection_failed() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with mock_client(refuse) as http, pytest.raises(ConnectionFailedError):
        FeaturePlannerClient("http://t", http_client=http).create_job(REQUEST)


def test_stream_retries_a_replica_whose_store_is_down(tmp_path: Path) -> None:
    """503 STORE_UNAVAILABLE while (re)connecting is transient: the client tries again."""
    from tests.web.test_pages import UnreachableStore

    store = UnreachableStore()
    settings = load_settings(
        provider="scripted", users="alice=tok-a", repository=str(tmp_path), throttle_ms=0
    )
    with BackgroundServer(create_app(settings, store=store)) as background:
        with FeaturePlannerClient(background.url, "tok-a", reconnect_delay=0.2) as client:
            job = client.create_job(REQUEST)
            store.down = True
            threading.Timer(0.3, lambda: setattr(store, "down", False)).start()
            events = list(client.stream(job))
        assert isinstance(events[-1], CompleteEvent)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, json={"success": True}),
        httpx.Response(200, json={"success": True, "data": {"name": "no other field"}}),
        httpx.Response(200, text="<html>a proxy's page</html>"),
    ],
    ids=["no-data", "not-an-agent", "not-json"],
)
def test_an_answer_that_is_not_an_agent_raises_unexpected_response(
    response: httpx.Response,
) -> None:
    with (
        mock_client(lambda request: response) as http,
        pytest.raises(UnexpectedResponseError),
    ):
        FeaturePlannerClient("http://t", http_client=http).get_agent()


def test_deleting_the_agent_maps_other_refusals_to_their_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"success": False, "error": {"code": "NOT_FOUND", "message": "Not Found"}}
        return httpx.Response(404, json=body)

    # A 404 that is not "no agent" (a server without the route): an error, not False.
    with mock_client(handler) as http, pytest.raises(RouteNotFoundError) as info:
        FeaturePlannerClient("http://t", http_client=http).delete_agent()
    assert info.value.message == "Not Found"

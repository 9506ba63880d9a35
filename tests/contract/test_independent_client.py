"""An independent client, written only from DESIGN.md, that proves the contract holds.

Nothing here imports the server's code: the HTTP calls use ``http.client`` and the
Server-Sent-Events parser below follows the WHATWG EventSource rules by itself.
Only ``make_server`` (to start a server) and the two test tokens come from the fixtures.
"""

from __future__ import annotations

import codecs
import http.client
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from tests.conftest import ALICE, BOB

API = "/api/feature-planner/suggest-feature"
BODY = {
    "pageOrComponent": "Collections page \U0001f6d2",
    "featureType": "enhancement",
    "priorityLevel": "high",
    "additionalContext": "Shoppers want filters, café-style.",
}
FAST = {"scripted_chunks": 20, "scripted_chunk_size": 8, "scripted_interval_ms": 3}
FINAL = frozenset({"complete", "error"})
TIMEOUT_S = 10.0

# The user's custom agent: GET / PUT / DELETE, each caller their own. Having none is the
# normal case: GET answers 200 with `data: null`; only DELETE of nothing is refused (404).
AGENT_PATH = "/api/feature-planner/agent"
AGENT = {
    "name": "Accessibility reviewer",
    "role": "Accessibility specialist",
    "focus": "Keyboard navigation",
    "systemPrompt": "Propose accessibility features.",
    "temperature": 0.2,
    "tools": ["Glob", "Read"],
    "isActive": True,
}
NO_AGENT = {"success": True, "data": None}


# --------------------------------------------------------------------------- SSE parser


@dataclass(frozen=True)
class Event:
    """One dispatched event, plus the field names its block carried (to check framing)."""

    id: str
    event: str
    data: str
    fields: tuple[str, ...]

    def json(self) -> Any:
        return json.loads(self.data)


class SSEParser:
    """Incremental WHATWG ``text/event-stream`` parser (LF, CR or CRLF line ends)."""

    _EOL = re.compile(r"\r\n|\r|\n")

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._started = False
        self._pending_cr = False  # the last line ended with CR at a chunk's end
        self._data = ""
        self._type = ""
        self._fields: list[str] = []
        self.last_event_id = ""
        self.retry: int | None = None
        self.comments: list[str] = []

    def feed(self, chunk: bytes) -> list[Event]:
        self._buffer += self._decoder.decode(chunk)
        if not self._started and self._buffer:
            self._started = True
            self._buffer = self._buffer.removeprefix("\ufeff")
        events: list[Event] = []
        while True:
            if self._pending_cr and self._buffer:
                self._pending_cr = False
                self._buffer = self._buffer.removeprefix("\n")
            match = self._EOL.search(self._buffer)
            if match is None:
                return events
            line = self._buffer[: match.start()]
            self._buffer = self._buffer[match.end() :]
            if match.group() == "\r" and not self._buffer:
                self._pending_cr = True
            event = self._line(line)
            if event is not None:
                events.append(event)

    def _line(self, line: str) -> Event | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            self.comments.append(line[1:].removeprefix(" "))
            return None
        name, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")
        self._fields.append(name)
        if name == "event":
            self._type = value
        elif name == "data":
            self._data += value + "\n"
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> Event | None:
        fields, self._fields = tuple(self._fields), []
        data, event_type = self._data, self._type
        self._data, self._type = "", ""
        if not data:
            return None
        return Event(self.last_event_id, event_type or "message", data.removesuffix("\n"), fields)


# --------------------------------------------------------------------------- HTTP client


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    events: list[Event] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def job_events(self) -> list[Event]:
        return [event for event in self.events if event.event != "connected"]

    @property
    def is_stream(self) -> bool:
        return self.headers.get("content-type", "").startswith("text/event-stream")


def _connect(url: str) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    assert parts.hostname is not None
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT_S)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return conn, path


def auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def call(
    url: str,
    method: str = "GET",
    *,
    token: str | None = ALICE,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """One plain request/response exchange."""
    conn, path = _connect(url)
    try:
        conn.request(method, path, body=body, headers={**auth(token), **(headers or {})})
        response = conn.getresponse()
        try:
            data = response.read()
            found = {name.lower(): value for name, value in response.getheaders()}
            return Response(response.status, found, data)
        finally:
            response.close()
    finally:
        conn.close()


def create(base: str, body: Any = None, token: str = ALICE) -> Response:
    payload = json.dumps(BODY if body is None else body).encode()
    headers = {"Content-Type": "application/json"}
    return call(f"{base}{API}", "POST", token=token, body=payload, headers=headers)


def create_job(base: str, token: str = ALICE) -> str:
    response = create(base, token=token)
    assert response.status == 201, response.body
    job_id: str = response.json()["data"]["jobId"]
    return job_id


def stream(
    url: str,
    *,
    token: str | None = ALICE,
    last_event_id: int | str | None = None,
    query: dict[str, str] | None = None,
    stop_after: Callable[[Event], bool] | None = None,
) -> Response:
    """Read an SSE stream incrementally, to its end or until ``stop_after`` (then drop it)."""
    if query:
        url = f"{url}?{urlencode(query)}"
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache", **auth(token)}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    conn, path = _connect(url)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        try:
            found = {name.lower(): value for name, value in response.getheaders()}
            result = Response(response.status, found)
            if not result.is_stream:
                result.body = response.read()
                return result
            parser = SSEParser()
            while chunk := response.read1(65536):
                result.body += chunk
                for event in parser.feed(chunk):
                    result.events.append(event)
                    if stop_after is not None and stop_after(event):
                        result.comments = parser.comments
                        return result
            result.comments = parser.comments
            return result
        finally:
            response.close()
    finally:
        conn.close()


def after_job_events(count: int) -> Callable[[Event], bool]:
    """A ``stop_after`` that drops the connection once ``count`` job events have arrived."""
    seen = 0

    def stop(event: Event) -> bool:
        nonlocal seen
        if event.event != "connected":
            seen += 1
        return seen >= count

    return stop


@dataclass
class Resumed:
    events: list[Event]
    connections: list[Response]
    stopped_by: str  # "final" or "204"


def resume_until_final(
    job_url: str,
    *,
    token: str = ALICE,
    drops: Sequence[int] = (),
    last_event_id: str | None = None,
    pause_s: float = 0.0,
) -> Resumed:
    """Behave like an ``EventSource``: reconnect with the last id after each drop.

    ``drops[i]`` is how many job events the i-th connection reads before it drops; later
    connections read to the end. Stops on a final event or on 204.
    """
    events: list[Event] = []
    connections: list[Response] = []
    for attempt in range(len(drops) + 5):
        stop = after_job_events(drops[attempt]) if attempt < len(drops) else None
        response = stream(job_url, token=token, last_event_id=last_event_id, stop_after=stop)
        connections.append(response)
        if response.status == 204:
            return Resumed(events, connections, "204")
        assert response.status == 200, (response.status, response.body)
        assert response.events and response.events[0].event == "connected"
        job_events = response.job_events
        events.extend(job_events)
        if job_events:
            last_event_id = job_events[-1].id
            if job_events[-1].event in FINAL:
                return Resumed(events, connections, "final")
        time.sleep(pause_s)
    raise AssertionError(f"no final event after {len(connections)} connections")


# --------------------------------------------------------------------------- checks


def assert_failure(response: Response, status: int) -> dict[str, Any]:
    assert response.status == status, (response.status, response.body)
    assert response.headers.get("content-type", "").startswith("application/json")
    payload = response.json()
    assert payload["success"] is False
    error: dict[str, Any] = payload["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    return error


def assert_timestamp(value: Any) -> None:
    assert isinstance(value, int | float | str) and not isinstance(value, bool)
    assert value or value == 0


def assert_numbered(events: Iterable[Event], start: int = 1) -> None:
    ids = [int(event.id) for event in events]
    assert ids == list(range(start, start + len(ids))), ids


def assert_framing(response: Response) -> None:
    """Every line ends with a single LF; every event has id, event and one data line."""
    raw = response.body
    assert b"\r" not in raw
    assert raw.endswith(b"\n\n")
    for block in raw.decode().split("\n\n")[:-1]:
        lines = [line for line in block.split("\n") if not line.startswith(":")]
        if not lines:
            continue  # a block of comments only
        names = [line.partition(":")[0] for line in lines]
        assert sorted(names) == ["data", "event", "id"], block
        for line in lines:
            assert ": " in line or line.endswith(":"), line
    for event in response.events:
        assert event.fields.count("data") == 1
        assert event.fields.count("id") == 1
        assert event.fields.count("event") == 1
        assert event.id.isdigit()
        event.json()


def assert_delta_lengths(deltas: Iterable[Event]) -> str:
    text = ""
    for event in deltas:
        data = event.json()
        assert {"text", "totalLength", "timestamp"} <= data.keys()
        assert isinstance(data["text"], str)
        text += data["text"]
        assert data["totalLength"] == len(text)  # len() counts code points
        assert_timestamp(data["timestamp"])
    return text


def assert_complete(event: Event) -> None:
    assert event.event == "complete"
    data = event.json()
    suggestions = data["suggestions"]
    assert isinstance(suggestions, list) and suggestions
    for suggestion in suggestions:
        for key in ("title", "rationale", "description"):
            assert isinstance(suggestion[key], str) and suggestion[key]
        assert isinstance(suggestion["implementationConsiderations"], list)
    assert "context" in data
    usage = data["tokenUsage"]
    for key in ("inputTokens", "outputTokens"):
        assert isinstance(usage[key], int) and usage[key] >= 0
    assert isinstance(data["executionTimeMs"], int | float) and data["executionTimeMs"] >= 0
    assert isinstance(data["retryCount"], int) and data["retryCount"] >= 0
    assert isinstance(data["provider"], str) and data["provider"]
    assert isinstance(data["model"], str) and data["model"]
    assert_timestamp(data["timestamp"])


def assert_error_event(event: Event, code: str | None = None) -> dict[str, Any]:
    assert event.event == "error"
    data: dict[str, Any] = event.json()
    assert {"message", "code", "timestamp"} <= data.keys()
    assert isinstance(data["message"], str) and data["message"]
    assert isinstance(data["code"], str) and data["code"]
    assert_timestamp(data["timestamp"])
    if code is not None:
        assert data["code"] == code, data
    return data


# --------------------------------------------------------------------------- the parser


def test_parser_follows_the_whatwg_rules() -> None:
    raw = (
        "\ufeff: hello\r\n"
        'id: 7\r\nevent: one\r\ndata: {"a":\r\ndata:1}\r\n\r\n'
        "event: two\rdata:x\r\r"
        "data\n\n"
        "id\nevent: three\ndata: y\nretry: 1500\nbogus: z\n\n"
        "event: empty\n\n"
        "data: \u00e9\U0001f6d2\n\n"
    ).encode()
    for size in (1, 2, 3, len(raw)):
        parser = SSEParser()
        events: list[Event] = []
        for start in range(0, len(raw), size):
            events += parser.feed(raw[start : start + size])
        assert [(e.id, e.event, e.data) for e in events] == [
            ("7", "one", '{"a":\n1}'),
            ("7", "two", "x"),
            ("7", "message", ""),
            ("", "three", "y"),
            ("", "message", "\u00e9\U0001f6d2"),
        ], size
        assert parser.comments == ["hello"]
        assert parser.retry == 1500


# --------------------------------------------------------------------------- Phase 1


def test_create_returns_201_with_job_id_stream_url_and_expiry(make_server: Any) -> None:
    server = make_server(**FAST)
    before_ms = time.time() * 1000
    response = create(server.url)
    assert response.status == 201, response.body
    assert response.headers["content-type"].startswith("application/json")
    payload = response.json()
    assert payload["success"] is True
    data = payload["data"]
    job_id = data["jobId"]
    assert str(uuid.UUID(job_id)) == job_id and uuid.UUID(job_id).version == 4
    assert data["streamUrl"] == f"{API}/{job_id}"
    assert isinstance(data["expiresAt"], int)
    assert data["expiresAt"] > before_ms
    assert data["expiresAt"] < before_ms + 24 * 3600 * 1000  # epoch ms, not seconds or µs


def test_create_failures_use_the_error_envelope(make_server: Any) -> None:
    server = make_server(**FAST)
    url = f"{server.url}{API}"
    good = json.dumps(BODY).encode()
    as_json = {"Content-Type": "application/json"}

    assert_failure(call(url, "POST", token=None, body=good, headers=as_json), 401)
    assert_failure(call(url, "POST", token="token-mallory", body=good, headers=as_json), 401)
    assert_failure(call(url, "POST", body=b'{"pageOrComponent": ', headers=as_json), 400)
    as_text = {"Content-Type": "text/plain"}
    assert_failure(call(url, "POST", body=good, headers=as_text), 415)

    bad = {
        "pageOrComponent": "   ",
        "featureType": "rewrite-everything",
        "priorityLevel": "urgent",
        "additionalContext": "x" * 1001,
    }
    error = assert_failure(create(server.url, bad), 422)
    fields = error["fields"]
    assert isinstance(fields, list | dict) and fields
    listed = json.dumps(fields)
    for name in bad:
        assert name in listed, (name, fields)

    error = assert_failure(create(server.url, {**BODY, "surprise": 1}), 422)
    assert "surprise" in json.dumps(error["fields"])
    error = assert_failure(create(server.url, {**BODY, "customModel": "no-such-model"}), 422)
    assert "customModel" in json.dumps(error["fields"])


# --------------------------------------------------------------------------- Phase 2


def test_stream_headers_framing_numbering_and_payloads(make_server: Any) -> None:
    server = make_server(**FAST)
    response = create(server.url)
    data = response.json()["data"]
    result = stream(server.url + data["streamUrl"])

    assert result.status == 200
    headers = result.headers
    assert headers["content-type"].startswith("text/event-stream")
    cache = {part.strip() for part in headers["cache-control"].split(",")}
    assert {"no-cache", "no-transform"} <= cache
    assert headers["connection"].lower() == "keep-alive"
    assert headers["x-accel-buffering"] == "no"

    assert_framing(result)
    connected, *job_events = result.events
    assert connected.event == "connected" and connected.id == "0"
    hello = connected.json()
    assert hello["jobId"] == data["jobId"]
    assert_timestamp(hello["timestamp"])

    assert_numbered(job_events)
    known = {"delta", "complete", "error", "activity", "suggestion", "progress"}
    assert all(event.event in known for event in job_events)
    assert [event.event for event in job_events if event.event in FINAL] == ["complete"]
    assert job_events[-1].event == "complete"
    deltas = [event for event in job_events if event.event == "delta"]
    assert deltas
    assert assert_delta_lengths(deltas)
    assert_complete(job_events[-1])


def test_throttled_deltas_lose_no_text(make_server: Any) -> None:
    plain = make_server(**FAST)
    throttled = make_server(**{**FAST, "throttle_ms": 25})
    texts = []
    for server in (plain, throttled):
        job_events = stream(f"{server.url}{API}/{create_job(server.url)}").job_events
        deltas = [event for event in job_events if event.event == "delta"]
        texts.append((assert_delta_lengths(deltas), len(deltas)))
        assert job_events[-1].event == "complete"
    (text, count), (throttled_text, throttled_count) = texts
    assert throttled_text == text
    assert throttled_count < count


@pytest.mark.parametrize("how", ["header", "query"])
def test_drop_and_resume_gets_the_rest_without_gap_or_duplicate(make_server: Any, how: str) -> None:
    server = make_server(**FAST)
    url = f"{server.url}{API}/{create_job(server.url)}"
    first = stream(url, stop_after=after_job_events(3))
    assert_numbered(first.job_events)
    last = int(first.job_events[-1].id)
    assert last == 3

    if how == "header":
        second = stream(url, last_event_id=last)
    else:
        second = stream(url, query={"lastEventId": str(last)})
    assert second.status == 200
    assert_framing(second)
    connected = second.events[0]
    assert connected.event == "connected"
    assert connected.id == str(last)
    assert connected.json()["resumedFrom"] == last
    assert_numbered(second.job_events, start=last + 1)
    assert second.job_events[-1].event == "complete"

    joined = first.job_events + second.job_events
    assert_delta_lengths(event for event in joined if event.event == "delta")

    # An id always names the same event: replay the whole log and compare.
    replay = stream(url, last_event_id=0)
    assert replay.events[0].id == "0"
    assert [(e.id, e.event, e.data) for e in replay.job_events] == [
        (e.id, e.event, e.data) for e in joined
    ]


def test_second_subscriber_receives_the_job_from_its_first_event(make_server: Any) -> None:
    server = make_server(**{**FAST, "scripted_interval_ms": 20})
    url = f"{server.url}{API}/{create_job(server.url)}"
    results: dict[str, Response] = {}

    def read(name: str) -> None:
        results[name] = stream(url)

    first = threading.Thread(target=read, args=("first",))
    first.start()
    time.sleep(0.15)
    read("second")
    first.join(TIMEOUT_S)
    one, two = results["first"], results["second"]
    assert two.status == 200
    assert two.events[0].id == "0"
    assert_numbered(two.job_events)
    assert [(e.id, e.data) for e in one.job_events] == [(e.id, e.data) for e in two.job_events]


def test_finished_job_answers_410_without_last_event_id_and_204_from_the_final_event(
    make_server: Any,
) -> None:
    server = make_server(**FAST)
    url = f"{server.url}{API}/{create_job(server.url)}"
    final = stream(url).job_events[-1]
    assert final.event == "complete"

    assert_failure(stream(url), 410)
    ended = stream(url, last_event_id=final.id)
    assert ended.status == 204 and not ended.events and ended.body == b""
    assert stream(url, query={"lastEventId": final.id}).status == 204

    # Resuming from just before the end still delivers the final event.
    tail = stream(url, last_event_id=int(final.id) - 1)
    assert [(e.id, e.event) for e in tail.job_events] == [(final.id, "complete")]


def test_stream_refusals(make_server: Any) -> None:
    server = make_server(**FAST)
    job_id = create_job(server.url)
    url = f"{server.url}{API}"
    assert_failure(stream(f"{url}/{job_id}", token=None), 401)
    assert_failure(stream(f"{url}/{job_id}", token="token-mallory"), 401)
    assert_failure(stream(f"{url}/{job_id}", token=BOB), 403)
    assert_failure(stream(f"{url}/{uuid.uuid4()}"), 404)
    assert_failure(stream(f"{url}/not-a-uuid"), 400)
    assert_failure(stream(f"{url}/{uuid.uuid1()}"), 400)
    # None of the refusals started or spoiled the job: its owner still gets all of it.
    result = stream(f"{url}/{job_id}")
    assert result.events[0].id == "0"
    assert_numbered(result.job_events)
    assert result.job_events[-1].event == "complete"


def test_resume_until_final_across_several_drops(make_server: Any) -> None:
    server = make_server(**{**FAST, "scripted_chunks": 30, "scripted_interval_ms": 5})
    stream_url = create(server.url).json()["data"]["streamUrl"]
    job_url = server.url + stream_url

    result = resume_until_final(job_url, drops=(1, 4, 2, 7), pause_s=0.02)
    assert result.stopped_by == "final"
    assert len(result.connections) == 5
    for previous, connection in zip(result.connections, result.connections[1:], strict=False):
        resumed_from = int(previous.job_events[-1].id)
        assert connection.events[0].id == str(resumed_from)
        assert connection.events[0].json()["resumedFrom"] == resumed_from
    assert_numbered(result.events)
    assert result.events[-1].event == "complete"
    assert_delta_lengths(event for event in result.events if event.event == "delta")
    assert_complete(result.events[-1])

    # An EventSource that reconnects after the final event is told to stop with 204.
    again = resume_until_final(job_url, last_event_id=result.events[-1].id)
    assert again.stopped_by == "204" and not again.events


def test_delete_pending_job_then_resumed_stream_ends_with_cancelled(make_server: Any) -> None:
    server = make_server(**FAST)
    job_id = create_job(server.url)
    url = f"{server.url}{API}/{job_id}"
    assert_failure(call(url, "DELETE", token=BOB), 403)
    deleted = call(url, "DELETE")
    assert deleted.status == 202, deleted.body

    result = stream(url, last_event_id=0)
    assert result.status == 200
    assert_framing(result)
    assert result.events[0].event == "connected" and result.events[0].id == "0"
    assert_numbered(result.job_events)
    assert not [e for e in result.job_events if e.event in {"delta", "complete"}]
    assert_error_event(result.job_events[-1], "CANCELLED")
    assert_failure(call(url, "DELETE"), 410)
    assert stream(url, last_event_id=result.job_events[-1].id).status == 204


def test_delete_running_job_ends_open_stream_with_cancelled(make_server: Any) -> None:
    server = make_server(scripted_chunks=200, scripted_chunk_size=4, scripted_interval_ms=20)
    url = f"{server.url}{API}/{create_job(server.url)}"
    deleted: list[Response] = []

    def cancel_once(event: Event) -> bool:
        if event.event == "delta" and not deleted:
            deleted.append(call(url, "DELETE"))
        return False

    started = time.monotonic()
    result = stream(url, stop_after=cancel_once)
    assert time.monotonic() - started < 5
    assert deleted and deleted[0].status == 202
    assert_numbered(result.job_events)
    assert_error_event(result.job_events[-1], "CANCELLED")
    assert [e.event for e in result.job_events].count("error") == 1

    replay = stream(url, last_event_id=0)
    assert [(e.id, e.data) for e in replay.job_events] == [
        (e.id, e.data) for e in result.job_events
    ]


def test_provider_failure_ends_with_an_error_event(make_server: Any) -> None:
    server = make_server(**{**FAST, "scripted_fail_at": 5})
    url = f"{server.url}{API}/{create_job(server.url)}"
    result = stream(url)
    assert result.status == 200
    assert_framing(result)
    assert_numbered(result.job_events)
    final = result.job_events[-1]
    data = assert_error_event(final)
    assert data["code"] in {"PROVIDER_ERROR", "EXECUTION_ERROR"}, data
    assert [e.event for e in result.job_events].count("error") == 1
    assert "complete" not in [e.event for e in result.job_events]
    assert_delta_lengths(e for e in result.job_events if e.event == "delta")
    assert stream(url, last_event_id=final.id).status == 204


@pytest.mark.parametrize("backend", ["memory"])  # agents live in SQL, whatever the job store
def test_custom_agent_is_null_until_put_and_after_delete(make_server: Any) -> None:
    url = make_server().url + AGENT_PATH
    json_body = {"Content-Type": "application/json"}

    none = call(url)
    assert none.status == 200, none.body
    assert none.headers["content-type"].startswith("application/json")
    assert none.json() == NO_AGENT

    put = call(url, "PUT", body=json.dumps(AGENT).encode(), headers=json_body)
    assert put.status == 200, put.body
    assert put.json() == {"success": True, "data": AGENT}
    assert call(url).json() == {"success": True, "data": AGENT}
    assert call(url, token=BOB).json() == NO_AGENT  # another user's agent is not yours

    assert call(url, "DELETE").status == 204
    assert call(url).json() == NO_AGENT
    assert_failure(call(url, "DELETE"), 404)
    assert_failure(call(url, token=None), 401)

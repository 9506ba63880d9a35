"""A local fake of Anthropic's Messages API that plays scripted conversations.

It speaks the streaming wire format event for event as Anthropic documents it
(https://docs.anthropic.com/en/docs/build-with-claude/streaming): ``message_start`` with
usage, ``content_block_start`` / ``content_block_delta`` (``text_delta``,
``input_json_delta`` in several partial pieces) / ``content_block_stop``, ``message_delta``
with the stop reason and output usage, ``message_stop``, ``ping`` and ``error`` events; and
HTTP errors with Anthropic's JSON error bodies. It checks the API key (``x-api-key`` or
``Authorization: Bearer``, as newer SDKs send it), records every request, and can cut the
connection mid-stream, or hold it open and notice when the client goes away.

Usage::

    fake = FakeAnthropic(api_key="sk-test")
    with BackgroundServer(fake.app) as server:
        fake.play([Turn(text=["Hello"], tool_calls=[ToolCall("Read", {"path": "a.py"})]),
                   HttpError(529, "overloaded_error"),
                   Turn(text=["Done"])])
        ...  # point the SDK at server.url
        fake.requests[0].body["tools"]
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

__all__ = [
    "FakeAnthropic",
    "HttpError",
    "RecordedRequest",
    "ToolCall",
    "Turn",
    "Usage",
    "tool_result_text",
]

_ids = itertools.count(1)


@dataclass(frozen=True)
class ToolCall:
    """A ``tool_use`` block; its input is streamed as JSON in ``pieces`` partial deltas."""

    name: str
    input: dict[str, Any]
    id: str = field(default_factory=lambda: f"toolu_{next(_ids):024d}")
    pieces: int = 3


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 100
    output_tokens: int = 20
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None


@dataclass(frozen=True)
class Turn:
    """One assistant message: a text block streamed in ``text`` pieces, then tool calls.

    ``stop_reason`` defaults to ``tool_use`` when there are tool calls, else ``end_turn``;
    with ``max_tokens`` the last tool call's JSON stops halfway, as a real cut-off one does.
    After the text the stream can instead be cut (``cut_after_text``), held open until the
    client disconnects (``stall_after_text``), or end with an ``error`` event
    (``error_event``, an Anthropic error type such as ``overloaded_error``).
    """

    text: Sequence[str] = ()
    tool_calls: Sequence[ToolCall] = ()
    stop_reason: str | None = None
    usage: Usage = Usage()
    model: str | None = None  # default: the model the request named
    cut_after_text: bool = False
    stall_after_text: bool = False
    error_event: str | None = None
    delay_s: float = 0.0  # pause between events, to make a stream observably live


@dataclass(frozen=True)
class HttpError:
    """An HTTP error answer with Anthropic's JSON error body."""

    status: int
    type: str
    message: str | None = None
    retry_after: str | None = None


Step = Turn | HttpError


@dataclass
class RecordedRequest:
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def tool_names(self) -> list[str]:
        return [tool["name"] for tool in self.body.get("tools", [])]

    def tool_results(self) -> list[dict[str, Any]]:
        """The ``tool_result`` blocks of the last user message."""
        content = self.body["messages"][-1]["content"]
        if isinstance(content, str):
            return []
        return [block for block in content if block.get("type") == "tool_result"]


def tool_result_text(block: dict[str, Any]) -> str:
    """The text of a ``tool_result`` block, whichever content form the client used."""
    content = block.get("content", "")
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content)


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _split(text: str, pieces: int) -> list[str]:
    size = max(1, -(-len(text) // max(1, pieces)))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


_DEFAULT_MESSAGES = {
    "invalid_request_error": "invalid request",
    "authentication_error": "invalid x-api-key",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "model: not-a-model",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit",
    "api_error": "Internal server error",
    "overloaded_error": "Overloaded",
}


def _check(body: dict[str, Any]) -> str | None:
    """The request checks of the real API that a client is most likely to trip over."""
    for name in ("temperature", "top_p", "top_k"):
        if name in body:  # API version 2026-10-21 has no sampling parameters
            return f"{name}: Extra inputs are not permitted"
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            return f"{name}: Field required"
    tool_names = {tool["name"] for tool in body.get("tools", [])}
    choice = body.get("tool_choice") or {}
    if choice.get("type") == "tool" and choice.get("name") not in tool_names:
        return f"tool_choice: tool {choice.get('name')!r} is not among the tools"
    messages = body["messages"]
    if not messages or messages[0]["role"] != "user":
        return "messages: the first message must use the user role"
    pending: set[str] = set()
    for index, message in enumerate(messages):
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not blocks:
            return f"messages.{index}: all messages must have non-empty content"
        results = {b["tool_use_id"] for b in blocks if b.get("type") == "tool_result"}
        if pending and results != pending:
            return (
                f"messages.{index}: tool_use ids were found without tool_result blocks "
                f"immediately after: {', '.join(sorted(pending - results))}"
            )
        for block in blocks:
            if block.get("type") == "text" and not block["text"].strip():
                return f"messages.{index}: text content blocks must contain non-whitespace text"
        pending = {b["id"] for b in blocks if b.get("type") == "tool_use"}
    return None


class _Cut(Exception):
    """Raised inside the app to drop the connection without finishing the body."""


class FakeAnthropic:
    def __init__(self, api_key: str = "sk-ant-test-key") -> None:
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self.disconnected = threading.Event()  # a held-open stream saw the client leave
        self.stalled = threading.Event()  # a stream is being held open
        self.refused = 0  # requests refused for a wrong key
        self._script: list[Step] = []
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/v1/messages", _Endpoint(self), methods=["POST"])])

    def play(self, script: Sequence[Step]) -> None:
        """Replace the script and forget earlier requests."""
        with self._lock:
            self._script = list(script)
            self.requests = []
            self.refused = 0
        self.disconnected.clear()
        self.stalled.clear()

    @property
    def remaining(self) -> int:
        return len(self._script)

    # -- the endpoint (a raw ASGI app, for control over the connection) -------------------

    async def _messages(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        headers = {key.lower(): value for key, value in request.headers.items()}
        if not self._authorized(headers):
            self.refused += 1
            await self._error(send, HttpError(401, "authentication_error"))
            return
        if "anthropic-version" not in headers:
            await self._error(
                send, HttpError(400, "invalid_request_error", "anthropic-version: header required")
            )
            return
        body = json.loads(await request.body())
        problem = _check(body)
        if problem is not None:
            with self._lock:
                self.requests.append(RecordedRequest(headers=headers, body=body))
            await self._error(send, HttpError(400, "invalid_request_error", problem))
            return
        with self._lock:
            self.requests.append(RecordedRequest(headers=headers, body=body))
            step = self._script.pop(0) if self._script else None
        if step is None:
            await self._error(send, HttpError(500, "api_error", "the fake's script is exhausted"))
        elif isinstance(step, HttpError):
            await self._error(send, step)
        elif not body.get("stream"):
            await self._error(send, HttpError(400, "invalid_request_error", "stream: expected"))
        else:
            await self._stream(step, body, receive, send)

    def _authorized(self, headers: dict[str, str]) -> bool:
        bearer = headers.get("authorization", "")
        return headers.get("x-api-key") == self.api_key or bearer == f"Bearer {self.api_key}"

    @staticmethod
    async def _error(send: Send, error: HttpError) -> None:
        payload = {
            "type": "error",
            "error": {
                "type": error.type,
                "message": error.message or _DEFAULT_MESSAGES.get(error.type, error.type),
            },
            "request_id": f"req_fake{next(_ids):08d}",
        }
        headers = [(b"content-type", b"application/json"), (b"request-id", b"req_fake")]
        if error.retry_after is not None:
            headers.append((b"retry-after", error.retry_after.encode()))
        if error.status == 529:
            headers.append((b"x-should-retry", b"true"))
        await send({"type": "http.response.start", "status": error.status, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(payload).encode()})

    async def _stream(self, turn: Turn, body: dict[str, Any], receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"request-id", b"req_fake"),
                ],
            }
        )
        gone = asyncio.Event()

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    gone.set()
                    return

        watcher = asyncio.create_task(watch())
        try:
            for chunk in self._events(turn, body):
                if isinstance(chunk, _Cut):
                    raise chunk
                if chunk is _STALL:
                    self.stalled.set()
                    await gone.wait()
                    self.disconnected.set()
                    return
                if gone.is_set():
                    self.disconnected.set()
                    return
                assert isinstance(chunk, bytes)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if turn.delay_s:
                    await asyncio.sleep(turn.delay_s)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()

    def _events(self, turn: Turn, body: dict[str, Any]) -> list[bytes | _Cut | object]:
        usage: dict[str, Any] = {"input_tokens": turn.usage.input_tokens, "output_tokens": 1}
        if turn.usage.cache_read_input_tokens is not None:
            usage["cache_read_input_tokens"] = turn.usage.cache_read_input_tokens
        if turn.usage.cache_creation_input_tokens is not None:
            usage["cache_creation_input_tokens"] = turn.usage.cache_creation_input_tokens
        message: dict[str, Any] = {
            "id": f"msg_fake{next(_ids):016d}",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": turn.model or body.get("model", "claude-fake"),
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        events: list[bytes | _Cut | object] = [
            _sse("message_start", {"type": "message_start", "message": message}),
            _sse("ping", {"type": "ping"}),
        ]
        index = 0
        if turn.text:
            events.append(
                _sse(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            for piece in turn.text:
                events.append(
                    _sse(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "text_delta", "text": piece},
                        },
                    )
                )
        if turn.cut_after_text:
            return [*events, _Cut("cut by the script")]
        if turn.stall_after_text:
            return [*events, _STALL]
        if turn.error_event:
            text = _DEFAULT_MESSAGES.get(turn.error_event, turn.error_event)
            error = {"type": "error", "error": {"type": turn.error_event, "message": text}}
            return [*events, _sse("error", error)]
        if turn.text:
            events.append(
                _sse("content_block_stop", {"type": "content_block_stop", "index": index})
            )
            index += 1
        stop_reason = turn.stop_reason or ("tool_use" if turn.tool_calls else "end_turn")
        for number, call in enumerate(turn.tool_calls, start=1):
            arguments = json.dumps(call.input)
            if stop_reason == "max_tokens" and number == len(turn.tool_calls):
                arguments = arguments[: len(arguments) // 2]  # the output ran out mid-call
            events.append(
                _sse(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {
                            "type": "tool_use",
                            "id": call.id,
                            "name": call.name,
                            "input": {},
                        },
                    },
                )
            )
            for partial in ["", *_split(arguments, call.pieces)]:
                events.append(
                    _sse(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": partial},
                        },
                    )
                )
            events.append(
                _sse("content_block_stop", {"type": "content_block_stop", "index": index})
            )
            index += 1
        events.append(
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": turn.usage.output_tokens},
                },
            )
        )
        events.append(_sse("message_stop", {"type": "message_stop"}))
        return events


_STALL = object()


class _Endpoint:
    """An ASGI app (not a function, so Starlette passes it ``scope, receive, send``)."""

    def __init__(self, fake: FakeAnthropic) -> None:
        self._fake = fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._fake._messages(scope, receive, send)

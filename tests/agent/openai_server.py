"""A local fake of the OpenAI Chat Completions API, for the ``openai`` SDK to talk to.

It speaks the real streaming wire format: ``data: {chat.completion.chunk}`` events, a first
chunk with the role, content in pieces, each tool call split over several chunks (id, type
and name first, then the arguments in pieces), a chunk with the ``finish_reason``, a final
usage chunk with empty ``choices`` when ``stream_options.include_usage`` is set, and
``data: [DONE]``. Errors are OpenAI's JSON error bodies. Each request plays the next scripted
``Reply``; requests are recorded so tests can assert what the client sent.

    fake = FakeOpenAI([Reply(text=["Reading"], calls=[Call("Read", {"path": "README.md"})])])
    with serve(fake) as base_url:  # http://127.0.0.1:<port>/v1
        ...
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from feature_planner.serving import BackgroundServer

__all__ = ["API_KEY", "MODEL", "Call", "FakeOpenAI", "Reply", "error_reply", "serve"]

API_KEY = "sk-test-0123456789abcdef"
MODEL = "gpt-test"
SERVED_MODEL = "gpt-test-2025-01-01"  # what chunks report, as OpenAI reports a dated snapshot
_ARGUMENT_PIECE = 7  # characters of arguments per chunk


@dataclass(frozen=True)
class Call:
    """A tool call the fake model makes; ``arguments`` is JSON-encoded unless a string."""

    name: str
    arguments: Any = field(default_factory=dict)
    id: str | None = None

    def encoded(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass(frozen=True)
class Reply:
    """What the fake answers to one request."""

    text: Sequence[str] = ()
    calls: Sequence[Call] = ()
    finish_reason: str | None = None  # default: "tool_calls" with calls, else "stop"
    usage: tuple[int, int] | None = (100, 20)  # prompt, completion tokens
    cached_tokens: int | None = None
    # The usage so far on every chunk, as vLLM sends it with continuous_usage_stats.
    usage_every_chunk: bool = False
    cut_after_text: bool = False  # close the connection after the text, mid-stream
    hang_after_text: bool = False  # after the text, send nothing until the client leaves
    stream_error: Mapping[str, Any] | None = None  # an ``{"error": ...}`` chunk after the text
    raw: bytes | None = None  # a 200 answer that is not a stream at all (a wrong base URL)
    status: int = 200
    error: Mapping[str, Any] | None = None  # the JSON error body of a failed request
    headers: Mapping[str, str] = field(default_factory=dict)


def error_reply(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    return Reply(status=status, error=body, headers=dict(headers or {}))


RATE_LIMITED = error_reply(
    429,
    "Rate limit reached for gpt-test in organization org-x on tokens per min (TPM).",
    type="tokens",
    code="rate_limit_exceeded",
)
SERVER_ERROR = error_reply(
    500, "The server had an error while processing your request.", type="server_error"
)


class FakeOpenAI:
    def __init__(
        self,
        replies: Iterable[Reply] = (),
        *,
        api_key: str = API_KEY,
        models: Sequence[str] = (MODEL,),
        refuse_temperature: bool = False,
    ) -> None:
        self.api_key = api_key
        self.models = tuple(models)
        self.app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])
        self.reset(replies, refuse_temperature=refuse_temperature)

    def reset(self, replies: Iterable[Reply] = (), *, refuse_temperature: bool = False) -> None:
        """Forget everything, so that one server can serve a whole test module."""
        self.replies: deque[Reply] = deque(replies)
        self.refuse_temperature = refuse_temperature
        self.requests: list[dict[str, Any]] = []
        self.problems: list[str] = []  # what the fake could not answer; tests assert it empty
        self.disconnected = threading.Event()  # a client left in the middle of a stream

    def add(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    async def _chat(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            shown = request.headers.get("authorization", "")[-4:]
            return _error(
                401,
                f"Incorrect API key provided: sk-...{shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        body = await request.json()
        self.requests.append(body)
        if body.get("model") not in self.models:
            return _error(
                404,
                f"The model `{body.get('model')}` does not exist or you do not have access to it.",
                code="model_not_found",
            )
        if self.refuse_temperature and "temperature" in body:
            return _error(
                400,
                f"Unsupported value: 'temperature' does not support {body['temperature']} with "
                "this model. Only the default (1) value is supported.",
                code="unsupported_value",
                param="temperature",
            )
        if body.get("stream") is not True:
            self.problems.append("a request without stream=true")
            return _error(400, "The fake only streams")
        if not self.replies:
            self.problems.append(f"request {len(self.requests)} has no scripted reply")
            return _error(400, "No scripted reply left")
        reply = self.replies.popleft()
        if reply.error is not None:
            return JSONResponse(reply.error, status_code=reply.status, headers=reply.headers)
        if reply.raw is not None:
            return Response(reply.raw, media_type="text/html")
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return _ChunkStream(_chunks(reply, len(self.requests), include_usage), reply, self)


def _error(
    status: int, message: str, *, code: str | None = None, param: str | None = None
) -> Response:
    return JSONResponse(error_reply(status, message, code=code, param=param).error, status)


def _chunks(reply: Reply, number: int, include_usage: bool) -> list[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects of a reply, in order, as OpenAI streams them."""
    base: dict[str, Any] = {
        "id": f"chatcmpl-fake{number}",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000 + number,
        "model": SERVED_MODEL,
        "system_fingerprint": "fp_fake",
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        result = {**base, "choices": [choice]}
        if include_usage:
            result["usage"] = None
        return result

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
    chunks += [chunk({"content": piece}) for piece in reply.text]
    for index, call in enumerate(reply.calls):
        head = {
            "index": index,
            "id": call.id or f"call_{number}_{index}",
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        chunks.append(chunk({"tool_calls": [head]}))
        arguments = call.encoded()
        for start in range(0, len(arguments), _ARGUMENT_PIECE):
            piece = arguments[start : start + _ARGUMENT_PIECE]
            chunks.append(
                chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            )
    finish = reply.finish_reason or ("tool_calls" if reply.calls else "stop")
    chunks.append(chunk({}, finish))
    if include_usage and reply.usage_every_chunk and reply.usage is not None:
        prompt, completion = reply.usage
        for number, item in enumerate(chunks, start=1):
            so_far = completion * number // len(chunks)
            item["usage"] = {
                "prompt_tokens": prompt,
                "completion_tokens": so_far,
                "total_tokens": prompt + so_far,
            }
    if include_usage and reply.usage is not None:
        prompt, completion = reply.usage
        usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if reply.cached_tokens is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": reply.cached_tokens}
        chunks.append({**base, "choices": [], "usage": usage})
    return chunks


class _ChunkStream(Response):
    """Sends the chunks as SSE; can cut the connection or hang, and notices a client leaving.

    Starlette's ``StreamingResponse`` only notices a disconnect when a send fails, so a
    hanging stream would never see it: this one listens for ``http.disconnect`` itself.
    """

    def __init__(self, chunks: list[dict[str, Any]], reply: Reply, fake: FakeOpenAI) -> None:
        self._chunks = chunks
        self._reply = reply
        self._fake = fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()

        async def listen() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        listener = asyncio.create_task(listen())
        try:
            await self._send(send, gone)
        finally:
            listener.cancel()
            if gone.is_set():
                self._fake.disconnected.set()

    async def _send(self, send: Send, gone: asyncio.Event) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        text_end = 1 + len(self._reply.text)  # the role chunk, then the text
        for index, chunk in enumerate(self._chunks):
            if index == text_end and self._reply.cut_after_text:
                return  # without the final empty body: uvicorn closes the connection
            if index == text_end and self._reply.hang_after_text:
                await asyncio.wait_for(gone.wait(), timeout=10)
                return
            if index == text_end and self._reply.stream_error is not None:
                await _body(send, f"data: {json.dumps(self._reply.stream_error)}\n\n".encode())
                break
            await _body(send, f"data: {json.dumps(chunk)}\n\n".encode())
            await asyncio.sleep(0)  # one chunk per write, as a real server flushes them
        await _body(send, b"data: [DONE]\n\n")
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _body(send: Send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


@contextmanager
def serve(fake: FakeOpenAI) -> Iterator[str]:
    """Run the fake on a free port; yields the base URL the SDK is configured with."""
    with BackgroundServer(fake.app) as server:
        yield f"{server.url}/v1"

"""Responses: JSON envelopes, errors mapped to HTTP in one place, and the event stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..errors import (
    AuthenticationError,
    FeaturePlannerError,
    RateLimitedError,
    ServerDrainingError,
    StoreUnavailableError,
)
from ..jobs.relay import Subscriber

__all__ = [
    "EventStreamResponse",
    "error_response",
    "handle_feature_planner_error",
    "handle_unexpected_error",
    "json_bytes",
    "json_response",
]

logger = logging.getLogger("feature_planner")

STREAM_HEADERS = {
    "cache-control": "no-cache, no-transform",
    "connection": "keep-alive",
    "x-accel-buffering": "no",
}


def json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(
    data: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        json_bytes({"success": True, "data": data}),
        status_code,
        headers,
        media_type="application/json",
    )


def error_response(error: FeaturePlannerError) -> Response:
    headers = {"cache-control": "no-store"}
    if isinstance(error, RateLimitedError | ServerDrainingError):
        headers["retry-after"] = str(error.retry_after)
    if isinstance(error, AuthenticationError):
        headers["www-authenticate"] = "Bearer"
    return Response(
        json_bytes(error.to_wire()), error.status, headers, media_type="application/json"
    )


async def handle_feature_planner_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FeaturePlannerError)
    if isinstance(exc, StoreUnavailableError):
        request.app.state.planner.service.metrics.store_errors.inc()
    return error_response(exc)


async def handle_unexpected_error(request: Request, exc: Exception) -> Response:
    """A bug: logged with its traceback here, answered without one."""
    logger.exception("unhandled error in %s %s", request.method, request.url.path)
    body = {"success": False, "error": {"code": "INTERNAL_ERROR", "message": "Internal error"}}
    return Response(json_bytes(body), 500, media_type="application/json")


class EventStreamResponse(Response):
    """Writes a ``Subscriber``'s chunks as they come; ends with the job or the client.

    One extra task per connection waits for the client to go away, so that a disconnect
    is noticed at once (it frees the user's stream slot and starts the orphan timer)
    rather than at the next write.
    """

    media_type = "text/event-stream"

    def __init__(self, subscriber: Subscriber) -> None:
        self.status_code = 200
        self.background = None
        self.body = b""
        self.init_headers({**STREAM_HEADERS, "content-type": "text/event-stream; charset=utf-8"})
        # Response.init_headers adds content-length for a bodiless response; a stream has none.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.subscriber = subscriber

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        subscriber = self.subscriber
        watcher = asyncio.get_running_loop().create_task(_close_on_disconnect(receive, subscriber))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            while (chunk := await subscriber.next_chunk()) is not None:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if not subscriber.closed:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away mid-write
        finally:
            watcher.cancel()
            subscriber.close()


async def _close_on_disconnect(receive: Receive, subscriber: Subscriber) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        while (await receive())["type"] != "http.disconnect":
            pass
        subscriber.close()

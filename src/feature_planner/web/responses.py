"""Responses: JSON envelopes, errors mapped to HTTP in one place, and the event stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..errors import (
    FeaturePlannerError,
    InternalError,
    JobForbiddenError,
    MethodNotAllowedError,
    RouteNotFoundError,
    StoreUnavailableError,
)
from ..jobs.relay import Subscriber

__all__ = [
    "EventStreamResponse",
    "error_response",
    "handle_feature_planner_error",
    "handle_http_exception",
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
    """The answer to ``error``: its status, headers and body, all as its class says."""
    return Response(
        json_bytes(error.to_wire()), error.status, error.headers(), media_type="application/json"
    )


async def handle_feature_planner_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FeaturePlannerError)
    if isinstance(exc, StoreUnavailableError):
        request.app.state.planner.service.metrics.store_errors.inc()
    elif isinstance(exc, JobForbiddenError) and exc.caller is not None:
        route = f"{request.method} {request.url.path}"
        logger.warning(
            "user %s was refused job %s of user %s on %s",
            exc.caller,
            exc.job_id,
            exc.owner,
            route,
            extra={"user_id": exc.caller, "owner_id": exc.owner, "job_id": exc.job_id},
        )
    return error_response(exc)


async def handle_unexpected_error(request: Request, exc: Exception) -> Response:
    """A bug: logged with its traceback here, answered without one."""
    logger.exception("unhandled error in %s %s", request.method, request.url.path)
    return error_response(InternalError())


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """What the router and the static files refuse: no such route, or no such method."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        allow = (exc.headers or {}).get("Allow", "")
        return error_response(MethodNotAllowedError(m.strip() for m in allow.split(",")))
    if exc.status_code == 404:
        return error_response(RouteNotFoundError())
    # A static file that cannot be read (Starlette answers 401): the server's fault.
    return await handle_unexpected_error(request, exc)


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

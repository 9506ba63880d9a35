"""Refuse absurd requests before any route sees them.

uvicorn hands the app whatever the client sent: a megabyte of path, 64 KiB headers, NUL
bytes. Routes would mostly cope, but a 4xx here is certain, cheap and the same everywhere.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import (
    BadRequestError,
    FeaturePlannerError,
    HeadersTooLargeError,
    UriTooLongError,
)
from .responses import error_response

__all__ = ["GUARD_ERRORS", "MAX_HEADER_BYTES", "MAX_PATH_CHARS", "RequestGuard"]

MAX_PATH_CHARS = 2048
MAX_QUERY_BYTES = 8192
# Room for an oversized credential to reach authentication and get its 401.
MAX_HEADER_BYTES = 128 * 1024

# What the guard answers with, before any route: every route may answer these too.
GUARD_ERRORS: tuple[type[FeaturePlannerError], ...] = (
    BadRequestError,
    UriTooLongError,
    HeadersTooLargeError,
)


class RequestGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = _problem(scope)
            if problem is not None:
                await error_response(problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _problem(scope: Scope) -> FeaturePlannerError | None:
    path: str = scope["path"]
    query: bytes = scope["query_string"]
    if len(path) > MAX_PATH_CHARS or len(query) > MAX_QUERY_BYTES:
        return UriTooLongError(
            f"The path must be at most {MAX_PATH_CHARS} characters "
            f"and the query at most {MAX_QUERY_BYTES} bytes"
        )
    if "\x00" in path or b"%00" in query or b"\x00" in query:
        return BadRequestError("The request's path or query contains a NUL byte")
    size = 0
    for name, value in scope["headers"]:
        size += len(name) + len(value)
        if b"\x00" in value:
            return BadRequestError("A request header contains a NUL byte")
    if size > MAX_HEADER_BYTES:
        return HeadersTooLargeError(
            f"The request headers must total at most {MAX_HEADER_BYTES // 1024} KiB"
        )
    return None

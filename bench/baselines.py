"""Baselines B0, B1 and B2, measured in the same run as the service (BENCHMARKS.md).

B0: a bare ASGI app answering the create POST - the HTTP ceiling on this machine.
B1: a Starlette hello-world POST - the framework ceiling for the create call.
B2: a raw StreamingResponse of SSE events - the SSE write ceiling. ``GET /stream?events=N``
    is the firehose: pre-framed events as fast as the socket takes them, so that writes
    coalesce. ``GET /paced?events=N&interval_ms=I`` writes one stamped event per tick of
    the same shared clock the service's benchmark streams wait on: the same write pattern
    as a delta cell, with nothing else around it.
Run with: uvicorn bench.baselines:b0 (b1, b2). N0, the naive port, is ``bench.naive``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .clock import SharedClock

__all__ = ["FRAME", "b0", "b1", "b2"]

API = "/api/feature-planner/suggest-feature"
BODY = b'{"success":true}'
FRAME = b'id: 1\nevent: delta\ndata: {"text":"0123456789abcdef","totalLength":16,"timestamp":0}\n\n'


async def b0(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


async def hello(request: Request) -> Response:
    await request.body()
    return Response(BODY, 201, media_type="application/json")


async def firehose(request: Request) -> Response:
    events = int(request.query_params.get("events", "2000"))

    async def frames() -> AsyncIterator[bytes]:
        for _ in range(events):
            yield FRAME

    return StreamingResponse(frames(), media_type="text/event-stream")


_clocks: dict[float, SharedClock] = {}


async def paced(request: Request) -> Response:
    events = int(request.query_params["events"])
    interval = float(request.query_params["interval_ms"]) / 1000
    clock = _clocks.setdefault(interval, SharedClock(interval))

    async def frames() -> AsyncIterator[bytes]:
        for n in range(1, events + 1):
            await clock.wait()
            stamp = time.monotonic_ns()
            yield b'id: %d\nevent: delta\ndata: {"text":"%d:[%d] streamed"}\n\n' % (n, stamp, n - 1)
        yield b"id: %d\nevent: complete\ndata: {}\n\n" % (events + 1)

    return StreamingResponse(frames(), media_type="text/event-stream")


b1 = Starlette(routes=[Route(API, hello, methods=["POST"])])
b2 = Starlette(routes=[Route("/stream", firehose), Route("/paced", paced)])

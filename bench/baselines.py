"""Baselines measured in the same run as the service (BENCHMARKS.md).

B1: a Starlette hello-world POST — the framework ceiling for the create call.
B2: one raw StreamingResponse firehose of pre-framed SSE events — the SSE write ceiling.
Run with: uvicorn bench.baselines:b1 / bench.baselines:b2
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

EVENTS = int(os.environ.get("BENCH_EVENTS", "2000"))
FRAME = b'id: 1\nevent: delta\ndata: {"text":"0123456789abcdef","totalLength":16,"timestamp":0}\n\n'


async def hello(request: Request) -> Response:
    await request.body()
    return Response(b'{"success":true}', 201, media_type="application/json")


async def firehose(request: Request) -> Response:
    async def events() -> AsyncIterator[bytes]:
        for _ in range(EVENTS):
            yield FRAME

    return StreamingResponse(events(), media_type="text/event-stream")


b1 = Starlette(routes=[Route("/api/feature-planner/suggest-feature", hello, methods=["POST"])])
b2 = Starlette(routes=[Route("/stream", firehose)])

"""``GET /__bench__``: the server process's asyncio task count, for T10 and T12.

Only the process itself can count its tasks (RSS, CPU and open files are read from
``/proc``), so the benchmark wraps the service's app in ``with_probe``.
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["PROBE_PATH", "with_probe"]

PROBE_PATH = "/__bench__"


def with_probe(app: ASGIApp) -> ASGIApp:
    """``app``, plus ``GET /__bench__`` answering ``{"tasks": N}``."""

    async def probed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PROBE_PATH:
            body = json.dumps({"tasks": len(asyncio.all_tasks())}).encode()
            headers = [(b"content-type", b"application/json")]
            headers.append((b"content-length", b"%d" % len(body)))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return probed

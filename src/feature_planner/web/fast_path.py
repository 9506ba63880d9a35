"""The hot routes without the framework's layers.

Every request through FastAPI passes Starlette's error and exception middleware, its body
size wrapper and the router's route-by-route matching: together more than the create call
itself costs. The three routes a job's life is made of — create, stream, cancel — are
matched here by a string comparison and called directly, with the same handlers and the
same error mapping; everything else goes on to the app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import FeaturePlannerError
from .responses import handle_feature_planner_error, handle_unexpected_error

__all__ = ["FastPath"]

Handler = Callable[[Request], Awaitable[Response]]


class FastPath:
    def __init__(
        self,
        app: ASGIApp,
        *,
        collection: str,
        create: Handler,
        stream: Handler,
        cancel: Handler,
    ) -> None:
        self.app = app
        self._collection = collection
        self._item_prefix = collection + "/"
        self._create = create
        self._by_method = {"GET": stream, "DELETE": cancel}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            handler = self._match(scope)
            if handler is not None:
                await _serve(handler, scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _match(self, scope: Scope) -> Handler | None:
        path: str = scope["path"]
        method: str = scope["method"]
        if path == self._collection:
            return self._create if method == "POST" else None
        if path.startswith(self._item_prefix):
            job_id = path[len(self._item_prefix) :]
            handler = self._by_method.get(method)
            if handler is not None and job_id and "/" not in job_id:
                scope["path_params"] = {"job_id": job_id}
                return handler
        return None


async def _serve(handler: Handler, scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive)
    try:
        response = await handler(request)
    except FeaturePlannerError as exc:
        response = await handle_feature_planner_error(request, exc)
    except Exception as exc:
        response = await handle_unexpected_error(request, exc)
    await response(scope, receive, send)

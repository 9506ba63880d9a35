"""The hot routes without the framework's layers.

Every request through the app passes Starlette's error and exception middleware and the
router's route-by-route matching: together more than the create call itself costs. The
routes a job's life is made of — create, stream, cancel: the table's ``fast`` rows — are
matched here by a dictionary lookup or a prefix and called directly, with the same handlers
and the same error mapping; everything else goes on to the app.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import FeaturePlannerError
from .responses import handle_feature_planner_error, handle_unexpected_error
from .routing import BoundHandler

__all__ = ["FastPath"]


class FastPath:
    """``routes``: ``(method, path, handler)``; a path is literal, or ends with its only
    parameter (``/jobs/{job_id}``), which matches one non-empty segment."""

    def __init__(self, app: ASGIApp, routes: Iterable[tuple[str, str, BoundHandler]]) -> None:
        self.app = app
        self._exact: dict[tuple[str, str], BoundHandler] = {}
        self._items: dict[tuple[str, str], dict[str, BoundHandler]] = {}
        for method, path, handler in routes:
            prefix, brace, rest = path.partition("{")
            if not brace:
                self._exact[path, method] = handler
                continue
            name, close, tail = rest.partition("}")
            if not close or tail or "/" in name:
                raise ValueError(f"the fast path serves one trailing parameter, not {path!r}")
            self._items.setdefault((prefix, name), {})[method] = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            handler = self._match(scope)
            if handler is not None:
                await _serve(handler, scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _match(self, scope: Scope) -> BoundHandler | None:
        path: str = scope["path"]
        method: str = scope["method"]
        handler = self._exact.get((path, method))
        if handler is not None:
            return handler
        for (prefix, name), by_method in self._items.items():
            if path.startswith(prefix):
                value = path[len(prefix) :]
                handler = by_method.get(method)
                if handler is not None and value and "/" not in value:
                    scope["path_params"] = {name: value}
                    return handler
        return None


async def _serve(handler: BoundHandler, scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive)
    try:
        response = await handler(request)
    except FeaturePlannerError as exc:
        response = await handle_feature_planner_error(request, exc)
    except Exception as exc:
        response = await handle_unexpected_error(request, exc)
    await response(scope, receive, send)

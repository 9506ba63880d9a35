"""The router, derived from the route table: one Starlette ``Route`` per path."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .endpoint import Endpoint, Handler
from .state import AppState

__all__ = ["BoundHandler", "bind", "routes_of"]

BoundHandler = Callable[[Request], Awaitable[Response]]


def bind(handler: Handler, state: AppState) -> BoundHandler:
    """``handler`` for one app: it is called with that app's state."""
    return functools.partial(handler, state)


def routes_of(endpoints: Iterable[Endpoint], state: AppState) -> list[Route]:
    """Serve ``endpoints`` as one route per path, dispatching on the method.

    One route per path makes a 405 list every method the path has; and no implicit HEAD:
    a HEAD on a job's stream would otherwise run GET's handler, which starts the job.
    """
    by_path: dict[str, dict[str, BoundHandler]] = {}
    for endpoint in endpoints:
        by_path.setdefault(endpoint.path, {})[endpoint.method] = bind(endpoint.handler, state)
    routes = []
    for path, handlers in by_path.items():
        route = Route(path, _dispatcher(handlers), methods=list(handlers))
        if "HEAD" not in handlers:
            assert route.methods is not None
            route.methods.discard("HEAD")
        routes.append(route)
    return routes


def _dispatcher(handlers: dict[str, BoundHandler]) -> BoundHandler:
    async def dispatch(request: Request) -> Response:
        return await handlers[request.method](request)

    return dispatch

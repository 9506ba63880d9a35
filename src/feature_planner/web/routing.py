"""The API's own routes: plain Starlette routes, one per path, dispatching on the method."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["Handler", "add_routes"]

Handler = Callable[[Request], Awaitable[Response]]


def add_routes(app: FastAPI, routes: Iterable[tuple[str, str, Handler]]) -> None:
    """Serve ``(method, path, handler)`` as one route per path.

    One route per path makes a 405 list every method the path has; and no implicit HEAD:
    a HEAD on a job's stream would otherwise run GET's handler, which starts the job.
    """
    by_path: dict[str, dict[str, Handler]] = {}
    for method, path, handler in routes:
        by_path.setdefault(path, {})[method] = handler
    for path, handlers in by_path.items():
        route = Route(path, _dispatcher(handlers), methods=list(handlers))
        if "HEAD" not in handlers:
            assert route.methods is not None
            route.methods.discard("HEAD")
        app.router.routes.append(route)


def _dispatcher(handlers: dict[str, Handler]) -> Handler:
    async def dispatch(request: Request) -> Response:
        return await handlers[request.method](request)

    return dispatch

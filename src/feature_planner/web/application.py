"""``PlannerApp``: Starlette, serving the route table.

The router, the fast path and the OpenAPI document are made from the same rows
(``routes.py``). Every request first passes the layers every request needs (a request id,
the request guard, CORS when configured); the fast rows are answered right after them,
ahead of Starlette's own middleware and router.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp, Lifespan

from ..errors import FeaturePlannerError
from .endpoint import Endpoint
from .fast_path import FastPath
from .guard import RequestGuard
from .openapi import Document
from .pages import StaticAssets
from .request_id import RequestIdMiddleware
from .responses import handle_feature_planner_error, handle_http_exception, handle_unexpected_error
from .routing import bind, routes_of
from .state import AppState

__all__ = ["AroundRequests", "PlannerApp"]

# Wraps the whole middleware stack (given the app's routes, to name what it wraps).
AroundRequests = Callable[[ASGIApp, Sequence[BaseRoute]], ASGIApp]


class PlannerApp(Starlette):
    """``app.state.planner`` is the ``AppState``; ``app.openapi()`` the document.
    ``around`` wraps every layer (request tracing), outside the request id and the guard."""

    def __init__(
        self,
        routes: Sequence[Endpoint],
        state: AppState,
        *,
        cors_origins: Sequence[str],
        lifespan: Lifespan[Any],
        info: dict[str, str],
        around: AroundRequests | None = None,
    ) -> None:
        static = resources.files("feature_planner.web").joinpath("static")
        super().__init__(
            routes=[
                *routes_of(routes, state),
                Mount("/static", StaticAssets(directory=str(static)), name="static"),
            ],
            exception_handlers={
                FeaturePlannerError: handle_feature_planner_error,
                HTTPException: handle_http_exception,
                Exception: handle_unexpected_error,
            },
            lifespan=lifespan,
        )
        self.state.planner = state
        self.state.openapi = Document(routes, state, info)
        self._fast_routes = [
            (route.method, route.path, bind(route.handler, state)) for route in routes if route.fast
        ]
        self._cors_origins = list(cors_origins)
        self._around = around

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI document (``GET /openapi.json``), made on first use."""
        document: Document = self.state.openapi
        return document.json()

    def build_middleware_stack(self) -> ASGIApp:
        app: ASGIApp = FastPath(super().build_middleware_stack(), self._fast_routes)
        if self._cors_origins:
            app = CORSMiddleware(
                app,
                allow_origins=self._cors_origins,
                allow_methods=["GET", "POST", "PUT", "DELETE"],
                allow_headers=["authorization", "content-type", "last-event-id"],
                expose_headers=["location", "retry-after"],
                max_age=600,
            )
        stack: ASGIApp = RequestIdMiddleware(RequestGuard(app))
        return self._around(stack, self.router.routes) if self._around else stack

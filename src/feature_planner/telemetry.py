"""Optional telemetry: Sentry error reports and OpenTelemetry traces.

Each is switched on by its standard environment variable and costs nothing when that is unset:
its package is not imported, no middleware is added, no hook is given to the job service.
``Telemetry.from_environment()`` reads the variables and sets the SDKs up; the app passes its
``trace_run`` to the job service, and ``around_requests`` and ``around_lifespan`` to the app,
where each is made.

- ``SENTRY_DSN``: ``sentry_sdk.init()`` with its default integrations (unhandled errors and
  ``logger.exception`` records are reported; the SDK reads ``SENTRY_ENVIRONMENT`` and
  ``SENTRY_RELEASE`` itself). ``send_default_pii`` keeps its default, off; besides, every event
  leaves without request headers, cookies, query strings, bodies or local variables, and with
  credentials in its text redacted.
- ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (unless
  ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``): a span per request, named
  after its route, with no query string (stream and login tokens travel there), and a span per
  job run with its id and outcome, exported over OTLP/HTTP in batches. The exporter, sampler,
  batching and resource follow the standard ``OTEL_*`` variables; ``service.name`` is
  ``OTEL_SERVICE_NAME``, by default ``feature-planner``.

Either sends what it still holds when the app shuts down. A variable set without its package
installed is one warning naming the extra to install; the app runs on without it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from . import __version__
from .logs import redact
from .models import JobState

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, StatusCode, Tracer
    from sentry_sdk._types import Breadcrumb, BreadcrumbHint, Event, Hint
    from starlette.routing import BaseRoute
    from starlette.types import ASGIApp, Lifespan, Message, Receive, Scope, Send

__all__ = ["RunTracer", "Telemetry", "TracedRun"]

logger = logging.getLogger("feature_planner.telemetry")

_FLUSH_S = 5.0  # at shutdown, the longest wait for buffered reports and spans to leave


class TracedRun(Protocol):
    """What a run's span records of it (the job service's ``JobRun``)."""

    @property
    def job_id(self) -> str: ...
    @property
    def state(self) -> JobState: ...
    @property
    def code(self) -> str | None: ...


RunTracer = Callable[[TracedRun, Coroutine[Any, Any, None]], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class Telemetry:
    """What the environment switched on.

    ``trace_run`` (None when tracing is off) wraps each job run in a span: the job service
    takes it. ``around_requests`` traces the app's requests, when tracing is on, and
    ``around_lifespan`` sends what is still buffered when the app shuts down.
    """

    trace_run: RunTracer | None = None
    _tracing: _Tracing | None = None
    _flushes: Sequence[Callable[[], object]] = ()

    @classmethod
    def from_environment(cls) -> Telemetry:
        """Set up what the environment asks for (``create_app`` calls it once per app)."""
        environ = os.environ
        flushes: list[Callable[[], object]] = []
        if environ.get("SENTRY_DSN"):
            flushes += _report_errors()
        endpoint = _traces_endpoint_variable(environ)
        tracing = _set_up_tracing(endpoint) if endpoint is not None else None
        if tracing is None:
            return cls(None, None, flushes)
        provider = tracing.provider
        flushes.append(lambda: provider.force_flush(round(_FLUSH_S * 1000)))
        spans = _JobSpans(provider.get_tracer("feature_planner", __version__), tracing.error_status)
        return cls(spans, tracing, flushes)

    def around_requests(self, stack: ASGIApp, routes: Sequence[BaseRoute]) -> ASGIApp:
        """The app's whole middleware ``stack`` with a span per request around it, when
        tracing is on (``routes``: the app's, to name each span after its route). Outside
        every layer: the app puts layers, and the routes it answers itself, in front of
        Starlette's middleware, where ``add_middleware`` would not reach them."""
        tracing = self._tracing
        if tracing is None:
            return stack
        return _TracedRequests(stack, routes, tracing)

    def around_lifespan(self, inner: Lifespan[Any]) -> Lifespan[Any]:
        """``inner``, then what is still buffered is sent, when anything is on: after the
        app's own shutdown (its runs have ended), for uvicorn ends a process it stopped on
        SIGTERM by that signal, so no ``atexit`` handler, the SDKs' own flush included, runs.
        """
        flushes = self._flushes
        if not flushes:
            return inner
        import anyio.to_thread

        def flush() -> None:
            for each in flushes:
                each()

        @asynccontextmanager
        async def lifespan(app: Any) -> AsyncIterator[Any]:
            try:
                async with inner(app) as state:
                    yield state
            finally:
                await anyio.to_thread.run_sync(flush)

        return lifespan


# -- Sentry ------------------------------------------------------------------------------


def _report_errors() -> Sequence[Callable[[], object]]:
    """Set up Sentry's client (once per process); what flushes it."""
    try:
        import sentry_sdk
    except ImportError:
        logger.warning(
            "SENTRY_DSN is set, but sentry-sdk is not installed: errors are not reported. "
            "Install the extra: pip install 'feature-planner[sentry]'"
        )
        return []
    flush = [lambda: sentry_sdk.flush(timeout=_FLUSH_S)]
    if sentry_sdk.get_client().is_active():
        return flush  # create_app may run more than once in a process
    # The DSN, environment and release come from SENTRY_DSN, SENTRY_ENVIRONMENT and
    # SENTRY_RELEASE. send_default_pii is left unset, which is off (sentry-sdk 2.75 warns
    # that passing it at all is deprecated).
    sentry_sdk.init(
        include_local_variables=False,  # a frame's locals can hold a token under any name
        max_request_body_size="never",
        before_send=_scrub_event,
        before_send_transaction=_scrub_event,
        before_breadcrumb=_scrub_breadcrumb,
    )
    return flush


# Keys whose values never leave the process, wherever they are in an event or breadcrumb.
_DROPPED_KEYS = frozenset(
    {"headers", "cookies", "query_string", "http.query", "url.query", "http.fragment"}
)
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)[^/\s@]*@", re.IGNORECASE)


def _scrub_event(event: Event, hint: Hint) -> Event:
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("data", None)
        request.pop("env", None)
    return cast("Event", _scrubbed(event))


def _scrub_breadcrumb(crumb: Breadcrumb, hint: BreadcrumbHint) -> Breadcrumb:
    return cast("Breadcrumb", _scrubbed(crumb))


def _scrubbed(value: Any, key: str = "") -> Any:
    if isinstance(value, str):
        if key == "url":
            value = value.partition("?")[0]
        return _URL_USERINFO.sub(r"\g<scheme>[redacted]@", redact(value))
    if isinstance(value, dict):
        return {k: _scrubbed(v, k) for k, v in value.items() if str(k).lower() not in _DROPPED_KEYS}
    if isinstance(value, list | tuple):
        return [_scrubbed(item) for item in value]
    return value


# -- OpenTelemetry -----------------------------------------------------------------------


def _traces_endpoint_variable(environ: Mapping[str, str]) -> str | None:
    """The variable that asks for traces, or None when they are not asked for."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return None
    for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        if environ.get(name):
            return name
    return None


@dataclass(frozen=True, slots=True)
class _Tracing:
    """What tracing needs of OpenTelemetry, imported once, where its absence is handled."""

    provider: TracerProvider
    middleware: Any  # OpenTelemetry's ASGI middleware class (untyped)
    current_span: Callable[[], Span]
    excluded_urls: Any  # OTEL_PYTHON_(ASGI_)EXCLUDED_URLS, as the middleware takes them
    error_status: StatusCode


def _set_up_tracing(variable: str) -> _Tracing | None:
    """The process's span provider (set up the first time) and the ASGI middleware; None,
    after one warning, when OpenTelemetry is not installed."""
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.asgi import (  # type: ignore[import-untyped,unused-ignore]
            OpenTelemetryMiddleware,
        )
        from opentelemetry.sdk.resources import OTELResourceDetector, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.trace import StatusCode
        from opentelemetry.util.http import get_excluded_urls
    except ImportError as exc:
        logger.warning(
            "%s is set, but %s is not installed: requests are not traced. "
            "Install the extra: pip install 'feature-planner[otel]'",
            variable,
            exc.name or "OpenTelemetry",
        )
        return None

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        # Not yet configured in this process (by an earlier app, or by the operator's own
        # OpenTelemetry setup, whose provider is then used as it is).
        env = OTELResourceDetector().detect().attributes
        resource = Resource.create(
            {"service.name": "feature-planner", "service.version": __version__, **env}
        )
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    return _Tracing(
        provider,
        OpenTelemetryMiddleware,
        trace.get_current_span,
        get_excluded_urls("ASGI"),
        StatusCode.ERROR,
    )


# Where the query string waits while OpenTelemetry's middleware looks at the request.
_HIDDEN_QUERY = "feature_planner.hidden_query_string"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _TracedRequests:
    """OpenTelemetry's ASGI middleware: a span per request (none per message sent), named
    after its route (``GET /api/feature-planner/suggest-feature/{job_id}``). The middleware
    sees each request without its query string, so no attribute can carry a token from it."""

    def __init__(
        self,
        app: ASGIApp,
        routes: Sequence[BaseRoute],
        tracing: _Tracing,
    ) -> None:
        self.app: ASGIApp = tracing.middleware(
            _InsideTheSpan(app, routes, tracing.current_span),
            excluded_urls=tracing.excluded_urls,
            default_span_details=_span_details,
            tracer_provider=tracing.provider,
            exclude_spans=["receive", "send"],
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = scope.get("query_string") if scope["type"] == "http" else None
        if query:
            scope = {**scope, "query_string": b"", _HIDDEN_QUERY: query}
        await self.app(scope, receive, send)


class _InsideTheSpan:
    """The application gets its query string back; the span, once the response starts, the
    name of the route that answered."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute], current_span: Any) -> None:
        from starlette.routing import Match

        self.app = app
        self._routes = routes
        self._current_span = current_span
        self._full = Match.FULL

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _HIDDEN_QUERY in scope:
            scope = {**scope, "query_string": scope[_HIDDEN_QUERY]}
            del scope[_HIDDEN_QUERY]
        span: Span = self._current_span()

        async def send_named(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = self._route(scope)
                if route is not None:
                    span.set_attribute("http.route", route)
                    span.update_name(f"{_method(scope)} {route}")
            await send(message)

        await self.app(scope, receive, send_named)

    def _route(self, scope: Scope) -> str | None:
        """The template of the route that answered: the router records it in the scope; the
        routes the app answers in front of the router are looked up among the app's."""
        path = getattr(scope.get("route"), "path", None)
        if not isinstance(path, str):
            route = next((r for r in self._routes if r.matches(scope)[0] is self._full), None)
            path = getattr(route, "path", None)
        return path if isinstance(path, str) else None


def _span_details(scope: Scope) -> tuple[str, dict[str, Any]]:
    """The name a request's span starts with: its method (the route is not known yet)."""
    return _method(scope), {}


def _method(scope: Scope) -> str:
    method = str(scope.get("method", ""))
    return method if method in _METHODS else "HTTP"


class _JobSpans:
    """``Telemetry.trace_run``: a span around each job run, with its id and outcome."""

    def __init__(self, tracer: Tracer, error_status: StatusCode) -> None:
        self._tracer = tracer
        self._error = error_status

    async def __call__(self, run: TracedRun, execution: Coroutine[Any, Any, None]) -> None:
        with self._tracer.start_as_current_span(
            "job run", attributes={"feature_planner.job.id": run.job_id}
        ) as span:
            try:
                await execution
            finally:
                span.set_attribute("feature_planner.job.outcome", run.state.value)
                if run.code is not None:
                    span.set_attribute("feature_planner.job.code", run.code)
                if run.state is JobState.FAILED:
                    span.set_status(self._error, run.code)

"""``create_app``: the one place that reads the settings and picks the concrete parts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import jwt
import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp

from .. import __version__
from ..agent.base import Provider
from ..agent.providers import build_provider
from ..agents import AgentStore
from ..auth import (
    ApiKeyAuthenticator,
    Authenticator,
    ClaimOnce,
    JwksCache,
    LocalAuthenticator,
    OidcAuthenticator,
    OidcOptions,
    StreamTokens,
)
from ..auth.oidc import public_key_jwk
from ..config import Settings, load_settings
from ..errors import ConfigurationError, FeaturePlannerError
from ..jobs.memory import MemoryJobStore
from ..jobs.redis_store import RedisJobStore
from ..jobs.service import JobService, ServiceLimits
from ..jobs.store import JobStore, JobTTLs
from ..limits import (
    CreateLimiter,
    MemoryCreateLimiter,
    MemoryStreamLimiter,
    RedisCreateLimiter,
    RedisStreamLimiter,
    StreamLimiter,
)
from ..logs import redact_access_log
from ..redis_client import connect_redis, guarded
from ..telemetry import instrument
from . import api, openapi, pages
from .agent_api import AgentApi
from .fast_path import FastPath
from .guard import RequestGuard
from .request_id import RequestIdMiddleware
from .responses import handle_feature_planner_error, handle_unexpected_error, json_bytes
from .shutdown import on_shutdown_signal
from .state import AppState

__all__ = ["create_app"]


def create_app(
    settings: Settings | None = None,
    *,
    store: JobStore | None = None,
    provider: Provider | None = None,
) -> FastAPI:
    """The application. ``store`` and ``provider`` replace the ones the settings choose."""
    settings = settings or load_settings()
    state = _build_state(settings, store, provider)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redact_access_log()
        await state.agents.start()
        await state.service.start()
        # With a shared store, other processes can serve this one's streams at once.
        shared = settings.redis_url is not None
        restore_signals = on_shutdown_signal(
            lambda: state.service.begin_drain(hand_off_streams=shared)
        )
        try:
            yield
        finally:
            restore_signals()
            state.service.begin_drain(hand_off_streams=shared)
            await state.service.finish_runs(settings.drain_s)
            await state.service.stop()
            await state.agents.close()
            await state.auth.close()

    job_routes = api.PlannerApi(state)
    app = PlannerApp(
        job_routes,
        settings.cors_origins,
        title="Feature Planner",
        version=__version__,
        description="AI feature suggestions for a page or component, streamed in two phases.",
        lifespan=lifespan,
        # Swagger UI would load scripts from a CDN and run inline ones, which the pages'
        # CSP forbids; the schema itself stays at /openapi.json.
        docs_url=None,
        redoc_url=None,
        # Built-in OpenTelemetry costs per request even with no exporter configured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.planner = state
    app.add_exception_handler(FeaturePlannerError, handle_feature_planner_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(Exception, handle_unexpected_error)
    job_routes.mount(app)
    AgentApi(state, state.agents).mount(app)
    app.include_router(pages.router)
    openapi.install_security(app)
    static = resources.files("feature_planner.web").joinpath("static")
    app.mount("/static", pages.StaticAssets(directory=str(static)), name="static")
    instrument(app)
    return app


class PlannerApp(FastAPI):
    """FastAPI, with the layers every request needs put in front of it, and the hot job
    routes answered there (``FastPath``) without FastAPI's own middleware and router."""

    def __init__(self, job_routes: api.PlannerApi, cors_origins: list[str], **options: Any):
        super().__init__(**options)
        self._job_routes = job_routes
        self._cors_origins = cors_origins

    def build_middleware_stack(self) -> ASGIApp:
        routes = self._job_routes
        app: ASGIApp = FastPath(
            super().build_middleware_stack(),
            collection=api.PREFIX + "/suggest-feature",
            create=routes.create_job,
            stream=routes.stream_job,
            cancel=routes.cancel_job,
        )
        if self._cors_origins:
            app = CORSMiddleware(
                app,
                allow_origins=self._cors_origins,
                allow_methods=["GET", "POST", "PUT", "DELETE"],
                allow_headers=["authorization", "content-type", "last-event-id"],
                expose_headers=["location", "retry-after"],
                max_age=600,
            )
        return RequestIdMiddleware(RequestGuard(app))


def _build_state(settings: Settings, store: JobStore | None, provider: Provider | None) -> AppState:
    ttls = JobTTLs(
        pending=settings.pending_ttl_s,
        completed=settings.completed_ttl_s,
        finished=settings.finished_ttl_s,
    )
    client = (
        connect_redis(settings.redis_url, settings.redis_timeout_s) if settings.redis_url else None
    )
    stream_limiter: StreamLimiter
    create_limiter: CreateLimiter
    limit, window_s = settings.create_limit, settings.create_window_s
    if client is not None and settings.redis_url is not None:
        store = store or RedisJobStore(
            client,
            ttls,
            url=settings.redis_url,
            timeout_s=settings.redis_timeout_s,
            runner_lease_s=settings.runner_lease_s,
            watcher_lease_s=settings.stream_lease_s,
            running_ttl_s=settings.time_limit_s + settings.finished_ttl_s,
            outage_grace_s=settings.store_outage_grace_s,
            maxlen=settings.redis_stream_maxlen,
        )
        stream_limiter = RedisStreamLimiter(
            client, settings.max_streams_per_user, settings.stream_lease_s
        )
        create_limiter = RedisCreateLimiter(limit, window_s, client, settings.redis_url)
    else:
        store = store if store is not None else MemoryJobStore(ttls)
        stream_limiter = MemoryStreamLimiter(settings.max_streams_per_user)
        create_limiter = MemoryCreateLimiter(limit, window_s)
    agents = AgentStore(settings.database_url)
    service = JobService(
        store,
        provider if provider is not None else build_provider(settings),
        settings.repository,
        limits=ServiceLimits(
            throttle_s=settings.throttle_ms / 1000,
            time_limit_s=settings.time_limit_s,
            orphan_grace_s=settings.orphan_grace_s,
            heartbeat_s=settings.heartbeat_s,
            pending_ttl_s=settings.pending_ttl_s,
        ),
        create_limiter=create_limiter,
        stream_limiter=stream_limiter,
        agents=agents.active,
    )
    # Sessions and stream tokens are signed with it: replicas must share it.
    secret_key = settings.signing_key()
    return AppState(
        settings=settings,
        auth=_build_authenticator(settings, secret_key, client),
        stream_tokens=StreamTokens(secret_key, settings.stream_token_ttl_s),
        service=service,
        agents=agents,
        trusted_origins=frozenset(settings.trusted_origins),
    )


def _build_authenticator(
    settings: Settings, secret_key: str, client: aioredis.Redis | None
) -> Authenticator:
    if settings.auth == "api-key":
        return ApiKeyAuthenticator(settings.api_keys)
    if settings.auth == "oidc":
        options = OidcOptions(
            issuer=settings.oidc_issuer or "",
            audience=settings.oidc_audience,
            authorized_parties=frozenset(settings.oidc_authorized_parties),
            algorithms=tuple(settings.oidc_algorithms),
            leeway_s=settings.oidc_leeway_s,
        )
        if settings.oidc_public_key:
            return OidcAuthenticator(options, public_key=_public_key(settings.oidc_public_key))
        jwks = JwksCache(
            settings.jwks_url,
            cooldown_s=settings.oidc_jwks_cooldown_s,
            max_age_s=settings.oidc_jwks_max_age_s,
        )
        return OidcAuthenticator(options, jwks=jwks)
    return LocalAuthenticator(
        {user: token.get_secret_value() for user, token in settings.users.items()},
        secret_key=secret_key,
        session_ttl_s=settings.session_ttl_s,
        claim_once=_claim_once_in_redis(client) if client is not None else None,
    )


def _public_key(value: str) -> jwt.PyJWK:
    """``FEATURE_PLANNER_OIDC_PUBLIC_KEY``: the PEM text itself, or a file that holds it."""
    pem = value if value.lstrip().startswith("-----BEGIN") else _read(Path(value))
    try:
        return public_key_jwk(pem)
    except ValueError as exc:
        raise ConfigurationError(f"FEATURE_PLANNER_OIDC_PUBLIC_KEY: {exc}") from None


def _read(path: Path) -> str:
    try:
        return path.expanduser().read_text()
    except OSError as exc:
        raise ConfigurationError(
            f"FEATURE_PLANNER_OIDC_PUBLIC_KEY: cannot read {path}: {exc.strerror}"
        ) from None


def _claim_once_in_redis(client: aioredis.Redis) -> ClaimOnce:
    """A login token works once across every process that shares the Redis."""

    async def claim_once(token_id: str, ttl_s: int) -> bool:
        created = await guarded(client.set(f"fp:login:{token_id}", 1, nx=True, ex=ttl_s))
        return bool(created)

    return claim_once


async def _http_exception(request: Request, exc: Exception) -> Response:
    """Unknown routes and methods answer in the same envelope as every other error."""
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
    code = codes.get(exc.status_code, "HTTP_ERROR")
    body = {"success": False, "error": {"code": code, "message": str(exc.detail)}}
    return Response(json_bytes(body), exc.status_code, exc.headers, media_type="application/json")

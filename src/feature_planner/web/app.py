"""``create_app``: the one place that reads the settings and picks the concrete parts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import jwt
import redis.asyncio as aioredis

from .. import __version__
from ..agent.base import Provider
from ..agent.providers import build_provider
from ..agent_store import AgentStore
from ..auth import (
    ApiKeyAuthenticator,
    Authenticator,
    ClaimOnce,
    JwksCache,
    LocalAuthenticator,
    OidcAuthenticator,
    OidcOptions,
    ShareTokens,
    StreamTokens,
)
from ..auth.oidc import public_key_jwk
from ..config import ConfigurationError, Settings, load_settings
from ..database import Database
from ..github import GitHubIssues
from ..history import HistoryStore
from ..issue_links import IssueLinks
from ..jobs.budgets import DailyBudget
from ..jobs.idempotency import IdempotencyKeys, MemoryIdempotencyKeys, RedisIdempotencyKeys
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
from ..metrics import Metrics
from ..redis_client import connect_redis, guarded
from ..secret_key import signing_key
from ..telemetry import RunTracer, Telemetry
from .application import PlannerApp
from .routes import ROUTES
from .shutdown import on_shutdown_signal
from .state import AppState

__all__ = ["create_app"]


def create_app(
    settings: Settings | None = None,
    *,
    store: JobStore | None = None,
    provider: Provider | None = None,
) -> PlannerApp:
    """The application. ``store`` and ``provider`` replace the ones the settings choose."""
    settings = settings or load_settings()
    telemetry = Telemetry.from_environment()
    database = Database(settings.database_url)
    state = _build_state(settings, store, provider, telemetry.trace_run, database)

    @asynccontextmanager
    async def lifespan(app: PlannerApp) -> AsyncIterator[None]:
        redact_access_log()
        await database.start()
        await state.history.start()
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
            await state.history.close()
            await database.close()
            await state.auth.close()

    app = PlannerApp(
        ROUTES,
        state,
        cors_origins=settings.cors_origins,
        lifespan=telemetry.around_lifespan(lifespan),
        around=telemetry.around_requests,
        info={
            "title": "Feature Planner",
            "version": __version__,
            "description": "AI feature suggestions for a page or component, streamed in two "
            "phases.",
        },
    )
    return app


def _build_state(
    settings: Settings,
    store: JobStore | None,
    provider: Provider | None,
    trace_run: RunTracer | None,
    database: Database,
) -> AppState:
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
    idempotency: IdempotencyKeys
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
        idempotency = RedisIdempotencyKeys(client)
    else:
        store = store if store is not None else MemoryJobStore(ttls)
        stream_limiter = MemoryStreamLimiter(settings.max_streams_per_user)
        create_limiter = MemoryCreateLimiter(limit, window_s)
        idempotency = MemoryIdempotencyKeys()
    agents = AgentStore(database)
    metrics = Metrics()
    history = HistoryStore(database, retention_days=settings.history_days, metrics=metrics)
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
        history=history,
        idempotency=idempotency,
        agents=agents.active,
        metrics=metrics,
        trace_run=trace_run,
        daily_budget=(
            DailyBudget(history, settings.daily_user_tokens)
            if settings.daily_user_tokens is not None
            else None
        ),
    )
    # Sessions and stream tokens are signed with it: replicas must share it.
    secret_key = signing_key(settings)
    return AppState(
        settings=settings,
        auth=_build_authenticator(settings, secret_key, client),
        stream_tokens=StreamTokens(secret_key, settings.stream_token_ttl_s),
        share_tokens=ShareTokens(secret_key, settings.share_ttl_s),
        service=service,
        agents=agents,
        history=history,
        trusted_origins=frozenset(settings.trusted_origins),
        github=GitHubIssues(
            token=settings.github_token.get_secret_value() if settings.github_token else None,
            repository=settings.github_repository,
            api_url=settings.github_api_url,
            checkout=settings.repository,
        ),
        issue_links=IssueLinks(database),
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

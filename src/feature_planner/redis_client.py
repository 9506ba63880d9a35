"""The Redis client the service uses, and the one place Redis errors become ours."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .errors import StoreUnavailableError

__all__ = ["UNREACHABLE", "connect_redis", "guarded"]

T = TypeVar("T")
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


def connect_redis(url: str, timeout_s: float, *, blocking: bool = False) -> aioredis.Redis:
    """A client that fails fast: one quick retry (a stale pooled connection after a
    restart), never redis-py's default of many retries that stall a call for seconds.

    ``blocking``: one connection of its own with no command timeout, for a blocking XREAD
    (and ``CLIENT UNBLOCK``, which needs that connection's id)."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=None if blocking else timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=10,
        single_connection_client=blocking,
        decode_responses=False,
    )


async def guarded(call: Awaitable[T]) -> T:
    """Await a Redis call; an unreachable Redis becomes ``StoreUnavailableError``."""
    try:
        return await call
    except UNREACHABLE as exc:
        raise StoreUnavailableError from exc

"""Per-user rate limits: jobs created per window, and streams open at once.

In memory by default; in Redis (shared by every process) when a Redis URL is set. Open
streams are counted with leases that the process holding them renews, so a crashed
process frees its users' slots within one lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Callable

import redis.asyncio as aioredis
from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from .errors import RateLimitedError, StoreUnavailableError, TooManyStreamsError
from .jobs import redis_schema as schema
from .redis_client import guarded

__all__ = [
    "CreateLimiter",
    "MemoryCreateLimiter",
    "MemoryStreamLimiter",
    "RedisCreateLimiter",
    "RedisStreamLimiter",
    "StreamLimiter",
]


class CreateLimiter(ABC):
    """At most ``limit`` jobs per user in any ``window_s`` seconds (a moving window)."""

    def __init__(self, limit: int, window_s: int) -> None:
        self.limit = limit
        self.window_s = window_s

    @abstractmethod
    async def hit(self, user_id: str) -> None:
        """Count one creation, or raise ``RateLimitedError`` with the seconds to wait."""


class MemoryCreateLimiter(CreateLimiter):
    """The times of each user's creations in the window, oldest first.

    Not ``limits``' memory storage: its asyncio flavour starts an expiry pass, with a
    thread hop per key, on nearly every hit, which cost more than the rest of a create."""

    _SWEEP_EVERY = 4096  # hits between sweeps of users whose window has emptied

    def __init__(
        self, limit: int, window_s: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(limit, window_s)
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._until_sweep = self._SWEEP_EVERY

    async def hit(self, user_id: str) -> None:
        now = self._clock()
        start = now - self.window_s
        times = self._hits.get(user_id)
        if times is None:
            times = self._hits[user_id] = deque()
        while times and times[0] <= start:
            times.popleft()
        if len(times) >= self.limit:
            raise RateLimitedError(retry_after=max(1, math.ceil(times[0] - start)))
        times.append(now)
        self._until_sweep -= 1
        if self._until_sweep <= 0:
            self._sweep(start)

    def _sweep(self, start: float) -> None:
        self._until_sweep = self._SWEEP_EVERY
        for user_id in [u for u, times in self._hits.items() if times[-1] <= start]:
            del self._hits[user_id]


class RedisCreateLimiter(CreateLimiter):
    """``limits``' moving window in Redis, through the service's own connection pool."""

    def __init__(self, limit: int, window_s: int, client: aioredis.Redis, url: str) -> None:
        super().__init__(limit, window_s)
        scheme, rest = url.split("://", 1)
        uri = {"redis": "async+redis", "rediss": "async+rediss", "unix": "async+redis+unix"}[scheme]
        storage = RedisStorage(
            f"{uri}://{rest}",
            implementation="redispy",
            connection_pool=client.connection_pool,  # type: ignore[arg-type]  # forwarded as-is
        )
        self._item = RateLimitItemPerSecond(limit, window_s)
        self._limiter = MovingWindowRateLimiter(storage)

    async def hit(self, user_id: str) -> None:
        try:
            if await self._limiter.hit(self._item, "create", user_id):
                return
            stats = await self._limiter.get_window_stats(self._item, "create", user_id)
        except (RedisError, OSError) as exc:
            raise StoreUnavailableError from exc
        raise RateLimitedError(retry_after=max(1, math.ceil(stats.reset_time - time.time())))


def _refusal(limit: int) -> TooManyStreamsError:
    return TooManyStreamsError(
        f"You already have {limit} streams open; close one before opening another"
    )


class StreamLimiter(ABC):
    """At most ``limit`` open streams per user."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    @abstractmethod
    async def acquire(self, user_id: str) -> str:
        """A slot for one more stream (its id), or ``TooManyStreamsError``."""

    @abstractmethod
    def release(self, user_id: str, stream_id: str) -> None:
        """Free the slot; never blocks."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Start renewing leases, where there are any."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Stop background work."""


class MemoryStreamLimiter(StreamLimiter):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self._open: Counter[str] = Counter()

    async def acquire(self, user_id: str) -> str:
        if self._open[user_id] >= self.limit:
            raise _refusal(self.limit)
        self._open[user_id] += 1
        return uuid.uuid4().hex

    def release(self, user_id: str, stream_id: str) -> None:
        self._open[user_id] -= 1
        if self._open[user_id] <= 0:
            del self._open[user_id]


class RedisStreamLimiter(StreamLimiter):
    """A sorted set per user of stream leases, scored by expiry; renewed every lease/4."""

    def __init__(self, client: aioredis.Redis, limit: int, lease_s: float) -> None:
        super().__init__(limit)
        self._client = client
        self._lease_ms = max(1, round(lease_s * 1000))
        self._acquire = client.register_script(schema.ACQUIRE_STREAM)
        self._held: dict[str, str] = {}  # stream id -> user id
        self._task: asyncio.Task[None] | None = None

    async def acquire(self, user_id: str) -> str:
        stream_id = uuid.uuid4().hex
        now = time.time_ns() // 1_000_000
        args: list[str | int] = [now, now + self._lease_ms, stream_id, self.limit, self._lease_ms]
        keys = [schema.user_streams_key(user_id)]
        if not await guarded(self._acquire(keys=keys, args=args)):
            raise _refusal(self.limit)
        self._held[stream_id] = user_id
        return stream_id

    def release(self, user_id: str, stream_id: str) -> None:
        self._held.pop(stream_id, None)

        async def forget() -> None:
            with contextlib.suppress(RedisError, OSError):
                await self._client.zrem(schema.user_streams_key(user_id), stream_id)

        asyncio.get_running_loop().create_task(forget())

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._renew_forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self._lease_ms / 4000)
            if not self._held:
                continue
            expiry = time.time_ns() // 1_000_000 + self._lease_ms
            pipe = self._client.pipeline(transaction=False)
            for stream_id, user_id in self._held.items():
                pipe.zadd(schema.user_streams_key(user_id), {stream_id: expiry}, xx=True)
            with contextlib.suppress(RedisError, OSError):
                await pipe.execute()

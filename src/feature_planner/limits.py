"""Per-user rate limits: jobs created per window, and streams open at once."""

from __future__ import annotations

import math
import time
from collections import Counter

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from .errors import RateLimitedError, TooManyStreamsError

__all__ = ["CreateRateLimiter", "StreamLimiter"]


class CreateRateLimiter:
    """At most ``limit`` jobs per user in any ``window_s`` seconds (a moving window)."""

    def __init__(self, limit: int, window_s: int, storage: Storage | None = None) -> None:
        self._item = RateLimitItemPerSecond(limit, window_s)
        self._limiter = MovingWindowRateLimiter(storage or MemoryStorage())

    async def hit(self, user_id: str) -> None:
        """Count one creation, or raise ``RateLimitedError`` with the seconds to wait."""
        if await self._limiter.hit(self._item, "create", user_id):
            return
        stats = await self._limiter.get_window_stats(self._item, "create", user_id)
        raise RateLimitedError(retry_after=math.ceil(stats.reset_time - time.time()))


class StreamLimiter:
    """At most ``limit`` open streams per user in this process."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._open: Counter[str] = Counter()

    def acquire(self, user_id: str) -> None:
        if self._open[user_id] >= self._limit:
            raise TooManyStreamsError(
                f"You already have {self._limit} streams open; close one before opening another"
            )
        self._open[user_id] += 1

    def release(self, user_id: str) -> None:
        self._open[user_id] -= 1
        if self._open[user_id] <= 0:
            del self._open[user_id]

    def open_streams(self, user_id: str) -> int:
        return self._open[user_id]

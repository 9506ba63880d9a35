"""The in-memory create limit: a moving window per user, and no memory kept for users whose
window has emptied."""

from __future__ import annotations

import pytest

from feature_planner.errors import RateLimitedError
from feature_planner.limits import MemoryCreateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_window_moves_with_each_users_oldest_creation() -> None:
    clock = Clock()
    limiter = MemoryCreateLimiter(limit=2, window_s=60, clock=clock)
    await limiter.hit("alice")
    clock.now += 20
    await limiter.hit("alice")
    await limiter.hit("bob")  # users are counted apart
    with pytest.raises(RateLimitedError) as refused:
        await limiter.hit("alice")
    assert refused.value.retry_after == 40  # when the first creation leaves the window
    clock.now += 40
    await limiter.hit("alice")
    with pytest.raises(RateLimitedError) as refused:
        await limiter.hit("alice")
    assert refused.value.retry_after == 20


async def test_users_whose_window_emptied_are_forgotten() -> None:
    clock = Clock()
    limiter = MemoryCreateLimiter(limit=5, window_s=10, clock=clock)
    for n in range(MemoryCreateLimiter._SWEEP_EVERY - 1):
        await limiter.hit(f"user-{n}")
    clock.now += 11
    await limiter.hit("alice")  # the sweep's turn
    assert list(limiter._hits) == ["alice"]

"""One clock for every paced stream of a benchmark server.

BENCHMARKS.md: drive all benchmark streams from one ticking task, so that the producer's own
timers do not dominate. The service's scripted provider, N0's model and B2's paced stream
all wait on it.
"""

from __future__ import annotations

import asyncio

__all__ = ["SharedClock"]


class SharedClock:
    """One timer for every run: ``wait()`` returns one ``interval`` later.

    Waits end on a shared grid of ``interval / phases`` steps, so runs started at different
    moments keep their own phase and the load spreads evenly over the interval instead of
    arriving in one burst per tick. When the process falls behind, the grid catches up.
    """

    def __init__(self, interval: float, phases: int = 10) -> None:
        self._phases = phases
        self._step = interval / phases
        self._due: dict[int, list[asyncio.Future[None]]] = {}
        self._tick = 0
        self._origin = 0.0
        self._timer: asyncio.TimerHandle | None = None

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        if self._timer is None:
            self._origin = loop.time() - self._tick * self._step
            self._schedule(loop)
        waiter = loop.create_future()
        self._due.setdefault(self._tick + self._phases, []).append(waiter)
        await waiter

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = loop.call_at(self._origin + (self._tick + 1) * self._step, self._fire)

    def _fire(self) -> None:
        self._tick += 1
        for waiter in self._due.pop(self._tick, ()):
            if not waiter.done():  # a cancelled run leaves its waiter behind
                waiter.set_result(None)
        if self._due:
            self._schedule(asyncio.get_running_loop())
        else:
            self._timer = None

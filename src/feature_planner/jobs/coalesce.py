"""Delta coalescing: at most one delta per interval, and never a character lost."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["DeltaCoalescer"]


class DeltaCoalescer:
    """Buffers text and publishes it at most once per ``interval`` seconds.

    Text arriving after a quiet period goes out at once; text arriving sooner waits for
    one timer (one per interval, not one per chunk). ``flush`` publishes whatever is
    buffered: the runner calls it before the final event.
    """

    __slots__ = ("_interval", "_last_flush", "_loop", "_parts", "_publish", "_timer")

    def __init__(
        self,
        interval: float,
        publish: Callable[[str], None],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._interval = interval
        self._publish = publish
        self._loop = loop or asyncio.get_running_loop()
        self._parts: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._last_flush = -float("inf")

    def add(self, text: str) -> None:
        if not text:
            return
        self._parts.append(text)
        if self._timer is not None:
            return
        due = self._last_flush + self._interval
        if self._interval <= 0 or self._loop.time() >= due:
            self.flush()
        else:
            self._timer = self._loop.call_at(due, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._parts:
            return
        text = "".join(self._parts)
        self._parts.clear()
        self._last_flush = self._loop.time()
        self._publish(text)

    def close(self) -> None:
        """Drop the pending timer without publishing (the caller flushed already)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

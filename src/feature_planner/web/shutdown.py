"""Hear SIGTERM when it arrives, not when the server has already closed every connection.

uvicorn tells the app it is stopping (lifespan shutdown) only after the open connections
have ended, and a stream lasts as long as its job: too late to hand the streams to another
process. So the app chains its own handler in front of uvicorn's.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["on_shutdown_signal"]

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def on_shutdown_signal(callback: Callable[[], None]) -> Callable[[], None]:
    """Run ``callback`` in the event loop on SIGTERM or SIGINT, then the handler that was
    installed before (uvicorn's, which starts the shutdown). Returns the undo.

    Signal handlers belong to the main thread: elsewhere (a server in a thread) this does
    nothing, and the drain starts at lifespan shutdown instead.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {sig: signal.getsignal(sig) for sig in _SIGNALS}

    def handle(sig: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(callback)
        before = previous[sig]
        if callable(before):
            before(sig, frame)
        elif before == signal.SIG_DFL:
            signal.signal(sig, signal.SIG_DFL)
            signal.raise_signal(sig)

    for sig in _SIGNALS:
        signal.signal(sig, handle)

    def restore() -> None:
        for sig, before in previous.items():
            signal.signal(sig, before)

    return restore

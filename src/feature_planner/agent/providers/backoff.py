"""When to try a failed model call again: exponential backoff with jitter, never sooner
than the server's ``Retry-After``, never longer than a cap."""

from __future__ import annotations

import random
from collections.abc import Mapping

__all__ = ["retry_after_seconds", "retry_delay"]


def retry_delay(attempt: int, base_s: float, cap_s: float, retry_after_s: float | None) -> float:
    """Seconds to wait before retry number ``attempt + 1`` (``attempt`` counts from 0)."""
    delay = base_s * (2.0**attempt) * (0.75 + random.random() / 2)
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)
    return min(delay, cap_s)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The ``Retry-After`` header in seconds, when the server sent a number."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None

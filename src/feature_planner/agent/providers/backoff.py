"""When to try a failed model call again.

Only while the failed attempt has sent no text to the sink: once the user has seen part of
an answer, a retry would show it twice, so the run fails instead. Between attempts:
exponential backoff with jitter, never sooner than the server's ``Retry-After``, never
longer than a cap.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass

from ...errors import ProviderError

__all__ = ["CallFailure", "CallRetries", "broke_off", "retry_after_seconds", "retry_delay"]


@dataclass(frozen=True, slots=True)
class CallFailure:
    """What went wrong with one model call, in the user's terms (never the key)."""

    message: str
    retryable: bool  # rate limits, overload, server errors, lost connections
    retry_after_s: float | None = None  # the server's ``Retry-After``


class CallRetries:
    """The attempts of one model call: make one per call, report each failure to it."""

    def __init__(self, max_retries: int, base_delay_s: float, max_delay_s: float) -> None:
        self._max_retries = max_retries
        self._base_delay_s = base_delay_s
        self._max_delay_s = max_delay_s
        self.attempt = 0  # retries so far

    async def after(self, failure: CallFailure, *, streamed: bool) -> None:
        """Wait before the next attempt; or raise the ``ProviderError`` that ends the run:
        text has streamed (``streamed``), the failure is final, or no retry is left."""
        if streamed:
            raise ProviderError(broke_off(failure.message))
        if failure.retryable and self.attempt < self._max_retries:
            await asyncio.sleep(
                retry_delay(
                    self.attempt, self._base_delay_s, self._max_delay_s, failure.retry_after_s
                )
            )
            self.attempt += 1
            return
        if failure.retryable and self.attempt:
            raise ProviderError(f"{failure.message} (still failing after {self.attempt} retries)")
        raise ProviderError(failure.message)


def broke_off(reason: str) -> str:
    """The message for a failure after text has reached the user."""
    return f"The answer broke off mid-stream: {reason[:1].lower()}{reason[1:]}"


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

"""The daily per-user token budget (``FEATURE_PLANNER_DAILY_USER_TOKENS``), checked at create.

A user's tokens are those of their runs that ended in the last 24 hours, as the history
keeps them (``job_history.tokens``, written when a run ends). Once they pass the budget,
creates (first runs and follow-ups alike: ``JobService`` checks before either) answer 429
``DAILY_BUDGET_EXCEEDED``, with ``Retry-After`` saying when enough of them will be older than
24 hours. Runs still going are not counted: each is bounded by its own ceiling
(``FEATURE_PLANNER_MAX_RUN_TOKENS``), and counts once it ends.

The database down: the check fails closed (503 ``STORE_UNAVAILABLE``). An operator who set
a budget asked for spending to be bounded, and while the history cannot be read it cannot
be written either, so runs started then would never count against anyone.
"""

from __future__ import annotations

import math

from ..errors import DailyBudgetExceededError
from ..events import now_ms
from ..history import HistoryStore

__all__ = ["DAY_MS", "DailyBudget"]

DAY_MS = 86_400_000
# The user's last run may have ended a moment ago, its row still queued (the history is
# written behind): the check waits this long at most for the queue to be written.
_CATCH_UP_S = 1.0


class DailyBudget:
    """``check(user_id)`` raises ``DailyBudgetExceededError`` once the user's tokens of the
    last 24 hours pass ``limit``."""

    def __init__(self, history: HistoryStore, limit: int) -> None:
        if limit < 1:
            raise ValueError("the daily token budget must be at least 1")
        self._history = history
        self.limit = limit

    async def check(self, user_id: str) -> None:
        await self._history.caught_up(_CATCH_UP_S)
        now = now_ms()
        runs = await self._history.tokens_since(user_id, now - DAY_MS)  # oldest first
        used = sum(tokens for _, tokens in runs)
        if used <= self.limit:
            return
        left = used
        retry_at = now + DAY_MS
        for finished_at, tokens in runs:
            left -= tokens
            if left <= self.limit:  # once this run is older than 24 h, the user is under
                retry_at = finished_at + DAY_MS
                break
        raise DailyBudgetExceededError(
            math.ceil((retry_at - now) / 1000),
            f"Your runs of the last 24 hours used {used} tokens, past your daily budget of "
            f"{self.limit} (FEATURE_PLANNER_DAILY_USER_TOKENS); retry in "
            f"{max(1, math.ceil((retry_at - now) / 1000))} s",
        )

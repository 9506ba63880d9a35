"""What the AI providers are configured with (built from ``Settings`` in one place)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AIOptions"]


@dataclass(frozen=True, slots=True)
class AIOptions:
    api_key: str | None
    base_url: str | None
    model: str  # used when the request names none
    allowed_models: tuple[str, ...]
    max_output_tokens: int = 4096
    structured_retries: int = 2  # re-asks after an invalid tool input or a turn ended early
    provider_retries: int = 3  # retries of 429 / overloaded / 5xx before the first text
    max_run_tokens: int | None = None  # a run is stopped past it (FEATURE_PLANNER_MAX_RUN_TOKENS)

"""A ``RunSink`` that records what a provider reports, for the provider tests."""

from __future__ import annotations

import asyncio

from feature_planner.agent.evidence import SuggestionCheck
from feature_planner.models import ProgressPhase, Suggestion


class RecordingSink:
    def __init__(self) -> None:
        self.chunks: list[str] = []
        self.activities: list[tuple[str, str]] = []
        self.phases: list[ProgressPhase] = []
        self.suggestions: list[Suggestion] = []
        self.first_text = asyncio.Event()

    def text(self, chunk: str) -> None:
        self.chunks.append(chunk)
        self.first_text.set()

    def activity(self, tool: str, detail: str) -> None:
        self.activities.append((tool, detail))

    def progress(self, phase: ProgressPhase, *, expected: int | None = None) -> None:
        self.phases.append(phase)

    async def suggestion(
        self,
        suggestion: Suggestion,
        *,
        previous: SuggestionCheck | None = None,
        last_attempt: bool = True,
    ) -> SuggestionCheck:
        """Records the suggestion as it is (the runner's verification has its own tests)."""
        self.suggestions.append(suggestion)
        return SuggestionCheck(suggestion, ())

    @property
    def narrative(self) -> str:
        return "".join(self.chunks)

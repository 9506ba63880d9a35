"""The provider interface: one ``run`` per job, text streamed through a sink."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..models import FeatureType, PriorityLevel, Suggestion, SuggestionRequest, TokenUsage
from .profile import AgentProfile

__all__ = ["PlanRequest", "PlanResult", "Provider", "RunSink"]


@dataclass(frozen=True, slots=True)
class PlanRequest:
    """What the user asked for, and where the repository is."""

    page_or_component: str
    feature_type: FeatureType
    priority_level: PriorityLevel
    repository: Path
    additional_context: str | None = None
    model: str | None = None
    agent: AgentProfile | None = None  # the user's active custom agent; None: the default

    @classmethod
    def from_request(
        cls, request: SuggestionRequest, repository: Path, agent: AgentProfile | None = None
    ) -> PlanRequest:
        return cls(
            page_or_component=request.page_or_component,
            feature_type=request.feature_type,
            priority_level=request.priority_level,
            additional_context=request.additional_context,
            model=request.custom_model,
            repository=repository,
            agent=agent,
        )


@dataclass(frozen=True, slots=True)
class PlanResult:
    """The structured end of a run; becomes the ``complete`` event."""

    suggestions: Sequence[Suggestion]
    context: str
    model: str
    token_usage: TokenUsage = field(default_factory=TokenUsage)
    retry_count: int = 0
    notice: str | None = None  # shown to users, e.g. that no AI model was involved


class RunSink(Protocol):
    """Where a provider reports progress. Both calls are cheap and never block."""

    def text(self, chunk: str) -> None:
        """Narrative text as the model produces it; every character reaches the clients."""

    def activity(self, tool: str, detail: str) -> None:
        """What the agent is doing (``Read``, ``src/app/page.tsx``)."""


class Provider(ABC):
    """Runs the agent for one job. Cancellation arrives as ``asyncio.CancelledError``;
    a failure the user can act on is raised as ``ProviderError``."""

    name: str

    @property
    def models(self) -> Sequence[str]:
        """The models a request may choose with ``customModel``; empty: no choice."""
        return ()

    @abstractmethod
    async def run(self, request: PlanRequest, sink: RunSink) -> PlanResult: ...

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release clients and connections at shutdown."""

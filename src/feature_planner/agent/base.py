"""The provider interface: one ``run`` per job, text streamed through a sink."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..models import (
    FeatureType,
    PriorityLevel,
    ProgressPhase,
    Suggestion,
    SuggestionRequest,
    TokenUsage,
)
from .profile import AgentProfile

if TYPE_CHECKING:
    from .evidence import SuggestionCheck

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
    """Where a provider reports what it does. ``text``, ``activity`` and ``progress`` are
    cheap and never block; ``suggestion`` checks the suggestion's evidence first."""

    def text(self, chunk: str) -> None:
        """Narrative text as the model produces it; every character reaches the clients."""

    def activity(self, tool: str, detail: str) -> None:
        """What the agent is doing (``Read``, ``src/app/page.tsx``)."""

    def progress(self, phase: ProgressPhase, *, expected: int | None = None) -> None:
        """Where the run is, when the provider knows better than its activity shows (and
        how many suggestions it will make, if it knows)."""

    async def suggestion(
        self,
        suggestion: Suggestion,
        *,
        previous: SuggestionCheck | None = None,
        last_attempt: bool = True,
    ) -> SuggestionCheck:
        """Submit one suggestion: its evidence is verified against the repository, and it
        is sent to the clients at once with its verified items if it passes, or if this is
        its ``last_attempt`` and some item passed. The check says where it was sent
        (``index``; None: it was not), and what failed and why (``evidence.retry_message``):
        on another attempt pass it as ``previous``; one never submitted again is given up.
        A provider that returns its suggestions only in its ``PlanResult`` has them
        submitted there, in order, once each."""


class Provider(ABC):
    """Runs the agent for one job. Cancellation arrives as ``asyncio.CancelledError``;
    a failure the user can act on is raised as ``ProviderError``."""

    name: str
    # False only for an engine that plays given suggestions as they are (the scripted test
    # double): its uncited suggestions are sent unchecked. Every real engine cites.
    requires_evidence: bool = True

    @property
    def models(self) -> Sequence[str]:
        """The models a request may choose with ``customModel``; empty: no choice."""
        return ()

    @abstractmethod
    async def run(self, request: PlanRequest, sink: RunSink) -> PlanResult: ...

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release clients and connections at shutdown."""

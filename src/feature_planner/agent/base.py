"""The provider interface: one ``run`` per job, text streamed through a sink."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

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

__all__ = ["FollowUp", "PlanRequest", "PlanResult", "Provider", "RunSink"]


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A run that follows a completed one: what the user said about it, and what the
    earlier run left for this one to start from (its suggestions, the files it read), so
    that the engine need not read the repository again from scratch."""

    message: str
    suggestion_index: int | None  # the parent's suggestion the message is about, if one
    parent_suggestions: tuple[Suggestion, ...]
    parent_files_read: tuple[str, ...] = ()

    @property
    def suggestion(self) -> Suggestion | None:
        """The parent's suggestion the message is about, if one."""
        if self.suggestion_index is None or self.suggestion_index >= len(self.parent_suggestions):
            return None
        return self.parent_suggestions[self.suggestion_index]

    def to_wire(self) -> dict[str, Any]:
        """As a job record keeps it (JSON), for a store shared by several processes."""
        return {
            "message": self.message,
            "suggestionIndex": self.suggestion_index,
            "suggestions": [suggestion.to_wire() for suggestion in self.parent_suggestions],
            "filesRead": list(self.parent_files_read),
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> FollowUp:
        return cls(
            message=data["message"],
            suggestion_index=data.get("suggestionIndex"),
            parent_suggestions=tuple(
                Suggestion.model_validate(item) for item in data.get("suggestions", ())
            ),
            parent_files_read=tuple(data.get("filesRead", ())),
        )


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
    follow_up: FollowUp | None = None  # this run follows a completed one

    @classmethod
    def from_request(
        cls,
        request: SuggestionRequest,
        repository: Path,
        agent: AgentProfile | None = None,
        follow_up: FollowUp | None = None,
    ) -> PlanRequest:
        return cls(
            page_or_component=request.page_or_component,
            feature_type=request.feature_type,
            priority_level=request.priority_level,
            additional_context=request.additional_context,
            model=request.custom_model,
            repository=repository,
            agent=agent,
            follow_up=follow_up,
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
    # What the run is charged (budgets, history): None, input + output of ``token_usage``.
    tokens: int | None = None


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

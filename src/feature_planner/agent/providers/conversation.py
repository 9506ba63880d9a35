"""What every AI provider's conversation keeps track of, whatever the SDK underneath.

A provider makes one ``Conversation`` per run, feeds its SDK's events to it, and keeps only
its wire format and its failure messages; a new provider is that adapter alone. (When a
failed model call is tried again is ``backoff``'s part.)

- ``Conversation``: one run's model, tools and the three below; it answers the model's
  repository tool calls and builds the ``PlanResult``.
- ``Narrative``: the model's text, forwarded to the sink as it streams; each new block
  (a round, a content block) is set apart from the text before it by one blank line.
- ``UsageTotals``: the token usage of every API response of the run, summed.
- ``StructuredRetries``: invalid or missing ``submit_suggestions`` results, counted against
  ``structured_retries``, and the error once they have run out.
- ``SUBMIT_NOW``, ``LAST_ROUND``, ``TRUNCATED_CALL``: what the model is told when it ends a
  turn without submitting, runs out of rounds, or is cut off mid tool call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ...errors import ProviderError
from ...models import TokenUsage
from ..base import PlanRequest, PlanResult, RunSink
from ..planner import SUBMIT_TOOL_DESCRIPTION, SUBMIT_TOOL_NAME, PlanOutput, plan_schema
from ..profile import DEFAULT_AGENT, ToolName
from ..tools import RepositoryTools, ToolDefinition, ToolResult
from .options import AIOptions

__all__ = [
    "LAST_ROUND",
    "SUBMIT_NOW",
    "TRUNCATED_CALL",
    "Conversation",
    "Narrative",
    "RepositoryToolset",
    "StructuredRetries",
    "ToolsFactory",
    "UsageTotals",
    "sandboxed_tools",
]

logger = logging.getLogger(__name__)

SUBMIT_NOW = (
    f"You ended your turn without calling the {SUBMIT_TOOL_NAME} tool. Call {SUBMIT_TOOL_NAME} "
    "now with 3 to 5 suggestions and a short context, based on what you have found. Do not "
    "answer in plain text."
)
LAST_ROUND = f"You have used all your tool rounds. Call {SUBMIT_TOOL_NAME} now with what you know."
TRUNCATED_CALL = (
    "Your output reached the token limit before this tool call was complete. Call the tool "
    "again with a shorter input."
)


class Narrative:
    """Forwards the model's text to the sink, each block apart from the one before.

    Without a separator, "…the page.Now the hook…" would run together across rounds.
    """

    def __init__(self, sink: RunSink) -> None:
        self._sink = sink
        self._new_block = False
        self._tail = ""  # the last two characters sent
        self.length = 0  # characters sent so far, separators included

    def start_block(self) -> None:
        """The next text begins a new block (a new round, or a new content block)."""
        self._new_block = True

    def text(self, chunk: str) -> None:
        if not chunk:
            return
        if self._new_block and self.length and not self._tail.endswith("\n\n"):
            chunk = ("\n" if self._tail.endswith("\n") else "\n\n") + chunk
        self._new_block = False
        self._tail = (self._tail + chunk)[-2:]
        self.length += len(chunk)
        self._sink.text(chunk)


@dataclass(slots=True)
class UsageTotals:
    """Token usage summed over a run's API responses; cache counts stay None until one is
    reported."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read: int | None = None
    cache_creation: int | None = None

    def add(
        self,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read: int | None = None,
        cache_creation: int | None = None,
    ) -> None:
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        if cache_read is not None:
            self.cache_read = (self.cache_read or 0) + cache_read
        if cache_creation is not None:
            self.cache_creation = (self.cache_creation or 0) + cache_creation

    def token_usage(self) -> TokenUsage:
        return TokenUsage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_input_tokens=self.cache_read,
            cache_creation_input_tokens=self.cache_creation,
        )


class StructuredRetries:
    """Invalid or missing results; each asks the model again, up to ``allowed`` times."""

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        self.used = 0  # becomes the result's ``retry_count``
        self.last_problem = ""

    def count(self, problem: str) -> bool:
        """Count one more invalid result; True while the model may be asked again."""
        self.used += 1
        self.last_problem = problem
        return self.used <= self.allowed

    def charge(self, problem: str) -> None:
        """``count``, raising ``exhausted()`` once no retry is left."""
        if not self.count(problem):
            raise self.exhausted()

    def exhausted(self) -> ProviderError:
        return ProviderError(
            f"The model did not return valid suggestions after {self.allowed} retries; "
            f"try again. (Last problem: {self.last_problem[:500]})"
        )


class ToolOutcome(Protocol):
    @property
    def text(self) -> str: ...

    @property
    def is_error(self) -> bool: ...


class ToolSpec(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def input_schema(self) -> Mapping[str, Any]: ...


class RepositoryToolset(Protocol):
    """What the providers need of ``agent.tools.RepositoryTools``."""

    def definitions(self) -> Sequence[ToolSpec]: ...

    def describe(self, name: str, arguments: Mapping[str, Any]) -> str: ...

    async def call(self, name: str, arguments: Mapping[str, Any]) -> ToolOutcome: ...


ToolsFactory = Callable[[Path, Sequence[ToolName]], RepositoryToolset]


def sandboxed_tools(root: Path, allowed: Sequence[ToolName]) -> RepositoryToolset:
    """The agent's tools over the repository, behind the sandbox: the default factory."""
    return RepositoryTools(root, allowed=allowed)


class Conversation:
    """One run of an AI provider: its model and tools, what has streamed, what it cost."""

    def __init__(
        self,
        request: PlanRequest,
        sink: RunSink,
        options: AIOptions,
        tools: ToolsFactory = sandboxed_tools,
    ) -> None:
        profile = request.agent or DEFAULT_AGENT
        self.model = request.model or options.model  # as requested; the API may name another
        self.temperature = profile.temperature
        self.tools = tools(request.repository, profile.tools)
        self.sink = sink
        self.narrative = Narrative(sink)
        self.usage = UsageTotals()
        self.retries = StructuredRetries(options.structured_retries)

    def tool_definitions(self) -> list[ToolDefinition]:
        """The agent's repository tools, then ``submit_suggestions``: what the model is
        offered."""
        offered = [
            ToolDefinition(spec.name, spec.description, dict(spec.input_schema))
            for spec in self.tools.definitions()
        ]
        offered.append(ToolDefinition(SUBMIT_TOOL_NAME, SUBMIT_TOOL_DESCRIPTION, plan_schema()))
        return offered

    async def use_tool(self, name: str, arguments: object) -> ToolResult:
        """One repository tool call the model asked for; every problem is an error result
        for the model to read, never an exception. Only a call that runs is reported to
        the sink."""
        available = [spec.name for spec in self.tools.definitions()]
        if name not in available:
            names = ", ".join([*available, SUBMIT_TOOL_NAME])
            return ToolResult(f"There is no tool named {name!r}; the tools are {names}.", True)
        if not isinstance(arguments, Mapping):
            return ToolResult(f"The arguments of {name} must be a JSON object.", True)
        self.sink.activity(name, self.tools.describe(name, arguments))
        try:
            outcome = await self.tools.call(name, arguments)
        except Exception:
            logger.exception("repository tool %s failed", name)
            return ToolResult(f"The {name} tool failed unexpectedly.", True)
        return ToolResult(outcome.text or "(no output)", outcome.is_error)

    def result(self, plan: PlanOutput, model: str | None = None) -> PlanResult:
        """The run's end: the accepted plan, what ``model`` the API reported, the usage."""
        return PlanResult(
            suggestions=plan.to_suggestions(),
            context=plan.context,
            model=model or self.model,
            token_usage=self.usage.token_usage(),
            retry_count=self.retries.used,
        )

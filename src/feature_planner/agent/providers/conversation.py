"""What every AI provider's conversation keeps track of, whatever the SDK underneath.

A provider makes one ``Conversation`` per run, feeds its SDK's events to it, and keeps only
its wire format and its failure messages; a new provider is that adapter alone. (When a
failed model call is tried again is ``backoff``'s part.)

- ``Conversation``: one run's model, tools and the parts below; its ``first_message`` gives
  the model the repository map's summary for the page (``agent.repo_map``), so that it
  starts from the page's own files (a follow-up: its parent's suggestions, the user's
  message and the text of the files the parent read, ``agent.follow_up``); it answers the
  model's tool calls (the repository's, ``submit_suggestion`` and ``finish``) and builds
  the ``PlanResult``.
- ``Submissions``: the suggestions the model submits one at a time. Each goes to the sink,
  which verifies its evidence and sends it; what failed goes back to the model once to be
  fixed (``retryCount``), and a suggestion left with no verified evidence is dropped and
  the model asked for another. ``finish`` ends the run.
- ``Narrative``: the model's text, forwarded to the sink as it streams; each new block
  (a round, a content block) is set apart from the text before it by one blank line.
- ``UsageTotals``: the token usage of every API response of the run, summed as the
  streams report it, and checked against the run's token ceiling at each report.
- ``StructuredRetries``: invalid tool inputs and turns that end without ``finish``, counted
  against ``structured_retries``, and the error once they have run out.
- ``SUBMIT_NOW``, ``LAST_ROUND``, ``TRUNCATED_CALL``: what the model is told when it ends a
  turn without finishing, runs out of rounds, or is cut off mid tool call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ...errors import BudgetExceededError, ProviderError
from ...models import ProgressPhase, Suggestion, TokenUsage
from ..base import PlanRequest, PlanResult, RunSink
from ..evidence import SuggestionCheck, retry_message
from ..follow_up import read_parent_files
from ..planner import (
    FINISH_TOOL_DESCRIPTION,
    FINISH_TOOL_NAME,
    MAX_SUGGESTIONS,
    MIN_SUGGESTIONS,
    SUBMIT_TOOL_DESCRIPTION,
    SUBMIT_TOOL_NAME,
    InvalidPlanError,
    finish_schema,
    parse_finish,
    parse_suggestion,
    suggestion_schema,
    user_prompt,
)
from ..profile import DEFAULT_AGENT, ToolName
from ..repo_map import page_map_in_thread
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
    "Submissions",
    "ToolsFactory",
    "UsageTotals",
    "sandboxed_tools",
]

logger = logging.getLogger(__name__)

SUBMIT_NOW = (
    f"You ended your turn without calling the {FINISH_TOOL_NAME} tool. Call "
    f"{SUBMIT_TOOL_NAME} for each suggestion not yet accepted ({MIN_SUGGESTIONS} to "
    f"{MAX_SUGGESTIONS} in all, one call each, each citing its evidence), then call "
    f"{FINISH_TOOL_NAME}. Do not answer in plain text."
)
LAST_ROUND = (
    f"You have used all your tool rounds. Submit what you have with {SUBMIT_TOOL_NAME} now, "
    f"then call {FINISH_TOOL_NAME}."
)
TRUNCATED_CALL = (
    "Your output reached the token limit before this tool call was complete. Call the tool "
    "again with a shorter input."
)
RAN_OUT = "The run ended before the model summarised what it read."
MAP_SECONDS = 5.0  # the repository map's wait at most; without it the model explores as before


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
    """Token usage summed over a run's API responses, and the run's token ceiling.

    Cache counts stay None until one is reported. ``tokens`` is what the ceiling
    (``FEATURE_PLANNER_MAX_RUN_TOKENS``) and the daily budget count: every input token, those
    read from or written to a cache too, and every output token; where the API counts the
    cached ones inside the input already (``cache_in_input``: Chat Completions), once. Each
    report is checked at once: the first past the ceiling raises ``BudgetExceededError``
    where the provider reads its stream, so that leaving the stream closes the request.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read: int | None = None
    cache_creation: int | None = None
    cost_usd: float | None = None  # only where the API reports one
    ceiling: int | None = None
    cache_in_input: bool = False
    _response: dict[str, int] = field(default_factory=dict)  # the current response's reports

    @property
    def tokens(self) -> int:
        cached = 0 if self.cache_in_input else (self.cache_read or 0) + (self.cache_creation or 0)
        return self.input_tokens + self.output_tokens + cached

    def add(
        self,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read: int | None = None,
        cache_creation: int | None = None,
    ) -> None:
        """Usage not counted before (a whole response's, or what is new in a report)."""
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        if cache_read is not None:
            self.cache_read = (self.cache_read or 0) + cache_read
        if cache_creation is not None:
            self.cache_creation = (self.cache_creation or 0) + cache_creation
        if self.ceiling is not None and self.tokens > self.ceiling:
            raise BudgetExceededError(
                self.ceiling, self.tokens, self.input_tokens, self.output_tokens
            )

    def start_response(self) -> None:
        """A new API response (or a new attempt at one) begins: its reports start from 0."""
        self._response = {}

    def report(
        self,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_read: int | None = None,
        cache_creation: int | None = None,
    ) -> None:
        """A usage report of the response being streamed: its counts so far (a stream may
        report them again as they grow, or repeat them); only what is new is added."""
        new: dict[str, int] = {}
        for name, value in (
            ("input_tokens", input_tokens),
            ("output_tokens", output_tokens),
            ("cache_read", cache_read),
            ("cache_creation", cache_creation),
        ):
            if value is None:
                continue
            new[name] = max(0, value - self._response.get(name, 0))
            self._response[name] = max(value, self._response.get(name, 0))
        self.add(
            input_tokens=new.get("input_tokens", 0),
            output_tokens=new.get("output_tokens", 0),
            cache_read=new.get("cache_read"),
            cache_creation=new.get("cache_creation"),
        )

    def report_cost(self, total_usd: float | None) -> None:
        """The run's cost so far, where the API reports one (the Claude Code runtime's
        ``total_cost_usd``, a running total of its session); never estimated here."""
        if total_usd is not None:
            self.cost_usd = total_usd

    def token_usage(self) -> TokenUsage:
        return TokenUsage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_input_tokens=self.cache_read,
            cache_creation_input_tokens=self.cache_creation,
            cost_usd=self.cost_usd,
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


class Submissions:
    """The suggestions a model submits one at a time, and the run's end.

    A valid ``submit_suggestion`` input goes to the sink, which checks its evidence: a
    suggestion whose every item is verified is sent at once. One with failed items goes
    back to the model with the reasons (counted in ``evidence_retries``); its next
    submission is its last attempt, sent with the items verified then, or dropped if none
    is (the model is asked for another, a structured retry). ``finish`` is refused once
    while fewer than ``MIN_SUGGESTIONS`` were sent or a suggestion still awaits its fix.
    """

    def __init__(self, sink: RunSink, retries: StructuredRetries) -> None:
        self._sink = sink
        self._retries = retries
        self._awaiting: SuggestionCheck | None = None
        self._finish_refused = False
        self.sent: list[Suggestion] = []
        self.evidence_retries = 0

    async def submit(self, raw: object) -> ToolResult:
        """One ``submit_suggestion`` call: what to answer the model."""
        if len(self.sent) >= MAX_SUGGESTIONS:
            self._retries.charge(f"a suggestion beyond the {MAX_SUGGESTIONS} allowed")
            return ToolResult(
                f"{MAX_SUGGESTIONS} suggestions were accepted, the most a run has. Call "
                f"{FINISH_TOOL_NAME} now.",
                True,
            )
        try:
            submitted = parse_suggestion(raw)
        except InvalidPlanError as exc:
            self._retries.charge(exc.feedback)
            return ToolResult(exc.feedback, True)
        previous, self._awaiting = self._awaiting, None
        check = await self._sink.suggestion(
            submitted.to_suggestion(), previous=previous, last_attempt=previous is not None
        )
        if check.index is not None:
            self.sent.append(check.suggestion)
            return ToolResult(self._accepted(check))
        if previous is None:
            self._awaiting = check
            self.evidence_retries += 1
            return ToolResult(retry_message(check), True)
        self._retries.charge(f'no evidence of "{check.suggestion.title}" could be verified')
        return ToolResult(
            f'Suggestion "{check.suggestion.title}" was dropped: none of its evidence could be '
            "verified, so the user will not see it. Submit another suggestion, grounded in "
            f"lines you have read, or call {FINISH_TOOL_NAME}.",
            True,
        )

    def _accepted(self, check: SuggestionCheck) -> str:
        count = len(self.sent)
        items = len(check.verified)
        answer = [
            f"Suggestion {count} accepted and shown to the user, with {items} verified "
            f"evidence item{'s' if items != 1 else ''}."
        ]
        if check.failed:
            dropped = ", ".join(str(number) for number, _ in check.failed)
            answer.append(f"Evidence items {dropped} could not be verified and were dropped.")
        if count >= MAX_SUGGESTIONS:
            answer.append(f"That is the last one a run has: call {FINISH_TOOL_NAME} now.")
        elif count >= MIN_SUGGESTIONS:
            answer.append(
                f"Submit another if it is worth it (at most {MAX_SUGGESTIONS}), or call "
                f"{FINISH_TOOL_NAME}."
            )
        else:
            answer.append(f"Submit the next one ({MIN_SUGGESTIONS} at least).")
        return " ".join(answer)

    def finish(self, raw: object) -> str | ToolResult:
        """One ``finish`` call: the run's context if it may end now, else what to answer."""
        try:
            context = parse_finish(raw).context
        except InvalidPlanError as exc:
            self._retries.charge(exc.feedback)
            return ToolResult(exc.feedback, True)
        if not self.sent:
            self._retries.charge(f"{FINISH_TOOL_NAME} before any suggestion was accepted")
            return ToolResult(
                f"No suggestion has been accepted yet. Call {SUBMIT_TOOL_NAME} for each "
                f"suggestion first, citing its evidence, then {FINISH_TOOL_NAME}.",
                True,
            )
        problem = self._unfinished()
        if problem and not self._finish_refused:
            self._finish_refused = True
            return ToolResult(f"{problem} Or call {FINISH_TOOL_NAME} again to end as it is.", True)
        return context

    def _unfinished(self) -> str | None:
        if self._awaiting is not None:
            title = self._awaiting.suggestion.title
            return f'Suggestion "{title}" still awaits fixed evidence: submit it again.'
        if len(self.sent) < MIN_SUGGESTIONS:
            return (
                f"Only {len(self.sent)} suggestion(s) were accepted; submit at least "
                f"{MIN_SUGGESTIONS} if the code supports them."
            )
        return None

    def notice(self) -> str | None:
        """What the user is told about a run that ended with fewer than it should have."""
        if len(self.sent) >= MIN_SUGGESTIONS:
            return None
        return (
            f"The model found only {len(self.sent)} suggestion(s) that the code bears out "
            f"(a run usually has {MIN_SUGGESTIONS} to {MAX_SUGGESTIONS})."
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
        self.usage = UsageTotals(ceiling=options.max_run_tokens)
        self.retries = StructuredRetries(options.structured_retries)
        self.submissions = Submissions(sink, self.retries)
        self._drafting = False

    async def first_message(self, request: PlanRequest) -> str:
        """The request, and what the repository map found for the page. The map is a help,
        never a failure: when it cannot be made in time, the model explores without it.
        A follow-up starts from its parent instead: its suggestions, the user's message and
        the text of the files it read (``agent.follow_up``)."""
        if request.follow_up is not None:
            files = await asyncio.to_thread(
                read_parent_files, request.repository, request.follow_up.parent_files_read
            )
            return user_prompt(request, parent_files=files)
        try:
            async with asyncio.timeout(MAP_SECONDS):
                found = await page_map_in_thread(request.repository, request.page_or_component)
        except TimeoutError:
            logger.warning(
                "the repository map took over %g s; the agent starts without it", MAP_SECONDS
            )
            return user_prompt(request)
        except Exception:
            logger.exception("the repository map failed; the agent starts without it")
            return user_prompt(request)
        return user_prompt(request, found.summary())

    def tool_definitions(self) -> list[ToolDefinition]:
        """The agent's repository tools, then ``submit_suggestion`` and ``finish``: what the
        model is offered."""
        offered = [
            ToolDefinition(spec.name, spec.description, dict(spec.input_schema))
            for spec in self.tools.definitions()
        ]
        offered.append(
            ToolDefinition(SUBMIT_TOOL_NAME, SUBMIT_TOOL_DESCRIPTION, suggestion_schema())
        )
        offered.append(ToolDefinition(FINISH_TOOL_NAME, FINISH_TOOL_DESCRIPTION, finish_schema()))
        return offered

    def tool_started(self, name: str) -> None:
        """The model began a tool call (known from the stream, before its input is whole):
        its first suggestion means the run is drafting."""
        if name == SUBMIT_TOOL_NAME and not self._drafting:
            self._drafting = True
            self.sink.progress(ProgressPhase.DRAFTING)

    async def use_tool(self, name: str, arguments: object) -> ToolResult:
        """One tool call the model asked for, ``finish`` aside (``submissions.finish``): a
        repository tool, or ``submit_suggestion``. Every problem is an error result for the
        model to read, never an exception; only a repository call that runs is reported to
        the sink as activity."""
        if name == SUBMIT_TOOL_NAME:
            return await self.submissions.submit(arguments)
        available = [spec.name for spec in self.tools.definitions()]
        if name not in available:
            names = ", ".join([*available, SUBMIT_TOOL_NAME, FINISH_TOOL_NAME])
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

    def ended_without_finish(self, problem: str) -> bool:
        """The model ended its turn without ``finish``. True: the run ends here with what
        was sent (enough of it, or some once the retries ran out); False: ask the model
        again (``SUBMIT_NOW``), a retry. Nothing sent and no retry left: the run fails."""
        if len(self.submissions.sent) >= MIN_SUGGESTIONS:
            return True
        if self.retries.count(problem):
            return False
        if self.submissions.sent:
            return True
        raise self.retries.exhausted()

    @property
    def retry_count(self) -> int:
        """What ``complete.retryCount`` says: invalid inputs and evidence sent back."""
        return self.retries.used + self.submissions.evidence_retries

    def result(self, context: str | None, model: str | None = None) -> PlanResult:
        """The run's end: the suggestions sent, the model's ``context`` (None: the run
        ended without ``finish``), what ``model`` the API reported, the usage. A run that
        sent nothing fails instead."""
        if not self.submissions.sent:
            raise ProviderError(
                "The model ended without a suggestion whose evidence the repository bears out; "
                "try again, or name the page or component more precisely"
            )
        return PlanResult(
            suggestions=tuple(self.submissions.sent),
            context=context or RAN_OUT,
            model=model or self.model,
            token_usage=self.usage.token_usage(),
            tokens=self.usage.tokens,
            retry_count=self.retry_count,
            notice=self.submissions.notice(),
        )

"""Running one job: the provider's text becomes numbered, framed events in the store."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from .. import events
from ..agent.base import PlanRequest, PlanResult, Provider
from ..agent.evidence import EvidenceTally, SuggestionCheck, verify_suggestion_in_thread
from ..agent.profile import AgentProfile
from ..errors import BudgetExceededError, ProviderError, StoreUnavailableError
from ..events import JobEvent
from ..metrics import Metrics
from ..models import (
    CompleteEvent,
    ErrorCode,
    ErrorEvent,
    EventModel,
    JobState,
    ProgressPhase,
    Suggestion,
    TokenUsage,
)
from .coalesce import DeltaCoalescer
from .progress import ProgressTracker
from .store import JobStore

__all__ = ["AgentLookup", "JobRun", "RunTracer"]

logger = logging.getLogger("feature_planner.jobs")


class JobRun:
    """One execution of a job. Implements ``RunSink`` for the provider.

    ``cancel(message)`` ends the run with ``CANCELLED``; the time limit ends it with
    ``TIMEOUT``. Whatever ends it, buffered text is flushed before the final event.
    ``trace`` (telemetry's, when tracing is on) wraps the run: a span per job.

    Suggestions go out one by one as ``suggestion`` events, each once its evidence is
    verified (``agent.evidence``); ``complete`` carries exactly the suggestions sent, in
    their order, and the evidence counts. A suggestion with no verified evidence is never
    sent, unless its provider says it plays given suggestions as they are
    (``Provider.requires_evidence``: the scripted test double).
    """

    def __init__(
        self,
        store: JobStore,
        job_id: str,
        *,
        throttle_s: float,
        time_limit_s: float,
        metrics: Metrics | None = None,
        user_id: str | None = None,
        trace: RunTracer | None = None,
    ) -> None:
        self.job_id = job_id
        self.user_id = user_id
        self._metrics = metrics
        self._trace = trace
        self._started = time.perf_counter()
        self._first_delta_s: float | None = None
        self._deltas = 0
        self._store = store
        self._time_limit_s = time_limit_s
        self._last_id = 0
        self._total_length = 0
        self._coalescer = DeltaCoalescer(throttle_s, self._publish_delta)
        self._cancel_message = "The job was cancelled"
        self._abandoned = False
        self.task: asyncio.Task[None] | None = None
        self.state: JobState = JobState.IN_PROGRESS
        self.code: str | None = None  # the final error event's code
        self.final: CompleteEvent | ErrorEvent | None = None  # the final event, once sent
        # What the run was charged, once it has ended (None: nothing reported): the history
        # keeps them, the daily budget sums them.
        self.tokens: int | None = None
        self.cost_usd: float | None = None
        self.require_evidence = True
        self._root = Path(".")
        self._sent: list[Suggestion] = []
        self._awaiting: SuggestionCheck | None = None  # sent back to be fixed, not yet again
        self._tally = EvidenceTally()
        self._progress = ProgressTracker(self._emit)
        self._read: dict[str, None] = {}  # the paths of its Read activity, in order, once each

    @property
    def last_event_id(self) -> int:
        return self._last_id

    @property
    def files_read(self) -> tuple[str, ...]:
        """The files the run read (its ``Read`` activity): where a follow-up starts."""
        return tuple(self._read)

    # -- RunSink -------------------------------------------------------------------------

    def text(self, chunk: str) -> None:
        self._coalescer.add(chunk)

    def activity(self, tool: str, detail: str) -> None:
        self._coalescer.flush()
        self._emit(events.activity(tool, detail))
        self._progress.activity(tool, detail)
        if tool == "Read" and detail:
            self._read.setdefault(detail, None)

    def progress(self, phase: ProgressPhase, *, expected: int | None = None) -> None:
        self._coalescer.flush()
        self._progress.enter(phase, expected=expected)

    async def suggestion(
        self,
        suggestion: Suggestion,
        *,
        previous: SuggestionCheck | None = None,
        last_attempt: bool = True,
    ) -> SuggestionCheck:
        self._coalescer.flush()
        self._progress.enter(ProgressPhase.VERIFYING)
        if suggestion.evidence:
            check = await verify_suggestion_in_thread(self._root, suggestion)
        else:
            check = SuggestionCheck(suggestion, ())
        if self._awaiting is not None and self._awaiting is not previous:
            self._tally.give_up(self._awaiting)  # the provider moved on without fixing it
        self._awaiting = None
        self._tally.attempt(check, previous)
        uncited = not check.verdicts and not self.require_evidence
        if not (check.complete or uncited or last_attempt):
            self._awaiting = check  # the provider has it fixed and submits it again
            return check
        if not (check.sendable or uncited):
            self._tally.give_up(check)
            return check
        self._tally.send(check)
        self._coalescer.flush()  # text that arrived while the evidence was checked
        index = len(self._sent)
        self._emit(events.suggestion(index, check.suggestion))
        self._sent.append(check.suggestion)
        self._progress.suggestion_ready()
        return dataclasses.replace(check, index=index)

    # -- lifecycle -----------------------------------------------------------------------

    def start(
        self, provider: Provider, request: PlanRequest, agent: AgentLookup | None = None
    ) -> asyncio.Task[None]:
        """Run in a task of its own; ``agent`` loads the user's custom agent first."""
        self._root = request.repository
        self.require_evidence = provider.requires_evidence
        if request.follow_up is not None:  # given its parent's files, it has read them too
            self._read.update(dict.fromkeys(request.follow_up.parent_files_read))
        execution = self._execute(provider, request, agent)
        if self._trace is not None:
            execution = self._trace(self, execution)
        self.task = asyncio.get_running_loop().create_task(execution, name=f"job-{self.job_id}")
        return self.task

    def cancel(self, message: str) -> None:
        if self.task is not None and not self.task.done():
            self._cancel_message = message
            self.task.cancel()

    def abandon(self, message: str) -> None:
        """Stop the run because this process is going away: ``WORKER_LOST``, not the
        owner's ``CANCELLED``."""
        self._abandoned = True
        self.cancel(message)

    async def _execute(
        self, provider: Provider, request: PlanRequest, agent: AgentLookup | None
    ) -> None:
        started = self._started = time.perf_counter()
        usage = None
        state = JobState.FAILED
        final: CompleteEvent | ErrorEvent
        try:
            async with asyncio.timeout(self._time_limit_s):
                if agent is not None:
                    request = dataclasses.replace(request, agent=await _load(agent))
                result = await provider.run(request, self)
                if not self._sent:  # an engine that answers all at once: sent here, in order
                    for suggestion in result.suggestions:
                        await self.suggestion(suggestion)
                if self._awaiting is not None:  # never fixed: given up
                    self._tally.give_up(self._awaiting)
                    self._awaiting = None
            # Made (and validated) here: a result that is not a valid `complete` fails the run.
            final = self._complete(result, provider, started)
            self._progress.done()
        except TimeoutError:
            final = events.error(
                ErrorCode.TIMEOUT, f"The run exceeded the time limit of {self._time_limit_s:g} s"
            )
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            if self._abandoned:
                final = events.error(ErrorCode.WORKER_LOST, self._cancel_message)
            else:
                final = events.error(ErrorCode.CANCELLED, self._cancel_message)
                state = JobState.CANCELLED
        except BudgetExceededError as exc:
            final = events.error(ErrorCode.BUDGET_EXCEEDED, str(exc))
            usage = TokenUsage(input_tokens=exc.input_tokens, output_tokens=exc.output_tokens)
            self.tokens = exc.tokens
        except ProviderError as exc:
            final = events.error(ErrorCode.PROVIDER_ERROR, str(exc))
        except Exception:
            logger.exception("job %s failed", self.job_id)
            final = events.error(
                ErrorCode.EXECUTION_ERROR, "The run failed unexpectedly; please try again"
            )
        else:
            usage, state = result.token_usage, JobState.COMPLETED
            self.tokens = (
                result.tokens
                if result.tokens is not None
                else usage.input_tokens + usage.output_tokens
            )
            self.cost_usd = usage.cost_usd
        self._coalescer.flush()
        self._emit(final)
        self.final, self.state = final, state
        self.code = final.code if isinstance(final, ErrorEvent) else None
        if self._metrics is not None:
            self._metrics.job_finished(
                state.value,
                self.code or "",
                provider=provider.name,
                duration_s=time.perf_counter() - started,
                deltas=self._deltas,
                first_delta_s=self._first_delta_s,
                usage=usage,
            )
        outcome = {
            "job_id": self.job_id,
            "user_id": self.user_id,
            "transition": "finished",
            "outcome": state.value,
            "code": self.code,
            "duration_ms": round((time.perf_counter() - started) * 1000),
            "events": self._last_id,
            "input_tokens": usage.input_tokens if usage is not None else None,
            "output_tokens": usage.output_tokens if usage is not None else None,
            "tokens": self.tokens,
            "cost_usd": self.cost_usd,
        }
        try:
            await self._store.finish(self.job_id, state, self._last_id)
        except StoreUnavailableError:
            # The store will not hear of the end; its lease expiring will (WORKER_LOST).
            logger.warning("job %s; the store is unreachable", state.value, extra=outcome)
            return
        logger.info("job %s", state.value, extra=outcome)

    def _complete(self, result: PlanResult, provider: Provider, started: float) -> CompleteEvent:
        return events.complete(
            suggestions=self._sent,
            context=result.context,
            token_usage=result.token_usage,
            execution_time_ms=round((time.perf_counter() - started) * 1000),
            retry_count=result.retry_count,
            provider=provider.name,
            model=result.model,
            notice=result.notice,
            evidence_stats=self._tally.to_stats(),
        )

    def _publish_delta(self, text: str) -> None:
        if self._first_delta_s is None:
            self._first_delta_s = time.perf_counter() - self._started
        self._deltas += 1
        self._total_length += len(text)
        self._emit(events.delta(text, self._total_length))

    def _emit(self, event: EventModel) -> None:
        self._last_id += 1
        self._store.append(self.job_id, JobEvent.of(self._last_id, event))


AgentLookup = Callable[[], Awaitable[AgentProfile | None]]
# Wraps the coroutine of a run (telemetry: a span around it, with the run's outcome).
RunTracer = Callable[[JobRun, Coroutine[Any, Any, None]], Coroutine[Any, Any, None]]


async def _load(agent: AgentLookup) -> AgentProfile | None:
    try:
        return await agent()
    except StoreUnavailableError:
        raise ProviderError(
            "Your custom agent could not be loaded (its database is unreachable); try again"
        ) from None

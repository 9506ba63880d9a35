"""Running one job: the provider's text becomes numbered, framed events in the store."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from ..agent.base import PlanRequest, PlanResult, Provider
from ..agent.profile import AgentProfile
from ..errors import ProviderError, StoreUnavailableError
from ..metrics import Metrics
from ..models import ErrorCode, JobState
from ..sse import dump_json
from .coalesce import DeltaCoalescer
from .store import JobEvent, JobStore

__all__ = ["AgentLookup", "JobRun", "now_ms"]

logger = logging.getLogger("feature_planner.jobs")

# Set by ``telemetry`` when tracing is on: wraps each run (a span per job). Otherwise None.
trace_run: Callable[[JobRun, Coroutine[Any, Any, None]], Coroutine[Any, Any, None]] | None = None


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def error_event(event_id: int, code: ErrorCode, message: str) -> JobEvent:
    data = {"message": message, "code": code.value, "timestamp": now_ms()}
    return JobEvent.build(event_id, "error", dump_json(data))


class JobRun:
    """One execution of a job. Implements ``RunSink`` for the provider.

    ``cancel(message)`` ends the run with ``CANCELLED``; the time limit ends it with
    ``TIMEOUT``. Whatever ends it, buffered text is flushed before the final event.
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
    ) -> None:
        self.job_id = job_id
        self.user_id = user_id
        self._metrics = metrics
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

    # -- RunSink -------------------------------------------------------------------------

    def text(self, chunk: str) -> None:
        self._coalescer.add(chunk)

    def activity(self, tool: str, detail: str) -> None:
        self._coalescer.flush()
        self._emit("activity", {"tool": tool, "detail": detail, "timestamp": now_ms()})

    # -- lifecycle -----------------------------------------------------------------------

    def start(
        self, provider: Provider, request: PlanRequest, agent: AgentLookup | None = None
    ) -> asyncio.Task[None]:
        """Run in a task of its own; ``agent`` loads the user's custom agent first."""
        execution = self._execute(provider, request, agent)
        if trace_run is not None:
            execution = trace_run(self, execution)
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
        try:
            async with asyncio.timeout(self._time_limit_s):
                if agent is not None:
                    request = dataclasses.replace(request, agent=await _load(agent))
                result = await provider.run(request, self)
        except TimeoutError:
            state, name, data = self._failure(
                ErrorCode.TIMEOUT, f"The run exceeded the time limit of {self._time_limit_s:g} s"
            )
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            if self._abandoned:
                state, name, data = self._failure(ErrorCode.WORKER_LOST, self._cancel_message)
            else:
                state, name, data = self._failure(ErrorCode.CANCELLED, self._cancel_message)
                state = JobState.CANCELLED
        except ProviderError as exc:
            state, name, data = self._failure(ErrorCode.PROVIDER_ERROR, str(exc))
        except Exception:
            logger.exception("job %s failed", self.job_id)
            state, name, data = self._failure(
                ErrorCode.EXECUTION_ERROR, "The run failed unexpectedly; please try again"
            )
        else:
            usage = result.token_usage
            elapsed_ms = round((time.perf_counter() - started) * 1000)
            state, name, data = (
                JobState.COMPLETED,
                "complete",
                _complete(result, provider, elapsed_ms),
            )
        self._coalescer.flush()
        self._emit(name, data)
        self.state = state
        self.code = data.get("code")
        if self._metrics is not None:
            self._metrics.job_finished(
                state.value,
                data.get("code", ""),
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
            "code": data.get("code"),
            "duration_ms": round((time.perf_counter() - started) * 1000),
            "events": self._last_id,
            "input_tokens": usage.input_tokens if usage is not None else None,
            "output_tokens": usage.output_tokens if usage is not None else None,
        }
        try:
            await self._store.finish(self.job_id, state, self._last_id)
        except StoreUnavailableError:
            # The store will not hear of the end; its lease expiring will (WORKER_LOST).
            logger.warning("job %s; the store is unreachable", state.value, extra=outcome)
            return
        logger.info("job %s", state.value, extra=outcome)

    @staticmethod
    def _failure(code: ErrorCode, message: str) -> tuple[JobState, str, dict[str, Any]]:
        return (
            JobState.FAILED,
            "error",
            {"message": message, "code": code.value, "timestamp": now_ms()},
        )

    def _publish_delta(self, text: str) -> None:
        if self._first_delta_s is None:
            self._first_delta_s = time.perf_counter() - self._started
        self._deltas += 1
        self._total_length += len(text)
        self._emit(
            "delta", {"text": text, "totalLength": self._total_length, "timestamp": now_ms()}
        )

    def _emit(self, name: str, data: dict[str, Any]) -> None:
        self._last_id += 1
        self._store.append(self.job_id, JobEvent.build(self._last_id, name, dump_json(data)))


AgentLookup = Callable[[], Awaitable[AgentProfile | None]]


async def _load(agent: AgentLookup) -> AgentProfile | None:
    try:
        return await agent()
    except StoreUnavailableError:
        raise ProviderError(
            "Your custom agent could not be loaded (its database is unreachable); try again"
        ) from None


def _complete(result: PlanResult, provider: Provider, elapsed_ms: int) -> dict[str, Any]:
    data: dict[str, Any] = {
        "suggestions": [s.to_wire() for s in result.suggestions],
        "context": result.context,
        "tokenUsage": result.token_usage.to_wire(),
        "executionTimeMs": elapsed_ms,
        "retryCount": result.retry_count,
        "provider": provider.name,
        "model": result.model,
        "timestamp": now_ms(),
    }
    if result.notice:
        data["notice"] = result.notice
    return data

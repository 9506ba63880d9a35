"""The ``scripted`` provider: plays given chunks with given delays, and can fail on cue.

The twin of the real providers for tests, demos and benchmarks: the real server runs end to
end with no AI model, and what it streams is known in advance. After its text it submits its
suggestions one at a time (``suggestion_interval_s`` apart), as an engine that streams them
does.

For benchmarks, ``stamp=True`` prefixes each chunk with ``time.monotonic_ns()`` taken at
emission (``"<ns>:<chunk>"``), from which a client on the same host computes model→client
latency; ``pace`` replaces the per-run sleep, so that one shared clock can drive every run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from ...errors import ProviderError
from ...models import Suggestion, TokenUsage
from ..base import PlanRequest, PlanResult, Provider, RunSink

__all__ = ["ScriptedProvider", "scripted_text"]

_FILLER = "streamed text with ünïcödé and 𝄞 clefs · "


def scripted_text(chunks: int, chunk_size: int) -> list[str]:
    """Deterministic chunks of exactly ``chunk_size`` code points, each numbered."""
    result = []
    for index in range(chunks):
        head = f"[{index}] "
        body = (_FILLER * (chunk_size // len(_FILLER) + 1))[: max(0, chunk_size - len(head))]
        result.append((head + body)[:chunk_size])
    return result


class ScriptedProvider(Provider):
    name = "scripted"
    requires_evidence = False  # plays its suggestions as given; any evidence is still checked

    def __init__(
        self,
        chunks: Sequence[str],
        *,
        interval_s: float | Sequence[float] = 0.0,
        suggestion_interval_s: float = 0.0,
        fail_at: int | None = None,
        failure_message: str = "The scripted provider failed on purpose",
        models: Sequence[str] = (),
        suggestions: Sequence[Suggestion] | None = None,
        stamp: bool = False,
        pace: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.chunks = list(chunks)
        self._intervals = interval_s
        self._suggestion_interval_s = suggestion_interval_s
        self.fail_at = fail_at
        self.failure_message = failure_message
        self._models = tuple(models)
        self._suggestions = list(suggestions) if suggestions is not None else None
        self.stamp = stamp
        self._pace = pace
        self.runs = 0

    @property
    def models(self) -> Sequence[str]:
        return self._models

    def _delay(self, index: int) -> float:
        if isinstance(self._intervals, int | float):
            return float(self._intervals)
        return self._intervals[index] if index < len(self._intervals) else 0.0

    async def run(self, request: PlanRequest, sink: RunSink) -> PlanResult:
        self.runs += 1
        for index, chunk in enumerate(self.chunks):
            if index == self.fail_at:
                raise ProviderError(f"{self.failure_message} (before chunk {index})")
            if self._pace is not None:
                await self._pace()
            elif (delay := self._delay(index)) > 0:
                await asyncio.sleep(delay)
            sink.text(f"{time.monotonic_ns()}:{chunk}" if self.stamp else chunk)
        if self.fail_at is not None and self.fail_at >= len(self.chunks):
            raise ProviderError(f"{self.failure_message} (after the last chunk)")
        suggestions = self._suggestions or self._default_suggestions(request)
        for suggestion in suggestions:
            if self._suggestion_interval_s > 0:
                await asyncio.sleep(self._suggestion_interval_s)
            await sink.suggestion(suggestion)
        return PlanResult(
            suggestions=suggestions,
            context=(
                f"Scripted run of {len(self.chunks)} chunks for {request.page_or_component}"
                + (f" by the agent {request.agent.name}" if request.agent else "")
            ),
            model=request.model or (self._models[0] if self._models else "scripted"),
            token_usage=TokenUsage(
                input_tokens=len(request.page_or_component), output_tokens=len(self.chunks)
            ),
            notice="Played by the scripted provider; no AI model was used.",
        )

    @staticmethod
    def _default_suggestions(request: PlanRequest) -> list[Suggestion]:
        target = request.page_or_component
        return [
            Suggestion(
                title=f"{request.feature_type.value.title()} {n} for {target}",
                rationale=f"A scripted {request.priority_level.value}-priority suggestion",
                description=f"Scripted suggestion number {n} for {target}.",
                implementation_considerations=[f"Consideration {n}.1", f"Consideration {n}.2"],
            )
            for n in (1, 2, 3)
        ]

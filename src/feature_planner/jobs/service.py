"""The two phases as operations: create a job, open a stream on it, cancel it.

The web layer authenticates and parses; this module decides. It owns the runs started in
this process, the per-user limits, the orphan check and the shared heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from .. import events
from ..agent.base import FollowUp, PlanRequest, Provider
from ..agent.profile import AgentProfile
from ..errors import (
    FeaturePlannerError,
    InvalidJobIdError,
    JobFinishedError,
    JobNotCompleteError,
    JobNotFoundError,
    RateLimitedError,
    RequestValidationError,
    ServerDrainingError,
    SuggestionNotFoundError,
    TooManyStreamsError,
)
from ..events import JobEvent, now_ms
from ..history import HistoryEntry, HistoryStore
from ..limits import CreateLimiter, StreamLimiter
from ..metrics import Metrics
from ..models import ErrorCode, FollowUpRequest, JobState, Suggestion, SuggestionRequest
from ..sse import encode_comment
from .budgets import DailyBudget
from .idempotency import IdempotencyKeys, Reservation, fingerprint
from .reading import JobReader, check_owner, ended, entry_of, is_uuid4, wait_finished
from .relay import EventLog, Heartbeat, Subscriber
from .runner import JobRun, RunTracer
from .store import JobRecord, JobStore

__all__ = ["CreatedJob", "JobService", "ServiceLimits", "is_uuid4"]

logger = logging.getLogger("feature_planner.jobs")

# What a handed-off stream ends with: reconnect soon (an EventSource waits `retry` ms).
RECONNECT_ELSEWHERE = encode_comment(
    "this server is shutting down; reconnect to resume", retry_ms=250
)


@dataclass(frozen=True, slots=True)
class ServiceLimits:
    throttle_s: float = 0.1
    time_limit_s: float = 120
    orphan_grace_s: float = 30
    heartbeat_s: float = 15
    pending_ttl_s: float = 600


@dataclass(frozen=True, slots=True)
class CreatedJob:
    """Phase 1's answer; ``replayed``: an earlier request with the same Idempotency-Key
    made the job."""

    job_id: str
    expires_at_ms: int
    replayed: bool = False


class JobService:
    def __init__(
        self,
        store: JobStore,
        provider: Provider,
        repository: Path,
        *,
        limits: ServiceLimits,
        create_limiter: CreateLimiter,
        stream_limiter: StreamLimiter,
        history: HistoryStore,
        idempotency: IdempotencyKeys,
        agents: Callable[[str], Awaitable[AgentProfile | None]] | None = None,
        metrics: Metrics | None = None,
        trace_run: RunTracer | None = None,
        daily_budget: DailyBudget | None = None,
    ) -> None:
        self.store = store
        self.provider = provider
        self.repository = repository
        self.limits = limits
        self._create_limiter = create_limiter
        self._stream_limiter = stream_limiter
        self.history = history
        self.reader = JobReader(store, history)
        self._idempotency = idempotency
        self._agents = agents  # the user's active custom agent, by user id
        self.metrics = metrics or Metrics()
        self.trace_run = trace_run  # telemetry's span around each run, when tracing is on
        self.daily_budget = daily_budget  # None: no daily budget, and no query at create
        self._heartbeat = Heartbeat(limits.heartbeat_s)
        self._runs: dict[str, JobRun] = {}
        self._unwatched_since: dict[str, float] = {}
        self._supervisor: asyncio.Task[None] | None = None
        self.runner_id = uuid.uuid4().hex  # this process, as the holder of run leases
        self.executions = 0  # runs started by this process, for tests and metrics
        self.draining = False
        self._drain_started = 0.0
        self.metrics.watch_open_streams(lambda: self.open_streams)
        self._streams_per_job: dict[str, int] = {}
        self._relayed_by_closed_streams = 0
        self.metrics.watch_events_relayed(self._events_relayed)

    async def start(self) -> None:
        self.draining = False
        await self.store.start()
        await self._stream_limiter.start()
        self._heartbeat.start()
        if self.limits.orphan_grace_s > 0:
            self._supervisor = asyncio.get_running_loop().create_task(
                self._cancel_orphans_forever(), name="orphans"
            )

    def begin_drain(self, *, hand_off_streams: bool) -> None:
        """The process was asked to stop: refuse new streams and, when another process can
        serve them (``hand_off_streams``: the store is shared), end the open ones so that
        their clients reconnect there and resume. Runs go on (``finish_runs``)."""
        if self.draining:
            return
        self.draining = True
        self._drain_started = time.monotonic()
        logger.info("draining: %d runs, %d open streams", len(self._runs), self.open_streams)
        if hand_off_streams:
            for subscriber in self._heartbeat.subscribers():
                subscriber.hand_off(RECONNECT_ELSEWHERE)

    async def finish_runs(self, drain_s: float) -> None:
        """Give this process's runs until ``drain_s`` after the drain began to end."""
        remaining = drain_s - (time.monotonic() - self._drain_started)
        tasks = [run.task for run in self._runs.values() if run.task is not None]
        if tasks and remaining > 0:
            await asyncio.wait(tasks, timeout=remaining)

    async def stop(self) -> None:
        await self._heartbeat.stop()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        runs = list(self._runs.values())
        for run in runs:
            run.abandon("The server shut down before the run finished; please try again")
        tasks = [run.task for run in runs if run.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        await self._stream_limiter.close()
        await self.store.close()
        await self.provider.aclose()

    @property
    def open_streams(self) -> int:
        return len(self._heartbeat)

    def _events_relayed(self) -> int:
        open_now = sum(subscriber.delivered for subscriber in self._heartbeat.subscribers())
        return self._relayed_by_closed_streams + open_now

    # -- Phase 1 -------------------------------------------------------------------------

    async def create(
        self, user_id: str, request: SuggestionRequest, idempotency_key: str | None = None
    ) -> CreatedJob:
        """A new pending job, or (same ``idempotency_key`` and body as an earlier create of
        this user's, within 24 h) that earlier job, with no new job and no limit hit."""
        self._check_model(request.custom_model)
        created = now_ms()
        job = JobRecord(
            id=str(uuid.uuid4()),
            user_id=user_id,
            request=request,
            state=JobState.PENDING,
            created_at_ms=created,
            expires_at_ms=created + round(self.limits.pending_ttl_s * 1000),
        )
        return await self._create_once(job, idempotency_key, fingerprint(request))

    async def follow_up(
        self,
        user_id: str,
        parent_id: str,
        request: FollowUpRequest,
        idempotency_key: str | None = None,
    ) -> CreatedJob:
        """A new pending job that follows the caller's completed job ``parent_id``: the
        parent's input, its suggestions and the files it read, and what the user says about
        them. Kept in the job's record, so that any process may run it."""
        parent = await self.reader.status(user_id, parent_id)
        if parent.status is not JobState.COMPLETED:
            raise JobNotCompleteError(
                f"The job has not completed (it is {parent.status.value.replace('_', ' ')}); "
                "only a completed job can be followed up"
            )
        suggestions = tuple(
            Suggestion.model_validate(item) for item in (parent.result or {}).get("suggestions", [])
        )
        index = request.suggestion_index
        if index is not None and index >= len(suggestions):
            raise SuggestionNotFoundError(
                f"The job has {len(suggestions)} suggestions (indexes 0 to "
                f"{len(suggestions) - 1}); there is none at index {index}"
            )
        model = parent.request.custom_model
        if model is not None and model not in self.provider.models:
            model = None  # no longer offered: the server's default model
        created = now_ms()
        job = JobRecord(
            id=str(uuid.uuid4()),
            user_id=user_id,
            request=parent.request.model_copy(update={"custom_model": model}),
            state=JobState.PENDING,
            created_at_ms=created,
            expires_at_ms=created + round(self.limits.pending_ttl_s * 1000),
            parent_job_id=parent.job_id,
            follow_up=FollowUp(
                message=request.message,
                suggestion_index=index,
                parent_suggestions=suggestions,
                parent_files_read=parent.files_read or (),
            ),
        )
        # Another route's body: a key used for a create or another parent is "reused".
        body = f"follow-up:{parent.job_id}:{fingerprint(request)}"
        return await self._create_once(job, idempotency_key, body)

    async def _create_once(
        self, job: JobRecord, idempotency_key: str | None, body: str
    ) -> CreatedJob:
        """Create ``job``; with an ``idempotency_key``, only if the key is new (else the
        job it made, when ``body`` is the same)."""
        if idempotency_key is None:
            await self._create(job)
            return CreatedJob(job.id, job.expires_at_ms)
        user_id = job.user_id
        reservation = await self._idempotency.reserve(
            user_id, idempotency_key, body, job.id, job.expires_at_ms
        )
        if reservation.replayed:
            return _replay(reservation)
        try:
            await self._create(job)
        except BaseException:
            await self._idempotency.release(user_id, idempotency_key)
            raise
        await self._idempotency.settle(user_id, idempotency_key)
        return CreatedJob(job.id, job.expires_at_ms)

    async def _create(self, job: JobRecord) -> None:
        if self.daily_budget is not None:  # before the limiter: a refusal costs no create
            try:
                await self.daily_budget.check(job.user_id)
            except RateLimitedError:
                self.metrics.refusals.labels("daily_budget").inc()
                raise
        try:
            await self._create_limiter.hit(job.user_id)
        except RateLimitedError:
            self.metrics.refusals.labels("create").inc()
            raise
        await self.store.create(job)
        self.history.record(entry_of(job))
        self.metrics.jobs_created.inc()
        logger.info("job created", extra=_fields(job, "created"))

    def _check_model(self, model: str | None) -> None:
        if model is None:
            return
        allowed = self.provider.models
        if model not in allowed:
            reason = (
                f"must be one of: {', '.join(allowed)}"
                if allowed
                else f"this server's provider ({self.provider.name}) offers no model choice"
            )
            raise RequestValidationError([{"field": "customModel", "message": reason}])

    # -- Phase 2 -------------------------------------------------------------------------

    async def open_stream(
        self, user_id: str, job_id: str, last_event_id: int | None
    ) -> Subscriber | None:
        """Check, claim (first subscriber only) and subscribe; raise a refusal otherwise.

        ``None``: the client resumes from the job's final event, so there is nothing more to
        send, ever (the web layer answers 204, which tells an ``EventSource`` to stop).
        """
        if self.draining:
            raise ServerDrainingError
        job = await self._owned_job(user_id, job_id)
        if job is None:  # expired, or finished and its events no longer kept
            await self.reader.finished_entry(user_id, job_id)  # 403 if another user's
            raise JobNotFoundError(
                "The job's events are no longer kept; read its result with Accept: application/json"
            )
        if job.state.is_final:
            if last_event_id is None:
                raise JobFinishedError(
                    f"The job has already {job.state.value.replace('_', ' ')}; "
                    "resume with Last-Event-ID to receive its remaining events"
                )
            if last_event_id >= job.last_event_id:
                return None
        try:
            stream_id = await self._stream_limiter.acquire(user_id)
        except TooManyStreamsError:
            self.metrics.refusals.labels("streams").inc()
            raise
        try:
            if job.state is JobState.PENDING and await self.store.claim(
                job.id, self.runner_id, on_cancel=partial(self._cancel_local, job.id)
            ):
                self._start_run(job)
            log = await self.store.subscribe_log(job.id)
            if log is None:
                raise JobNotFoundError
        except BaseException:
            self._stream_limiter.release(user_id, stream_id)
            raise
        after = last_event_id or 0
        subscriber = Subscriber(
            log,
            after,
            first=events.frame(after, events.connected(job.id, resumed_from=last_event_id)),
            on_close=lambda sub: self._detach(sub, user_id, job.id, stream_id, log),
        )
        self._heartbeat.add(subscriber)
        self.store.add_watcher(job.id, stream_id)
        streams = self._streams_per_job[job.id] = self._streams_per_job.get(job.id, 0) + 1
        self.metrics.subscribers_per_job.observe(streams)
        return subscriber

    def _detach(
        self, subscriber: Subscriber, user_id: str, job_id: str, stream_id: str, log: EventLog
    ) -> None:
        self._heartbeat.discard(subscriber)
        self._relayed_by_closed_streams += subscriber.delivered
        if (left := self._streams_per_job.pop(job_id, 1) - 1) > 0:
            self._streams_per_job[job_id] = left
        self._stream_limiter.release(user_id, stream_id)
        self.store.remove_watcher(job_id, stream_id)
        self.store.release_log(job_id, log)

    async def _cancel_orphans_forever(self) -> None:
        """One check per tick for all the runs of this process: is anybody, on any
        process, watching? A run nobody watched for the whole grace period is cancelled."""
        grace = self.limits.orphan_grace_s
        tick = min(1.0, grace / 5)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(tick)
            if not self._runs:
                continue
            try:
                counts = await self.store.watcher_counts(list(self._runs))
            except FeaturePlannerError:
                continue  # the store is down; the run's own writes will decide its fate
            now = loop.time()
            for job_id, count in counts.items():
                if count:
                    self._unwatched_since.pop(job_id, None)
                    continue
                since = self._unwatched_since.setdefault(job_id, now)
                run = self._runs.get(job_id)
                if run is not None and now - since >= grace:
                    logger.info(
                        "job has had no subscriber for %gs",
                        grace,
                        extra={"job_id": job_id, "transition": "orphaned"},
                    )
                    run.cancel(f"Nobody was watching the job for {grace:g} s, so it was cancelled")

    def _start_run(self, job: JobRecord) -> None:
        started = dataclasses.replace(
            entry_of(job),
            status=JobState.IN_PROGRESS,
            started_at_ms=now_ms(),
            provider=self.provider.name,
            model=job.request.custom_model,
        )
        self.history.record(started)
        run = JobRun(
            self.store,
            job.id,
            throttle_s=self.limits.throttle_s,
            time_limit_s=self.limits.time_limit_s,
            metrics=self.metrics,
            user_id=job.user_id,
            trace=self.trace_run,
        )
        self._runs[job.id] = run
        self.executions += 1
        agents, user_id = self._agents, job.user_id
        task = run.start(
            self.provider,
            PlanRequest.from_request(job.request, self.repository, follow_up=job.follow_up),
            (lambda: agents(user_id)) if agents is not None else None,
        )
        task.add_done_callback(lambda _: self._run_finished(run, started))
        logger.info("job started", extra=_fields(job, "started", provider=self.provider.name))

    def _run_finished(self, run: JobRun, started: HistoryEntry) -> None:
        self._runs.pop(run.job_id, None)
        self._unwatched_since.pop(run.job_id, None)
        if run.final is not None:
            final = ended(started, run.final, run.last_event_id, run.state)
            self.history.record(
                dataclasses.replace(
                    final, files_read=run.files_read, tokens=run.tokens, cost_usd=run.cost_usd
                )
            )

    def _cancel_local(self, job_id: str, message: str) -> None:
        run = self._runs.get(job_id)
        if run is not None:
            run.cancel(message)

    # -- DELETE --------------------------------------------------------------------------

    async def cancel(self, user_id: str, job_id: str) -> None:
        job = await self._owned_job(user_id, job_id)
        if job is None:  # as the stream answers: the job is gone from the store
            await self.reader.finished_entry(user_id, job_id)  # 403 if another user's
            raise JobNotFoundError
        if job.state.is_final:
            raise JobFinishedError(f"The job has already {job.state.value}; nothing to cancel")
        message = "The job was cancelled by its owner"
        final = events.error(ErrorCode.CANCELLED, message)
        if job.state is JobState.PENDING and await self.store.cancel_pending(
            job.id, JobEvent.of(1, final)
        ):
            self.history.record(ended(entry_of(job), final, 1, JobState.CANCELLED))
            logger.info("job cancelled before it ran", extra=_fields(job, "cancelled"))
            return
        run = self._runs.get(job.id)
        if run is not None and run.task is not None:
            run.cancel(message)
            await asyncio.wait([run.task], timeout=5)
            return
        # It runs in another process: ask it, and answer once the job has ended.
        log = await self.store.subscribe_log(job.id)
        try:
            if log is not None and log.finished:
                raise JobFinishedError("The job has already finished; nothing to cancel")
            await self.store.request_cancel(job.id, message)
            if log is not None:
                await wait_finished(log, timeout=5)
        finally:
            if log is not None:
                self.store.release_log(job.id, log)

    # -- shared checks -------------------------------------------------------------------

    async def _owned_job(self, user_id: str, job_id: str) -> JobRecord | None:
        """The caller's job from the store; None if the store no longer has it."""
        if not is_uuid4(job_id):
            raise InvalidJobIdError(f"{job_id[:64]!r} is not a UUID v4 job id")
        job = await self.store.get(job_id)
        if job is not None:
            check_owner(user_id, job.user_id, job_id)
        return job


def _replay(reservation: Reservation) -> CreatedJob:
    return CreatedJob(reservation.job_id, reservation.expires_at_ms, replayed=True)


def _fields(job: JobRecord, transition: str, **more: Any) -> dict[str, Any]:
    """The structured fields of a job's log line (``extra=``)."""
    return {"job_id": job.id, "user_id": job.user_id, "transition": transition, **more}

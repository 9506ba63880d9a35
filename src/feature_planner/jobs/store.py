"""The job store interface: job records, their event logs, the claim and the TTLs.

A backend keeps each job's record (owner, input, state) and its event log, and hands the
web layer an in-process ``EventLog`` to subscribe to. The memory backend is the embedded
default; a Redis backend fills the same interface for several processes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..agent.base import FollowUp
from ..events import JobEvent
from ..models import JobState, SuggestionRequest
from .relay import EventLog

__all__ = ["CancelHandler", "JobRecord", "JobStore", "JobTTLs"]


@dataclass(slots=True)
class JobRecord:
    id: str
    user_id: str
    request: SuggestionRequest
    state: JobState
    created_at_ms: int
    expires_at_ms: int
    last_event_id: int = 0  # the id of the final event once the job has finished
    parent_job_id: str | None = None  # a follow-up: the completed job it follows
    follow_up: FollowUp | None = None  # and what that job left for this one


@dataclass(frozen=True, slots=True)
class JobTTLs:
    """How long each state is kept, in seconds (DESIGN.md, "Job lifecycle")."""

    pending: float = 600
    completed: float = 60
    finished: float = 3600  # failed and cancelled

    def after(self, state: JobState) -> float:
        if state is JobState.COMPLETED:
            return self.completed
        if state is JobState.PENDING:
            return self.pending
        return self.finished


# Stops the run of a claimed job, with the message of its final ``error`` event.
CancelHandler = Callable[[str], None]


class JobStore(ABC):
    """Records and event logs of jobs. Every method may raise ``StoreUnavailableError``."""

    @abstractmethod
    async def create(self, job: JobRecord) -> None:
        """Store a new pending job; it expires after the pending TTL unless claimed."""

    @abstractmethod
    async def get(self, job_id: str) -> JobRecord | None:
        """The job, or None if there is no such job or it expired."""

    @abstractmethod
    async def claim(self, job_id: str, runner_id: str, *, on_cancel: CancelHandler) -> bool:
        """Move a pending job to in_progress; True for exactly one caller, ever.

        The caller then holds the job's lease until ``finish``; the store renews it while
        this process lives. Until then, ``on_cancel(message)`` is called in this process
        when the job must stop: its owner cancelled it (``request_cancel``, from any
        process), or the store took the job from this runner (its lease was lost).
        """

    @abstractmethod
    async def cancel_pending(self, job_id: str, final_event: JobEvent) -> bool:
        """Cancel a job that is still pending, recording ``final_event`` as event 1.

        False if it was claimed (or is gone) in the meantime: it will never run if True.
        """

    @abstractmethod
    def append(self, job_id: str, event: JobEvent) -> None:
        """Record the next event of a running job. Never blocks the caller."""

    @abstractmethod
    async def finish(self, job_id: str, state: JobState, last_event_id: int) -> None:
        """End a running job in a final state; its final event was appended already."""

    @abstractmethod
    async def subscribe_log(self, job_id: str) -> EventLog | None:
        """The in-process log to read the job's events from; None if the job is gone."""

    def release_log(self, job_id: str, log: EventLog) -> None:  # noqa: B027 - optional hook
        """One subscriber of ``log`` (from ``subscribe_log``) is gone."""

    @abstractmethod
    def add_watcher(self, job_id: str, watcher_id: str) -> None:
        """An open stream on the job, anywhere: the job is not an orphan."""

    @abstractmethod
    def remove_watcher(self, job_id: str, watcher_id: str) -> None:
        """That stream closed."""

    @abstractmethod
    async def watcher_counts(self, job_ids: Iterable[str]) -> dict[str, int]:
        """Open streams per job, counted across every process."""

    @abstractmethod
    async def request_cancel(self, job_id: str, message: str) -> None:
        """Call the ``on_cancel`` of the job's claim, in whichever process holds it."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise ``StoreUnavailableError`` if the store cannot be reached."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Start background maintenance (expiry, connections)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Stop background work and release connections."""

"""A run's progress, from what it does: the phase it is in and a percent that never goes down.

The phase follows the run's own steps: reading the project's docs, exploring the code (each
file read counts), drafting, and verifying the suggestions' evidence. Percent is a function
of the phase and of how far into it the run is, and is held at its highest: a step that
would move it back leaves it where it is. It stays below 100 until ``done`` (the run
completed): a cancelled or failed run never shows 100.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath

from .. import events
from ..models import ProgressEvent, ProgressPhase

__all__ = ["DOC_NAMES", "ProgressTracker"]

# Files that say how a project works: reading one is reading the docs, not the code.
DOC_NAMES = frozenset(
    {"readme", "claude", "agents", "contributing", "architecture", "design", "conventions"}
)
_ORDER = (
    ProgressPhase.READING_DOCS,
    ProgressPhase.EXPLORING,
    ProgressPhase.DRAFTING,
    ProgressPhase.VERIFYING,
)
_EXPLORED_AT = 10  # percent when exploring begins
_DRAFTED_AT = 60  # ... drafting; exploring approaches it as files are read, never reaching it
_VERIFIED_AT = 70  # ... verifying; each suggestion ready adds its share up to 99


class ProgressTracker:
    def __init__(self, publish: Callable[[ProgressEvent], None], expected: int = 3) -> None:
        self._publish = publish
        self.phase: ProgressPhase | None = None
        self.percent = 0
        self.files_read = 0
        self.ready = 0
        self.expected = expected
        self._sent: tuple[object, ...] | None = None

    def activity(self, tool: str, detail: str) -> None:
        """The agent used a tool: ``Read`` of a doc, or exploring."""
        if tool == "Read":
            self.files_read += 1
            doc = PurePosixPath(detail.split(" ", 1)[0]).stem.lower() in DOC_NAMES
            if doc and self.phase in (None, ProgressPhase.READING_DOCS):
                self._enter(ProgressPhase.READING_DOCS)
                return
        self._enter(ProgressPhase.EXPLORING)

    def enter(self, phase: ProgressPhase, *, expected: int | None = None) -> None:
        """A provider says where it is (and, if it knows, how many suggestions to expect)."""
        if expected is not None and expected > 0:
            self.expected = max(expected, self.ready)
        self._enter(phase)

    def suggestion_ready(self) -> None:
        self.ready += 1
        self.expected = max(self.expected, self.ready)
        self._enter(ProgressPhase.VERIFYING)

    def done(self) -> None:
        """The run completed: 100, just before ``complete``."""
        self._update(self.phase or ProgressPhase.VERIFYING, 100)

    def _enter(self, phase: ProgressPhase) -> None:
        if self.phase is not None and _ORDER.index(phase) < _ORDER.index(self.phase):
            phase = self.phase  # phases only move forward
        self._update(phase, min(99, self._percent_in(phase)))

    def _percent_in(self, phase: ProgressPhase) -> int:
        if phase is ProgressPhase.READING_DOCS:
            return 2 + 2 * min(self.files_read, 3)
        if phase is ProgressPhase.EXPLORING:
            span = _DRAFTED_AT - _EXPLORED_AT
            return _EXPLORED_AT + span * self.files_read // (self.files_read + 10)
        if phase is ProgressPhase.DRAFTING:
            return _DRAFTED_AT
        span = 99 - _VERIFIED_AT
        return _VERIFIED_AT + span * self.ready // max(self.expected, 1)

    def _update(self, phase: ProgressPhase, percent: int) -> None:
        self.phase, self.percent = phase, max(self.percent, percent)
        state = (self.phase, self.percent, self.files_read, self.ready, self.expected)
        if state == self._sent:
            return
        self._sent = state
        self._publish(
            events.progress(
                self.phase,
                self.percent,
                files_read=self.files_read,
                suggestions_ready=self.ready,
                suggestions_expected=self.expected,
            )
        )

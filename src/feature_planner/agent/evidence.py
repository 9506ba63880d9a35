"""Checking what a suggestion cites against the repository, before the suggestion is sent.

An evidence item (``models.Evidence``) names a file, a range of lines (from 1, inclusive) and
a quote. It is borne out when the ``Sandbox`` lets the file be read (the same answer the
agent's tools give: nothing outside the root, no secret, skipped, git-ignored or binary
file), the lines exist, and the quote occurs in them once every run of whitespace (line
endings included) is collapsed to one space on both sides: a quote may span lines and
differ in indentation, but a paraphrase, or a quote from other lines of the file, fails.

- ``verify`` checks one item and says why it fails, in words the model can act on.
- ``verify_suggestion`` checks a suggestion's items and keeps the verified ones;
  ``retry_message`` tells the model what to fix; ``EvidenceTally`` counts a run's items
  for ``complete.evidenceStats``.
- ``verify_suggestion_in_thread``: the same off the event loop (sandbox reads are blocking
  file I/O).
"""

from __future__ import annotations

import asyncio
import bisect
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from ..models import Evidence, EvidenceStats, Suggestion
from .sandbox import (
    READ_LINES_MAX_BYTES,
    BinaryFileError,
    FileTooLargeError,
    LineRangeError,
    MissingPathError,
    Sandbox,
    SandboxError,
    UnreadableFileError,
)

__all__ = [
    "MAX_EVIDENCE",
    "EvidenceTally",
    "Problem",
    "SuggestionCheck",
    "Verdict",
    "normalize_whitespace",
    "retry_message",
    "verify",
    "verify_suggestion",
    "verify_suggestion_in_thread",
]

MAX_EVIDENCE = 5  # items a suggestion may carry (``Suggestion.evidence``)
SHOWN_CHARS = 300  # of the cited lines, shown to the model when its quote is not in them
MAX_PLACES = 3  # where else in the file a misplaced quote occurs, at most this many


class Problem(StrEnum):
    """Why an evidence item fails."""

    MISSING = "missing"  # no such file
    REFUSED = "refused"  # may not be read: outside the root, a secret, ignored, a directory
    UNREADABLE = "unreadable"  # binary, not a regular file, or too large
    LINES = "lines"  # the file has no such lines
    QUOTE = "quote"  # the quote is not in those lines (or is empty)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One item's check. ``evidence`` is the item as cited, or, when it is verified, with its
    path as the sandbox resolved it (``./src\\x.ts`` becomes ``src/x.ts``)."""

    evidence: Evidence
    problem: Problem | None = None
    reason: str = ""  # why it fails, for the model; "" when verified

    @property
    def ok(self) -> bool:
        return self.problem is None


def normalize_whitespace(text: str) -> str:
    """Every run of whitespace (line endings, tabs, Unicode spaces) as one space, trimmed."""
    return " ".join(text.split())


def verify(sandbox: Sandbox, item: Evidence) -> Verdict:
    """Whether the repository bears ``item`` out (blocking file I/O)."""
    where = f"{_lines(item)} of {item.path}"
    quote = normalize_whitespace(item.quote)
    if not quote:
        reason = f"the quote is empty (only whitespace); copy the text of {where} verbatim"
        return Verdict(item, Problem.QUOTE, reason)
    try:
        location = sandbox.resolve(item.path)
        lines = sandbox.read_lines(location.rel, item.start_line, item.end_line)
    except MissingPathError:
        return Verdict(item, Problem.MISSING, f"no such file: {item.path}")
    except (BinaryFileError, FileTooLargeError) as refusal:
        return Verdict(item, Problem.UNREADABLE, str(refusal))
    except UnreadableFileError as refusal:
        return Verdict(item, Problem.UNREADABLE, f"{item.path} cannot be read: {refusal}")
    except LineRangeError as refusal:
        places = _elsewhere(sandbox, item.path, quote)
        more = f" The quote occurs at {places}." if places else ""
        return Verdict(item, Problem.LINES, f"{refusal}{more}")
    except SandboxError as refusal:  # RefusedPathError, and any refusal still to come
        return Verdict(item, Problem.REFUSED, f"that path may not be read: {refusal}")
    except OSError:  # no permission, or changed while being read; never show the real path
        return Verdict(item, Problem.UNREADABLE, f"{item.path} could not be read")
    text = "\n".join(lines)
    if quote not in normalize_whitespace(text):
        shown = text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"
        places = _elsewhere(sandbox, item.path, quote)
        more = f" (it occurs at {places})" if places else ""
        reason = f"the quote does not occur in {where}{more}; the lines read:\n{shown}"
        return Verdict(item, Problem.QUOTE, reason)
    return Verdict(item.model_copy(update={"path": location.rel}))


def _lines(item: Evidence) -> str:
    if item.start_line == item.end_line:
        return f"line {item.start_line}"
    return f"lines {item.start_line}-{item.end_line}"


def _elsewhere(sandbox: Sandbox, path: str, quote: str) -> str:
    """Where in the file (its first ``READ_LINES_MAX_BYTES``) the normalized ``quote`` does
    occur ("line 4; lines 30-31"), or "" when nowhere."""
    try:
        text = sandbox.read_text(sandbox.resolve(path), READ_LINES_MAX_BYTES, truncate=True)
    except (SandboxError, OSError):
        return ""
    places = _find(text.split("\n"), quote)
    if not places:
        return ""
    shown = "; ".join(f"lines {a}-{b}" if a != b else f"line {a}" for a, b in places[:MAX_PLACES])
    more = "; and further on" if len(places) > MAX_PLACES else ""
    return shown + more


def _find(lines: list[str], quote: str) -> list[tuple[int, int]]:
    """The line ranges (from 1) where the normalized ``quote`` occurs in ``lines``."""
    starts: list[int] = []  # offset of each non-blank line's text in ``joined``
    numbers: list[int] = []
    parts: list[str] = []
    offset = 0
    for number, line in enumerate(lines, start=1):
        normal = normalize_whitespace(line)
        if normal:
            starts.append(offset)
            numbers.append(number)
            parts.append(normal)
            offset += len(normal) + 1
    joined = " ".join(parts)
    places: list[tuple[int, int]] = []
    found = joined.find(quote)
    while found != -1 and len(places) <= MAX_PLACES:
        first = numbers[bisect.bisect_right(starts, found) - 1]
        last = numbers[bisect.bisect_right(starts, found + len(quote) - 1) - 1]
        places.append((first, last))
        found = joined.find(quote, found + len(quote))
    return places


@dataclass(frozen=True, slots=True)
class SuggestionCheck:
    """A suggestion's evidence, checked. ``suggestion`` keeps only the verified items (the
    first of identical ones); it may be sent when ``sendable``."""

    suggestion: Suggestion
    verdicts: tuple[Verdict, ...]  # one per item cited, in order
    index: int | None = None  # where the suggestion was sent (from 0); None: it was not

    @property
    def cited(self) -> int:
        return len(self.verdicts)

    @property
    def verified(self) -> tuple[Evidence, ...]:
        return tuple(self.suggestion.evidence)

    @property
    def failed(self) -> tuple[tuple[int, Verdict], ...]:
        """The items that failed, each with its position in the suggestion (from 1)."""
        return tuple((n, v) for n, v in enumerate(self.verdicts, start=1) if not v.ok)

    @property
    def sendable(self) -> bool:
        """At least one item verified: the suggestion may be sent (with those items)."""
        return bool(self.suggestion.evidence)

    @property
    def complete(self) -> bool:
        """Every item cited is verified, and there is at least one: nothing to retry."""
        return self.sendable and not self.failed


def verify_suggestion(sandbox: Sandbox, suggestion: Suggestion) -> SuggestionCheck:
    """Check each evidence item of ``suggestion`` (blocking file I/O)."""
    verdicts = tuple(verify(sandbox, item) for item in suggestion.evidence)
    kept: dict[tuple[str, int, int, str], Evidence] = {}
    for verdict in verdicts:
        if verdict.ok:
            kept.setdefault(_key(verdict.evidence), verdict.evidence)
    reduced = suggestion.model_copy(update={"evidence": list(kept.values())})
    return SuggestionCheck(reduced, verdicts)


async def verify_suggestion_in_thread(
    sandbox: Sandbox | Path | str, suggestion: Suggestion
) -> SuggestionCheck:
    """``verify_suggestion`` in a worker thread. Given a root rather than a ``Sandbox``, it
    makes a new one, which sees the repository as it is now (``.gitignore`` edits too)."""

    def run() -> SuggestionCheck:
        checker = sandbox if isinstance(sandbox, Sandbox) else Sandbox(sandbox)
        return verify_suggestion(checker, suggestion)

    return await asyncio.to_thread(run)


def _key(item: Evidence) -> tuple[str, int, int, str]:
    return (item.path, item.start_line, item.end_line, normalize_whitespace(item.quote))


def retry_message(check: SuggestionCheck) -> str:
    """One message asking the model to fix the suggestion's evidence: each failed item and
    why, or that it cites nothing."""
    title = check.suggestion.title
    if not check.verdicts:
        return (
            f'Suggestion "{title}" cites no evidence, so it cannot be shown. Submit it again '
            f"with 1 to {MAX_EVIDENCE} evidence items from files you have read: each a path "
            "relative to the repository root, its exact lines (startLine and endLine, from 1, "
            "inclusive) and a quote copied verbatim from those lines."
        )
    failed = check.failed
    lines = [
        f'Suggestion "{title}": {len(failed)} of {check.cited} evidence items could not be '
        "verified against the repository"
        + ("" if check.sendable else ", so it has no verified evidence and cannot be shown")
        + ":"
    ]
    for number, verdict in failed:
        item = verdict.evidence
        reason = verdict.reason.replace("\n", "\n  ")  # the lines read, indented under it
        lines.append(f"- evidence {number} ({item.path}, {_lines(item)}): {reason}")
    lines.append(
        "Submit the suggestion again with each of these items fixed or removed: cite a file "
        "you have read, its exact lines (1-based, inclusive), and a quote copied verbatim "
        "from those lines (whitespace may differ; a paraphrase fails). Keep the items that "
        "were verified as they are."
    )
    return "\n".join(lines)


@dataclass(slots=True)
class EvidenceTally:
    """A run's evidence items, counted as ``complete.evidenceStats`` says.

    For each suggestion: ``attempt`` each of its checks in turn (the first and every retry,
    each once, with the check before it as ``previous``), then either ``send`` its last
    check (the suggestion was sent with that check's verified items) or ``give_up`` it (the
    suggestion is not sent).

    ``cited`` counts the items of every attempt, except those that ``previous`` verified and
    that come back unchanged (the same item kept, not proposed anew): an item fixed on retry
    counts twice. ``verified`` counts the items sent; ``dropped`` the failed items of a sent
    suggestion's last attempt and every item of a suggestion given up. Items that failed and
    went back to the model for another attempt are neither: the next attempt replaces them.
    So ``verified <= cited`` and ``verified + dropped <= cited``.
    """

    cited: int = 0
    verified: int = 0
    dropped: int = 0

    def attempt(self, check: SuggestionCheck, previous: SuggestionCheck | None = None) -> None:
        """Count the items of one attempt at a suggestion as cited."""
        kept = {_key(item) for item in previous.verified} if previous is not None else set()
        self.cited += sum(
            1 for verdict in check.verdicts if not (verdict.ok and _key(verdict.evidence) in kept)
        )

    def send(self, check: SuggestionCheck) -> None:
        """The suggestion was sent as ``check`` (its last attempt, counted) reduced it."""
        self.verified += len(check.verified)
        self.dropped += len(check.failed)

    def give_up(self, check: SuggestionCheck) -> None:
        """The suggestion whose last attempt (counted) is ``check`` will not be sent."""
        self.dropped += len(check.verified) + len(check.failed)

    def to_stats(self) -> EvidenceStats:
        return EvidenceStats(cited=self.cited, verified=self.verified, dropped=self.dropped)

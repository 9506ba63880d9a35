"""The ``offline`` provider: suggestions composed from the repository itself, no AI model.

It reads CLAUDE.md and the README, finds the files about the page or component the user
named (``repo_scan``), and fills a fixed set of ideas per feature type with what it found:
real paths, real function and component names, the project's name and stack. The same
input always gives the same output. The text is streamed like a model's, in small chunks,
so that the whole pipeline (coalescing, SSE, resume) can be exercised without a key.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from ...errors import ProviderError
from ...models import FeatureType, PriorityLevel, Suggestion, TokenUsage
from ..base import PlanRequest, PlanResult, Provider, RunSink
from .repo_scan import (
    ProjectDocs,
    ScanResult,
    find_matching_files,
    glob_pattern,
    read_project_docs,
    search_terms,
)

__all__ = ["OFFLINE_MODEL", "OFFLINE_NOTICE", "OfflineProvider"]

OFFLINE_MODEL = "offline-engine"
OFFLINE_NOTICE = "Composed by the offline engine from the repository's files; no AI model was used."
_YIELD_EVERY = 8  # chunks between yields to the event loop when there is no interval


@dataclass(frozen=True, slots=True)
class _Idea:
    title: str
    rationale: str
    description: str
    consideration: str


# Placeholders: {subject} as the user wrote it, {where} the best file (and its main symbol),
# {file} the best file's path. Each list is in order of importance: critical takes the top 3.
_IDEAS: dict[FeatureType, tuple[_Idea, ...]] = {
    FeatureType.ENHANCEMENT: (
        _Idea(
            "Handle empty, loading and error states in the {subject}",
            "Edge cases are where users get stuck; {where} is the place they are decided.",
            "Give the {subject} an explicit state for no data, slow data and failed loads, "
            "each with a next step (retry, create the first item, contact support).",
            "List the states {file} can reach today and add a test for each one.",
        ),
        _Idea(
            "Keep the {subject}'s state in the URL",
            "Filters, sorting and selection that survive a reload can be shared and bookmarked.",
            "Read and write the {subject}'s view state from the query string in {where}, so "
            "that a link reproduces exactly what a colleague saw.",
            "Make the URL the single source of truth and debounce writes while typing.",
        ),
        _Idea(
            "Undo for destructive actions in the {subject}",
            "A confirmation dialog is clicked through; an undo is what actually saves work.",
            "Replace confirmations in the {subject} with an immediate action and a short-lived "
            "undo, by deferring the delete or keeping a soft-deleted copy.",
            "Find the delete and overwrite paths in {file} and route them through one helper.",
        ),
        _Idea(
            "Pin the {subject}'s behaviour with tests",
            "Every later enhancement is cheaper when the current behaviour is written down.",
            "Add behavioural tests around {where} covering the main flow and two edge cases, "
            "before changing it.",
            "Test what a user sees, not the implementation, so that refactors stay free.",
        ),
        _Idea(
            "Let users tune the {subject}",
            "Defaults fit nobody exactly; a few persisted preferences remove daily friction.",
            "Add two or three user preferences to the {subject} (density, default sort, "
            "visible fields) and store them per user.",
            "Start with the setting users ask for most; keep the defaults unchanged.",
        ),
    ),
    FeatureType.NEW_CAPABILITY: (
        _Idea(
            "Saved views for the {subject}",
            "Users rebuild the same filters every visit; saving them turns minutes into a click.",
            "Let users name and save the current configuration of the {subject} and switch "
            "between saved views from {where}.",
            "Store views per user with a version field so the format can evolve.",
        ),
        _Idea(
            "Activity history for the {subject}",
            "Who changed what, and when, is the first question after any surprise.",
            "Record changes made through the {subject} and show a timeline next to it, "
            "with the author, the time and a readable diff.",
            "Write history entries in the same transaction as the change they describe.",
        ),
        _Idea(
            "Export from the {subject}",
            "Data that cannot leave the product ends up copied by hand into spreadsheets.",
            "Add a CSV and JSON export of what the {subject} shows, respecting the current "
            "filters, built on the data {where} already loads.",
            "Stream large exports instead of building them in memory.",
        ),
        _Idea(
            "Share the {subject} with teammates",
            "Work on the {subject} is rarely done alone; sharing avoids screenshots in chat.",
            "Add a share action to the {subject} with view or edit access, and show who "
            "else has access.",
            "Check permissions on the server for every shared read and write.",
        ),
        _Idea(
            "Notifications for changes in the {subject}",
            "Users come back to check for changes; telling them when something changed is kinder.",
            "Let users follow the {subject} and receive an in-app or e-mail digest when "
            "something they follow changes.",
            "Batch notifications into digests so that busy items do not flood anyone.",
        ),
    ),
    FeatureType.OPTIMIZATION: (
        _Idea(
            "Measure the {subject} before optimising it",
            "Without numbers, optimisation is guesswork; one timing tells where the time goes.",
            "Add timings around the slow paths of {where}: data loading, rendering or "
            "computation, and record them per request.",
            "Record the p50 and p95 today so the improvement can be shown afterwards.",
        ),
        _Idea(
            "Cache what the {subject} loads",
            "The same data is often fetched again on every visit.",
            "Cache the {subject}'s data reads with an explicit lifetime and invalidate them "
            "when the underlying records change.",
            "Decide per read whether slightly stale data is acceptable before caching it.",
        ),
        _Idea(
            "Remove repeated work in the {subject}",
            "Repeated queries and re-computation cost the most and are the easiest to remove.",
            "Look in {file} for loops that query or compute per item and batch or memoise them.",
            "Count the queries one view of the {subject} makes, before and after.",
        ),
        _Idea(
            "Paginate or virtualise long lists in the {subject}",
            "Rendering everything at once makes the {subject} slow exactly for the best users.",
            "Load the {subject}'s items in pages (cursor based) and render only what is visible.",
            "Keep scroll position and selection stable while pages load.",
        ),
        _Idea(
            "Load less up front in the {subject}",
            "Code and data that are not needed for the first view only delay it.",
            "Defer rarely used parts of the {subject} (dialogs, charts, editors) until they "
            "are opened.",
            "Check the size of what {file} pulls in before and after.",
        ),
    ),
    FeatureType.UI_IMPROVEMENT: (
        _Idea(
            "Accessibility pass on the {subject}",
            "Keyboard and screen-reader users hit barriers first, and fixes help everyone.",
            "Make every control in the {subject} reachable by keyboard, labelled, visibly "
            "focused and readable at sufficient contrast.",
            "Run an automated accessibility check on {file} in CI.",
        ),
        _Idea(
            "Inline validation and helpful errors in the {subject}",
            "Errors shown late, or without a fix, are the main source of frustration.",
            "Validate input in the {subject} as users type, and phrase every error as what "
            "to do next.",
            "Keep the same rules on the server; the client copy is only for speed.",
        ),
        _Idea(
            "Loading skeletons and optimistic updates in the {subject}",
            "Perceived speed matters as much as real speed.",
            "Show the {subject}'s layout immediately with skeletons, and apply user "
            "actions at once while the server confirms them.",
            "Roll an optimistic change back visibly when the server refuses it.",
        ),
        _Idea(
            "A responsive layout for the {subject}",
            "A growing share of visits come from small screens.",
            "Rework the layout of {where} so that it reads well from phone to wide screens, "
            "collapsing secondary panels first.",
            "Test at three widths, and with 200 % zoom.",
        ),
        _Idea(
            "Clearer visual hierarchy in the {subject}",
            "When everything looks equally important, users miss the primary action.",
            "Give the {subject} one primary action, group secondary ones, and use spacing "
            "and type scale rather than borders to separate sections.",
            "Reuse the project's existing design tokens rather than new colours.",
        ),
    ),
    FeatureType.INTEGRATION: (
        _Idea(
            "Webhooks for events in the {subject}",
            "Teams want to react to changes in their own tools without polling.",
            "Emit signed webhook events when something changes through the {subject}, with "
            "retries and a delivery log.",
            "Sign payloads and retry with backoff; let users replay a delivery.",
        ),
        _Idea(
            "An API for what the {subject} does",
            "Anything users can do by hand, some will want to automate.",
            "Expose the operations behind {where} as a documented, versioned API endpoint "
            "with token authentication.",
            "Share validation between the UI and the API so that they cannot drift.",
        ),
        _Idea(
            "Product analytics for the {subject}",
            "Knowing which parts of the {subject} are used guides every later decision.",
            "Send a few well-named events from the {subject} (viewed, main action, error) "
            "to the analytics tool the team already uses.",
            "Never send personal data in event properties; document each event.",
        ),
        _Idea(
            "Import into the {subject} from other tools",
            "Adoption stalls when existing data has to be retyped.",
            "Add an import from CSV and one popular external tool into the {subject}, with a "
            "preview and a dry run.",
            "Make imports idempotent so that a retried import creates no duplicates.",
        ),
        _Idea(
            "Chat notifications from the {subject}",
            "Teams live in chat; bringing updates there shortens the feedback loop.",
            "Post selected updates from the {subject} to a Slack or Teams channel the user "
            "chooses.",
            "Keep the message format short and link back to the {subject}.",
        ),
    ),
}

_COUNT: dict[PriorityLevel, int] = {
    PriorityLevel.CRITICAL: 3,
    PriorityLevel.HIGH: 3,
    PriorityLevel.MEDIUM: 4,
    PriorityLevel.LOW: 5,
}
_SCOPE: dict[PriorityLevel, str] = {
    PriorityLevel.CRITICAL: "Critical: ship the smallest safe slice first, behind a flag, "
    "this week.",
    PriorityLevel.HIGH: "High priority: plan it for the current sprint as one reviewable "
    "pull request.",
    PriorityLevel.MEDIUM: "Medium priority: a good next-iteration item; split it into two "
    "or three pull requests.",
    PriorityLevel.LOW: "Low priority: backlog material, best done while already working in "
    "this code.",
}


@dataclass(frozen=True, slots=True)
class _Findings:
    """Everything the ideas are filled with."""

    subject: str
    docs: ProjectDocs
    scan: ScanResult
    project: str
    priority: PriorityLevel
    note: str | None  # the user's additional context

    @property
    def primary(self) -> str | None:
        return self.scan.matches[0].path if self.scan.matches else None

    @property
    def where(self) -> str:
        if not self.scan.matches:
            return f"the {self.subject}"
        best = self.scan.matches[0]
        return f"`{best.symbols[0]}` in {best.path}" if best.symbols else best.path

    def read_summary(self) -> str:
        read = ", ".join(self.docs.files) or "no CLAUDE.md or README"
        return f"read {read} and scanned {self.scan.files_scanned} files"


class OfflineProvider(Provider):
    """Suggestions from the repository's own files; no network, no key, no model."""

    name = "offline"

    def __init__(self, chunk_chars: int = 24, interval_s: float = 0.04) -> None:
        if chunk_chars < 1:
            raise ValueError("chunk_chars must be at least 1")
        if interval_s < 0:
            raise ValueError("interval_s must not be negative")
        self._chunk_chars = chunk_chars
        self._interval_s = interval_s

    async def run(self, request: PlanRequest, sink: RunSink) -> PlanResult:
        root = Path(request.repository)
        if not root.is_dir():
            raise ProviderError(f"The repository {root} is not a readable directory")
        narrator = _Narrator(sink, self._chunk_chars, self._interval_s)
        docs = await asyncio.to_thread(read_project_docs, root)
        for doc in docs.files:
            sink.activity("Read", doc)
            await narrator.say(f"Reading {doc}…\n")
        terms = search_terms(request.page_or_component)
        if terms:
            await narrator.say(f"Looking for files about “{request.page_or_component}”…\n")
            sink.activity("Glob", glob_pattern(terms))
            sink.activity("Grep", "|".join(terms))
        scan = await asyncio.to_thread(find_matching_files, root, terms, exclude=docs.files)
        for match in scan.matches:
            sink.activity("Read", match.path)
        findings = _Findings(
            subject=request.page_or_component,
            docs=docs,
            scan=scan,
            project=docs.name or root.resolve().name or "this project",
            priority=request.priority_level,
            note=request.additional_context or None,
        )
        suggestions = _compose(findings, request.feature_type)
        await narrator.say(_narrative(findings, request, suggestions))
        return PlanResult(
            suggestions=suggestions,
            context=_context(findings),
            model=OFFLINE_MODEL,
            token_usage=TokenUsage(input_tokens=0, output_tokens=0),
            retry_count=0,
            notice=OFFLINE_NOTICE,
        )


class _Narrator:
    """Streams text in chunks of at most ``chunk_chars`` code points, paced like a model."""

    def __init__(self, sink: RunSink, chunk_chars: int, interval_s: float) -> None:
        self._sink = sink
        self._chunk_chars = chunk_chars
        self._interval_s = interval_s
        self._sent = 0

    async def say(self, text: str) -> None:
        for start in range(0, len(text), self._chunk_chars):
            if self._sent:
                await self._pause()
            self._sink.text(text[start : start + self._chunk_chars])
            self._sent += 1

    async def _pause(self) -> None:
        if self._interval_s > 0:
            await asyncio.sleep(self._interval_s)
        elif self._sent % _YIELD_EVERY == 0:
            await asyncio.sleep(0)  # let cancellation and other jobs in


def _compose(findings: _Findings, feature_type: FeatureType) -> list[Suggestion]:
    count = _COUNT[findings.priority] if findings.scan.matches else 3
    values = {"subject": findings.subject, "where": findings.where}
    values["file"] = findings.primary or f"the code behind the {findings.subject}"
    suggestions = []
    for index, idea in enumerate(_IDEAS[feature_type][:count]):
        rationale = idea.rationale.format_map(values)
        if index == 0 and findings.note:
            rationale += f" It also addresses your note: “{_clip(findings.note, 160)}”."
        suggestions.append(
            Suggestion(
                title=idea.title.format_map(values),
                rationale=rationale,
                description=idea.description.format_map(values),
                implementation_considerations=_considerations(findings, idea, values, index),
            )
        )
    return suggestions


def _considerations(
    findings: _Findings, idea: _Idea, values: dict[str, str], index: int
) -> list[str]:
    items = [idea.consideration.format_map(values), _anchor(findings), _SCOPE[findings.priority]]
    if not findings.scan.matches:
        items.append(
            f"No file matching “{findings.subject}” was found ({findings.read_summary()}); "
            "confirm where it lives, or create it, before starting."
        )
    elif index == 0 and findings.docs.guidance:
        items.append(f"Follow CLAUDE.md: “{findings.docs.guidance}”")
    return items[:4]


def _anchor(findings: _Findings) -> str:
    stack = " and ".join(findings.docs.stack[:2])
    fits = f", following {findings.project}'s {stack} conventions" if stack else ""
    if not findings.scan.matches:
        return f"Build it as a new, self-contained part of {findings.project}{fits}."
    best, *related = findings.scan.matches
    names = ", ".join(f"`{name}`" for name in best.symbols[:3])
    text = f"Start in {best.path}" + (f" ({names})" if names else "")
    if related:
        text += "; also touch " + ", ".join(match.path for match in related[:2])
    return text + fits + "."


def _narrative(findings: _Findings, request: PlanRequest, suggestions: list[Suggestion]) -> str:
    docs, scan = findings.docs, findings.scan
    lines = []
    if docs.name or docs.stack:
        stack = f" ({', '.join(docs.stack)})" if docs.stack else ""
        lines.append(f"Project: {findings.project}{stack}.")
    if docs.summary:
        lines.append(f"The README says: “{docs.summary}”")
    lines.append(_found_line(findings))
    for match in scan.matches[:3]:
        if match.symbols:
            lines.append(f"In {match.path}: {', '.join(match.symbols[:4])}.")
    if findings.note:
        lines.append(f"Taking into account: “{_clip(findings.note, 200)}”.")
    lines.append("")
    lines.append(
        f"{len(suggestions)} {request.feature_type.value} suggestions at "
        f"{request.priority_level.value} priority:"
    )
    for number, suggestion in enumerate(suggestions, start=1):
        lines.append(f"{number}. {suggestion.title} — {_first_sentence(suggestion.rationale)}")
    lines.append("")
    lines.append(OFFLINE_NOTICE)
    return "\n".join(lines) + "\n"


def _found_line(findings: _Findings) -> str:
    scan, subject = findings.scan, findings.subject
    if not scan.terms:
        return f"“{subject}” has no words to search for, so no files were matched."
    if not scan.matches:
        return (
            f"No file matching “{subject}” was found "
            f"(searched for {', '.join(scan.terms)} in {_searched(scan)})."
        )
    noun = "file" if len(scan.matches) == 1 else "files"
    verb = "matching" if any(match.in_name for match in scan.matches) else "mentioning"
    paths = ", ".join(match.path for match in scan.matches)
    return f"Found {len(scan.matches)} {noun} {verb} “{subject}”: {paths}."


def _context(findings: _Findings) -> str:
    scan = findings.scan
    parts = [f"Offline engine: {findings.read_summary()}"]
    if scan.terms:
        parts.append(f"searched for: {', '.join(scan.terms)}")
    if scan.matches:
        described = (
            f"{m.path} ({'name, ' if m.in_name else ''}{m.content_hits} mentions)"
            for m in scan.matches
        )
        parts.append("matches: " + "; ".join(described))
    else:
        parts.append(f"no file matching “{findings.subject}”")
    if scan.stopped == "listing time":
        parts.append(f"listing the files stopped at its time limit after {scan.files_scanned:,}")
    elif scan.truncated:
        parts.append(
            f"the text of {scan.files_read:,} of the {scan.files_scanned:,} files was read, "
            "those whose paths fit best"
        )
    return ". ".join(parts) + "."


def _searched(scan: ScanResult) -> str:
    """What the scan looked at, honestly: every name, and the text of some or all files."""
    if not scan.truncated:
        return f"{scan.files_scanned} files"
    return (
        f"the paths of {scan.files_scanned:,} files and the text of the "
        f"{scan.files_read:,} that fit best"
    )


def _first_sentence(text: str) -> str:
    head, dot, _ = text.partition(". ")
    return head + "." if dot else text


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"

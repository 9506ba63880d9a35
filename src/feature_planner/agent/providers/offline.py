"""The ``offline`` provider: suggestions derived from facts in the code, no AI model.

It reads CLAUDE.md and the README, finds the files of the page or component the user named
(``repo_scan``: the route file, the components it imports, then files that mention it),
and reads them as syntax trees (``agent.facts``): a fetch whose status is never checked, a
list loaded without paging, a fixed grid, a TODO, an input without a label, a route with no
loading or error state, a component without the test the project's rules require. Each
suggestion is one of those facts (or one kind of them), with the lines that show it as its
evidence, submitted one at a time (``sink.suggestion``). The feature type and priority rank
the facts, and the user's additional context puts the facts it speaks of first. It never
pads: when the code shows fewer than three things worth suggesting, it says so. The same
input always gives the same output. The narrative is streamed like a model's, in small
chunks, so that the whole pipeline can be exercised without a key. A follow-up answers from
the facts of the files the earlier run read, steered by the user's message
(``offline_follow_up``), without searching the repository again.
"""

from __future__ import annotations

import asyncio
import posixpath
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ...errors import ProviderError
from ...models import (
    Effort,
    Evidence,
    FeatureType,
    Impact,
    PriorityLevel,
    ProgressPhase,
    Suggestion,
    TokenUsage,
)
from ..base import FollowUp, PlanRequest, PlanResult, Provider, RunSink
from ..facts import Fact, FactKind, FactReport, find_facts
from ..repo_map import PageMap, page_map
from .offline_follow_up import Intent, read_message, smaller_steps, steer
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
OFFLINE_NOTICE = (
    "Derived by the offline engine from facts in the repository's code; no AI model was used."
)
_YIELD_EVERY = 8  # chunks between yields to the event loop when there is no interval
_PAGE_FILES = 16  # the files asked of the scan (its route, what it renders, named files)
_MAX_OWN = 30  # the page's own files read for facts (the repository map's, following imports)
_MAX_OTHERS = 16  # other files about it read after them (another page named alike…)
_MAX_EVIDENCE = 5

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

# How much each feature type cares about each kind of fact (0-5).
_WEIGHT: dict[FeatureType, dict[FactKind, int]] = {
    FeatureType.ENHANCEMENT: {
        FactKind.TODO: 5, FactKind.MISSING_ROUTE_STATE: 5, FactKind.UNCHECKED_FETCH: 4,
        FactKind.UNTESTED_COMPONENT: 3, FactKind.UNLABELLED_INPUT: 2,
        FactKind.UNPAGED_LIST: 2, FactKind.FIXED_GRID: 1,
    },
    FeatureType.UI_IMPROVEMENT: {
        FactKind.FIXED_GRID: 5, FactKind.UNLABELLED_INPUT: 5, FactKind.MISSING_ROUTE_STATE: 4,
        FactKind.UNCHECKED_FETCH: 2, FactKind.TODO: 2, FactKind.UNPAGED_LIST: 1,
        FactKind.UNTESTED_COMPONENT: 1,
    },
    FeatureType.OPTIMIZATION: {
        FactKind.UNPAGED_LIST: 5, FactKind.MISSING_ROUTE_STATE: 3, FactKind.UNCHECKED_FETCH: 2,
        FactKind.TODO: 2, FactKind.FIXED_GRID: 1, FactKind.UNTESTED_COMPONENT: 1,
        FactKind.UNLABELLED_INPUT: 0,
    },
    FeatureType.NEW_CAPABILITY: {
        FactKind.TODO: 5, FactKind.UNPAGED_LIST: 3, FactKind.MISSING_ROUTE_STATE: 2,
        FactKind.UNCHECKED_FETCH: 2, FactKind.UNTESTED_COMPONENT: 1, FactKind.FIXED_GRID: 1,
        FactKind.UNLABELLED_INPUT: 1,
    },
    FeatureType.INTEGRATION: {
        FactKind.UNCHECKED_FETCH: 5, FactKind.UNPAGED_LIST: 4, FactKind.TODO: 3,
        FactKind.MISSING_ROUTE_STATE: 2, FactKind.UNTESTED_COMPONENT: 2,
        FactKind.FIXED_GRID: 0, FactKind.UNLABELLED_INPUT: 0,
    },
}  # fmt: skip
# Words a user's note may use about each kind of fact.
_KIND_WORDS: dict[FactKind, str] = {
    FactKind.UNCHECKED_FETCH: "fetch error errors status response api request failure fail "
    "network handling robust reliability reliable crash backend server",
    FactKind.UNPAGED_LIST: "list lists paging pagination paginate page limit cursor infinite "
    "scroll slow performance speed fast large thousands many items data",
    FactKind.FIXED_GRID: "grid layout responsive mobile phone tablet small screen breakpoint "
    "column columns width",
    FactKind.TODO: "todo fixme unfinished pending debt cleanup missing",
    FactKind.UNLABELLED_INPUT: "input label form field accessibility accessible a11y screen "
    "reader keyboard wcag aria",
    FactKind.MISSING_ROUTE_STATE: "loading error state spinner skeleton fallback empty route "
    "wait waiting blank",
    FactKind.UNTESTED_COMPONENT: "test tests testing coverage rule rules contributing "
    "convention quality regression",
}
_PRIORITY_IMPACT = {
    PriorityLevel.CRITICAL: 4,
    PriorityLevel.HIGH: 4,
    PriorityLevel.MEDIUM: 2,
    PriorityLevel.LOW: 0,
}
_EFFORT_RANK = {Effort.SMALL: 2, Effort.MEDIUM: 1, Effort.LARGE: 0}
_IMPACT_RANK = {Impact.HIGH: 2, Impact.MEDIUM: 1, Impact.LOW: 0}
_NOTE_WORD = re.compile(r"[a-z0-9]+")
_IGNORED_NOTE_WORDS = frozenset(
    {"the", "a", "an", "and", "or", "of", "to", "in", "on", "for", "with", "is", "are", "it",
     "we", "our", "this", "that", "be", "have", "has", "page", "want", "should", "need", "make",
     "more", "less", "better", "users", "user"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Group:
    """One suggestion's worth of facts: one kind (a TODO is a group of its own)."""

    kind: FactKind
    facts: tuple[Fact, ...]

    @property
    def lead(self) -> Fact:
        return self.facts[0]

    @property
    def own(self) -> bool:
        return self.lead.own

    def evidence(self) -> list[Evidence]:
        items: dict[tuple[str, int, int], Evidence] = {}
        for fact in self.facts:
            for item in fact.evidence:
                items.setdefault((item.path, item.start_line, item.end_line), item)
        return list(items.values())[:_MAX_EVIDENCE]

    def paths(self) -> list[str]:
        return list(dict.fromkeys(fact.path for fact in self.facts))


@dataclass(frozen=True, slots=True)
class _Findings:
    subject: str
    docs: ProjectDocs
    scan: ScanResult
    facts: FactReport
    project: str
    priority: PriorityLevel
    note: str | None  # the user's additional context
    own_files: tuple[str, ...] = ()  # the page's own files: its route and what it imports
    other_files: tuple[str, ...] = ()  # files about it that are not its own

    def read_summary(self) -> str:
        read = ", ".join(self.docs.files) or "no CLAUDE.md or README"
        return (
            f"read {read}, scanned {self.scan.files_scanned} files and parsed "
            f"{len(self.facts.files_read)}"
        )


class OfflineProvider(Provider):
    """Suggestions from facts in the repository's own code; no network, no key, no model."""

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
        if request.follow_up is not None:
            return await _follow_up(request, request.follow_up, root, sink, narrator)
        sink.progress(ProgressPhase.READING_DOCS)
        docs = await asyncio.to_thread(read_project_docs, root)
        for doc in docs.files:
            sink.activity("Read", doc)
            await narrator.say(f"Reading {doc}…\n")
        sink.progress(ProgressPhase.EXPLORING)
        terms = search_terms(request.page_or_component)
        if terms:
            await narrator.say(f"Looking for files about “{request.page_or_component}”…\n")
            sink.activity("Glob", glob_pattern(terms))
            sink.activity("Grep", "|".join(terms))
        # the scan (what the narrative reports) and the map (the page's files, following its
        # imports; kept per repository state) at once, each in a worker thread
        scanning = asyncio.to_thread(
            find_matching_files, root, terms, exclude=docs.files, limit=_PAGE_FILES
        )
        if terms:
            scan, mapped = await asyncio.gather(
                scanning, asyncio.to_thread(page_map, root, request.page_or_component)
            )
        else:
            scan, mapped = await scanning, None
        for match in scan.matches:
            sink.activity("Read", match.path)
        own, others = _page_files(mapped, scan)
        report = await asyncio.to_thread(find_facts, root, own, others=others)
        seen = {match.path for match in scan.matches}
        for rel in report.files_read:
            if rel not in seen:
                sink.activity("Read", rel)
        findings = _Findings(
            subject=request.page_or_component,
            docs=docs,
            scan=scan,
            facts=report,
            project=docs.name or root.resolve().name or "this project",
            priority=request.priority_level,
            note=request.additional_context or None,
            own_files=tuple(own),
            other_files=tuple(others),
        )
        groups = _rank(_groups(report.facts), request.feature_type, findings)
        groups = groups[: _COUNT[findings.priority]]
        sink.progress(ProgressPhase.DRAFTING, expected=len(groups))
        await narrator.say(_introduction(findings, request, len(groups)))
        sent: list[Suggestion] = []
        overlaps = [_overlap(group, findings.note) for group in groups]
        best = max(overlaps, default=0)
        for number, group in enumerate(groups, start=1):
            answers = best > 0 and overlaps[number - 1] == best  # what the note speaks of most
            suggestion = _suggestion(group, findings, first=number == 1, answers=answers)
            await narrator.say(f"{number}. {suggestion.title} — {group.lead.detail}.\n")
            check = await sink.suggestion(suggestion)
            if check.sendable:
                sent.append(check.suggestion)
        shortfall = _shortfall(len(groups))
        await narrator.say("\n" + (shortfall + "\n" if shortfall else "") + OFFLINE_NOTICE + "\n")
        return PlanResult(
            suggestions=sent,
            context=_context(findings, shortfall),
            model=OFFLINE_MODEL,
            token_usage=TokenUsage(input_tokens=0, output_tokens=0),
            retry_count=0,
            notice=f"{OFFLINE_NOTICE} {shortfall}" if shortfall else OFFLINE_NOTICE,
        )


async def _follow_up(
    request: PlanRequest, follow_up: FollowUp, root: Path, sink: RunSink, narrator: _Narrator
) -> PlanResult:
    """A follow-up: the facts of the files the earlier run read, steered by the user's message
    (``offline_follow_up``), or one of its suggestions split into steps; no new search."""
    reading = read_message(follow_up)
    sink.progress(ProgressPhase.EXPLORING)
    await narrator.say(
        f"Following up the earlier run ({_count(len(follow_up.parent_suggestions), 'suggestion')}"
        f", {_count(len(follow_up.parent_files_read), 'file')} read): "
        f"“{_clip(follow_up.message, 200)}”.\n"
    )
    docs = await asyncio.to_thread(read_project_docs, root)
    report = await asyncio.to_thread(find_facts, root, follow_up.parent_files_read, nearby=False)
    suggestions: list[Suggestion] = []
    if Intent.SMALLER_STEPS in reading.intents and reading.target is not None:
        parent = follow_up.parent_suggestions[reading.target]
        suggestions = smaller_steps(parent, reading.target)
        assumed = "" if reading.named else " (no suggestion was named, so the first)"
        done = f"Suggestion {reading.target + 1} (“{parent.title}”){assumed} in smaller steps"
    shortfall = ""
    if not suggestions:
        steered = steer(follow_up, reading, report.facts)
        order = {id(fact): number for number, fact in enumerate(steered.facts)}
        groups = sorted(_groups(steered.facts), key=lambda group: order[id(group.lead)])
        groups = groups[: _COUNT[request.priority_level]]
        findings = _Findings(
            subject=request.page_or_component,
            docs=docs,
            scan=ScanResult((), (), 0, False),
            facts=report,
            project=docs.name or root.resolve().name or "this project",
            priority=request.priority_level,
            note=follow_up.message,
            own_files=tuple(report.files_read),
        )
        suggestions = [
            _suggestion(group, findings, first=number == 0, answers=True)
            for number, group in enumerate(groups)
        ]
        done, shortfall = steered.done, steered.shortfall(len(groups))
    sink.progress(ProgressPhase.DRAFTING, expected=len(suggestions))
    await narrator.say(f"{done}:\n" if suggestions else f"{done}.\n")
    sent: list[Suggestion] = []
    for number, suggestion in enumerate(suggestions, start=1):
        await narrator.say(f"{number}. {suggestion.title}\n")
        check = await sink.suggestion(suggestion)
        if check.sendable:
            sent.append(check.suggestion)
    await narrator.say("\n" + (shortfall + "\n" if shortfall else "") + OFFLINE_NOTICE + "\n")
    return PlanResult(
        suggestions=sent,
        context=f"Offline engine, following up: {done}; the earlier run read "
        f"{_count(len(follow_up.parent_files_read), 'file')}. {shortfall}".strip(),
        model=OFFLINE_MODEL,
        token_usage=TokenUsage(input_tokens=0, output_tokens=0),
        retry_count=0,
        notice=f"{OFFLINE_NOTICE} {shortfall}" if shortfall else OFFLINE_NOTICE,
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


# -- choosing the facts -----------------------------------------------------------------------


def _page_files(mapped: PageMap | None, scan: ScanResult) -> tuple[list[str], list[str]]:
    """The page's own files (its route, the companions beside it, and what they import, as
    the repository map follows them) and the other files about it (the map's other files:
    another page named alike and its imports; then the scan's other matches), each bounded.
    Without a map, the scan's matches are the page's files."""
    scanned = [match.path for match in scan.matches if match.role != "test"]
    code = (
        [mapped_file for mapped_file in mapped.files if mapped_file.role != "test"]
        if mapped
        else []
    )
    if not code:
        return scanned[:_MAX_OWN], []
    first = next((f for f in code if f.role == "route"), code[0])
    folder = posixpath.dirname(first.path)
    own = [first.path]
    own += [f.path for f in code if f.role == "route" and posixpath.dirname(f.path) == folder]
    imports = {f.path: f.imports for f in code}
    own = list(dict.fromkeys(own))
    index = 0
    while index < len(own) and len(own) < _MAX_OWN:  # breadth first, in the map's order
        for imported in imports.get(own[index], ()):
            if imported in imports and imported not in own and len(own) < _MAX_OWN:
                own.append(imported)
        index += 1
    taken = set(own)
    others = [rel for rel in [*(f.path for f in code), *scanned] if rel not in taken]
    return own, list(dict.fromkeys(others))[:_MAX_OTHERS]


def _groups(facts: Sequence[Fact]) -> list[_Group]:
    """One group per kind, the page's own facts apart from those of other files about it (a
    suggestion about the page never leans on a look-alike page's code); each TODO, and each
    route without its loading or error state, on its own (two routes miss different states)."""
    by_kind: dict[tuple[FactKind, bool], list[Fact]] = {}
    groups: list[_Group] = []
    for fact in sorted(facts, key=lambda fact: not fact.own):  # stable: own first
        if fact.kind in (FactKind.TODO, FactKind.MISSING_ROUTE_STATE):
            groups.append(_Group(fact.kind, (fact,)))
        else:
            by_kind.setdefault((fact.kind, fact.own), []).append(fact)
    groups.extend(_Group(kind, tuple(found)) for (kind, _), found in by_kind.items())
    return groups


def _words(text: str) -> set[str]:
    return {
        word[:-1] if len(word) > 3 and word.endswith("s") else word
        for word in _NOTE_WORD.findall(text.lower())
        if word not in _IGNORED_NOTE_WORDS and len(word) > 1
    }


def _overlap(group: _Group, note: str | None) -> int:
    """How many of the note's words speak of this group's facts."""
    if not note:
        return 0
    # what the fact is about, not where it is: a path's words would match every fact alike
    about = f"{group.kind.value} {_KIND_WORDS[group.kind]} {group.lead.note}"
    return len(_words(note) & _words(about))


def _rank(groups: list[_Group], feature_type: FeatureType, findings: _Findings) -> list[_Group]:
    """The page's own files first; then the user's note, the feature type and priority."""
    weights = _WEIGHT[feature_type]
    priority = findings.priority

    def score(indexed: tuple[int, _Group]) -> tuple[int, int]:
        index, group = indexed
        effort, impact = _size(group)
        value = 100 if group.own else 0
        value -= 20 if group.lead.minor else 0
        value += 40 * min(_overlap(group, findings.note), 2)
        value += 6 * weights[group.kind]
        # critical: high impact and small effort first; high: impact; low: the type decides
        value += _PRIORITY_IMPACT[priority] * _IMPACT_RANK[impact]
        if priority is PriorityLevel.CRITICAL:
            value += 4 * _EFFORT_RANK[effort]
        return (-value, index)

    return [group for _, group in sorted(enumerate(groups), key=score)]


def _shortfall(count: int) -> str:
    if count >= 3:
        return ""
    if count == 0:
        return (
            "Found nothing in the code worth suggesting for this page, so no suggestion is "
            "made rather than a generic one."
        )
    things = "thing" if count == 1 else "things"
    return (
        f"Found only {count} {things} in the code worth suggesting for this page; "
        "no more are made up."
    )


# -- writing a suggestion ---------------------------------------------------------------------

_SIZE: dict[FactKind, tuple[Effort, Impact]] = {
    FactKind.UNCHECKED_FETCH: (Effort.SMALL, Impact.HIGH),
    FactKind.UNPAGED_LIST: (Effort.MEDIUM, Impact.HIGH),
    FactKind.FIXED_GRID: (Effort.SMALL, Impact.MEDIUM),
    FactKind.TODO: (Effort.MEDIUM, Impact.MEDIUM),
    FactKind.UNLABELLED_INPUT: (Effort.SMALL, Impact.MEDIUM),
    FactKind.MISSING_ROUTE_STATE: (Effort.SMALL, Impact.MEDIUM),
    FactKind.UNTESTED_COMPONENT: (Effort.MEDIUM, Impact.MEDIUM),
}


def _size(group: _Group) -> tuple[Effort, Impact]:
    effort, impact = _SIZE[group.kind]
    return effort, Impact.LOW if group.lead.minor else impact


@dataclass(frozen=True, slots=True)
class _Text:
    title: str
    rationale: str
    description: str
    consideration: str


def _where(fact: Fact) -> str:
    return f"`{fact.symbol}` in {fact.path}" if fact.symbol else fact.path


def _first_line(group: _Group) -> str:
    item = group.lead.evidence[0]
    return f"{item.path}:{item.start_line}"


def _lines(group: _Group) -> str:
    return ", ".join(f"{item.path}:{item.start_line}" for item in group.evidence())


def _fetch_text(group: _Group, subject: str) -> _Text:
    lead = group.lead
    more = f" (and {len(group.facts) - 1} more)" if len(group.facts) > 1 else ""
    return _Text(
        f"Handle failed requests in {_where(lead)}",
        f"{lead.detail}{more}: a failed request in the {subject} turns into a broken or "
        "empty view with no message.",
        f"Check `response.ok` after the request at {_lines(group)} and show an error state "
        f"with a retry in the {subject} instead of reading the error body as data.",
        f"Throw or return an error from {_where(lead)} when the status is not 2xx, and test "
        "it with a 500 response.",
    )


def _paging_text(group: _Group, subject: str) -> _Text:
    lead = group.lead
    return _Text(
        f"Page the list in {lead.path}",
        f"{lead.detail}; the {subject} gets slower with every item the data source holds.",
        f"Load the {subject}'s list a page at a time (a cursor or limit/offset in the request "
        f"at {_first_line(group)}) and render only the loaded page, with a next-page control "
        "or infinite scroll.",
        "Add the paging parameter on the server first, and keep the current order stable "
        "across pages.",
    )


def _grid_text(group: _Group, subject: str) -> _Text:
    lead = group.lead
    whose = f"the {subject}'s grid" if group.own else f"the grid in {lead.path}"
    columns = re.fullmatch(r"grid-cols-(\d+)", lead.note)
    style, _, value = lead.note.partition(": ")
    if columns is not None:  # a Tailwind class: its responsive variants
        if int(columns.group(1)) <= 2:
            example = f"`grid-cols-1 sm:{lead.note}`"
        else:
            example = f"`grid-cols-1 sm:grid-cols-2 lg:{lead.note}`"
        how = (
            f"Start {whose} at one column and add columns at breakpoints (for example "
            f"{example} instead of `{lead.note}`)."
        )
    elif style == "gridTemplateColumns":  # an inline style cannot hold a media query
        how = (
            f"Move {whose} columns from the inline style into a class: one column "
            f"(`grid-template-columns: 1fr`) by default and `{value}` inside "
            "`@media (min-width: 640px) { … }`."
        )
    else:  # grid-template-columns in a stylesheet or a style attribute
        how = (
            f"Start {whose} at one column (`grid-template-columns: 1fr`) and set "
            f"`grid-template-columns: {value}` inside `@media (min-width: 640px) {{ … }}`."
        )
    return _Text(
        f"Make the grid in {lead.path} responsive",
        f"{lead.detail}.",
        how,
        f"Check {lead.path} at 360 px, 768 px and 1280 px wide.",
    )


def _todo_text(group: _Group, subject: str) -> _Text:
    lead = group.lead
    item = lead.evidence[0]
    return _Text(
        f"Finish the TODO in {lead.path}: {_clip(lead.note, 60)}",
        f"The code of the {subject} says it is unfinished: {lead.detail}.",
        f"Do what the comment at {item.path}:{item.start_line} asks (“{_clip(lead.note, 120)}”) "
        "and remove the comment once it is done.",
        "Ask who wrote the comment whether it still applies before starting (git blame "
        f"{item.path} -L {item.start_line},{item.start_line}).",
    )


def _label_text(group: _Group, subject: str) -> _Text:
    lead = group.lead
    component = lead.path.endswith((".vue", ".svelte"))
    label = "<label for>" if component else "<label htmlFor>"
    if "<FormItem>" in lead.detail:
        how = (
            f"Give each control cited ({_lines(group)}) a <FormLabel> in its <FormItem> "
            "(its <FormControl> then carries the id the label names), or an aria-label "
            "where no visible text fits."
        )
    else:
        how = (
            f"Give each control cited ({_lines(group)}) a visible {label} matching its id, "
            "or an aria-label where no visible text fits."
        )
    others = group.paths()[1:]
    also = f" and {_count(len(others), 'other file')}" if others else ""
    more = f" ({_count(len(others), 'more file')} alike: {', '.join(others)})" if others else ""
    return _Text(
        f"Label the form controls in {lead.path}{also}",
        f"{lead.detail}{more}; a screen reader names such a control by its placeholder "
        "at best (where it has one), and a placeholder, which leaves the field as soon as "
        "something is typed, is not a label.",
        how,
        f"Add an accessibility check (e.g. jest-axe or Playwright's axe) for the {subject}.",
    )


def _route_text(group: _Group, subject: str) -> _Text:
    lead = group.lead
    folder = lead.path.rsplit("/", 1)[0]
    missing = lead.note.split(" and ")
    files = " and ".join(f"{folder}/{state}.tsx" for state in missing)
    what = {  # only what is missing: never an error file for a route that has one
        "loading": (
            f"a skeleton of the {subject if group.own else 'page'}'s layout while it loads",
            "Suspense",
        ),
        "error": ("a message with a retry (`reset()`) when it fails", "an error boundary"),
    }
    shows = " and ".join(what[state][0] for state in missing if state in what)
    wraps = " and ".join(what[state][1] for state in missing if state in what)
    plural = "these files" if len(missing) > 1 else "this file"
    route = f"the {subject} route" if group.own else f"the route {folder}"
    return _Text(
        f"Add {lead.note} {'states' if len(missing) > 1 else 'state'} to {route}",
        f"{lead.detail[:1].upper()}{lead.detail[1:]}.",
        f"Add {files}: {shows}.",
        f"Next.js wraps the page in {wraps} for {plural}; no change to {lead.path} is needed.",
    )


def _test_text(group: _Group, subject: str) -> _Text:
    lead = group.lead
    names = ", ".join(f"`{fact.symbol}`" for fact in group.facts if fact.symbol)
    has = "has no test beside it" if len(group.facts) == 1 else "have no test beside them"
    rule = lead.evidence[-1]
    said = _clip(lead.note.lstrip("-*+ "), 120)
    return _Text(
        f"Add the tests the project's rules require for {names}",
        f"{rule.path} says “{said}”, and {names} of the {subject} {has}.",
        f"Write a behavioural test beside each component ({', '.join(group.paths())}) "
        "covering what a user sees in the main case and one edge case.",
        f"Follow {rule.path}:{rule.start_line} so that the next change here is reviewed "
        "against tests.",
    )


_TEXTS: dict[FactKind, Callable[[_Group, str], _Text]] = {
    FactKind.UNCHECKED_FETCH: _fetch_text,
    FactKind.UNPAGED_LIST: _paging_text,
    FactKind.FIXED_GRID: _grid_text,
    FactKind.TODO: _todo_text,
    FactKind.UNLABELLED_INPUT: _label_text,
    FactKind.MISSING_ROUTE_STATE: _route_text,
    FactKind.UNTESTED_COMPONENT: _test_text,
}


def _suggestion(group: _Group, findings: _Findings, *, first: bool, answers: bool) -> Suggestion:
    text = _TEXTS[group.kind](group, findings.subject)
    effort, impact = _size(group)
    rationale = text.rationale
    if findings.note and answers:
        rationale += f" It answers your note: “{_clip(findings.note, 160)}”."
    considerations = [text.consideration, _anchor(group, findings), _SCOPE[findings.priority]]
    if not group.own and group.lead.path in findings.other_files:
        considerations.append(
            f"{group.lead.path} is not among the files the {findings.subject} imports; it was "
            f"found as another file about “{findings.subject}”."
        )
    elif not group.own:
        considerations.append(
            f"{group.lead.path} is near the {findings.subject}'s files rather than one of them."
        )
    elif first and findings.docs.guidance:
        considerations.append(f"Follow CLAUDE.md: “{findings.docs.guidance}”")
    return Suggestion(
        title=text.title,
        rationale=rationale,
        description=text.description,
        implementation_considerations=considerations,
        evidence=group.evidence(),
        effort=effort,
        impact=impact,
    )


def _anchor(group: _Group, findings: _Findings) -> str:
    lead = group.lead
    text = f"Start in {lead.path}" + (f" (`{lead.symbol}`)" if lead.symbol else "")
    others = [path for path in dict.fromkeys(i.path for i in group.evidence()) if path != lead.path]
    if others:
        text += "; also see " + ", ".join(others[:2])
    return text + _conventions(findings) + "."


def _conventions(findings: _Findings) -> str:
    stack = " and ".join(findings.docs.stack[:2])
    return f", following {findings.project}'s {stack} conventions" if stack else ""


# -- what it says -----------------------------------------------------------------------------


def _introduction(findings: _Findings, request: PlanRequest, count: int) -> str:
    docs, scan = findings.docs, findings.scan
    lines = []
    if docs.name or docs.stack:
        stack = f" ({', '.join(docs.stack)})" if docs.stack else ""
        lines.append(f"Project: {findings.project}{stack}.")
    if docs.summary:
        lines.append(f"The README says: “{docs.summary}”")
    lines.append(_found_line(findings))
    if findings.own_files and findings.own_files != tuple(m.path for m in scan.matches)[:_MAX_OWN]:
        shown = ", ".join(findings.own_files[:8])
        more = len(findings.own_files) - 8
        lines.append(
            f"The page's own files, following its imports: {shown}"
            + (f" and {more} more." if more > 0 else ".")
        )
    facts = findings.facts.facts
    if scan.matches:
        own = sum(1 for fact in facts if fact.own)
        lines.append(
            f"Read {_count(len(findings.facts.files_read), 'file')} as code: "
            f"{_count(own, 'fact')} in the page's own files, {len(facts) - own} in files "
            "near them."
        )
    if scan.terms and not scan.matches:
        lines.append(
            f"If the {findings.subject} is still to be written, build it as a new, "
            f"self-contained part of {findings.project}{_conventions(findings)}; "
            "there is no code of it to draw suggestions from yet."
        )
    if findings.note:
        lines.append(f"Taking into account: “{_clip(findings.note, 200)}”.")
    lines.append("")
    if count:
        lines.append(
            f"{_count(count, request.feature_type.value + ' suggestion')} at "
            f"{request.priority_level.value} priority, each from what the code shows:"
        )
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


def _context(findings: _Findings, shortfall: str) -> str:
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
    kinds: dict[str, int] = {}
    for fact in findings.facts.facts:
        kinds[fact.kind.value] = kinds.get(fact.kind.value, 0) + 1
    if kinds:
        parts.append("facts: " + ", ".join(f"{kind} ({n})" for kind, n in kinds.items()))
    if scan.stopped == "listing time":
        parts.append(f"listing the files stopped at its time limit after {scan.files_scanned:,}")
    elif scan.truncated:
        parts.append(
            f"the text of {scan.files_read:,} of the {scan.files_scanned:,} files was read, "
            "those whose paths fit best"
        )
    text = ". ".join(parts) + "."
    return f"{text} {shortfall}" if shortfall else text


def _searched(scan: ScanResult) -> str:
    """What the scan looked at, honestly: every name, and the text of some or all files."""
    if not scan.truncated:
        return f"{scan.files_scanned} files"
    return (
        f"the paths of {scan.files_scanned:,} files and the text of the "
        f"{scan.files_read:,} that fit best"
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"

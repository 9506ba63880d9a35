"""Running an engine on the fixtures, through the real runner, and scoring what it cites.

Each run is a real ``JobRun`` on the in-memory job store, so every suggestion goes through
the server's own verification (``agent.evidence``) before it counts; the run only records,
beside what the runner sends, each suggestion as the engine submitted it (every item it
cited, verified or not).

The figures, per fixture and overall (sums over fixtures, not averages of ratios):

- **evidence precision**: items verified / items cited, as the run's ``complete.evidenceStats``
  counts them (every item of every attempt cited; the items sent verified);
- **fact recall**: planted facts grounded by a sent suggestion, i.e. one of its (verified)
  items is on the fact's file and its lines overlap the fact's, over the planted facts; the
  union over the feature types run;
- **page share**: sent suggestions *on the page*: every item in the page's own files (the
  route file, the files it imports, their tests) or the project's rule documents
  (CLAUDE.md, CONTRIBUTING), and at least one in the page's files; over the sent suggestions;
- **other pages**: suggestions that cite (verified or not) a file of another page, and apart
  from them **look-alikes**, those citing another page whose files are named with the
  page's word (the account page's ``RecentOrders`` for the Orders page);
- **elsewhere**: sent suggestions with an item in a file that is neither the page's, a rule
  document nor another page's (helpers, the router, generated files).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from feature_planner.agent.base import PlanRequest, Provider
from feature_planner.agent.evidence import SuggestionCheck
from feature_planner.jobs.memory import MemoryJobStore
from feature_planner.jobs.runner import JobRun
from feature_planner.jobs.store import JobRecord
from feature_planner.models import (
    CompleteEvent,
    Evidence,
    FeatureType,
    JobState,
    PriorityLevel,
    Suggestion,
    SuggestionRequest,
)

from .fixtures import Fixture, PlantedFact

__all__ = [
    "FixtureScore",
    "Run",
    "Submitted",
    "combine",
    "run_all",
    "run_engine",
    "run_types",
    "score",
]


@dataclass(frozen=True, slots=True)
class Submitted:
    """One suggestion as the engine submitted it, and what the runner made of it."""

    title: str
    cited: tuple[Evidence, ...]
    verified: tuple[Evidence, ...]
    sent: bool


@dataclass(slots=True)
class Run:
    """One run of the engine on one fixture for one feature type."""

    fixture: str
    feature_type: FeatureType
    seconds: float
    submitted: list[Submitted] = field(default_factory=list)
    cited: int = 0  # complete.evidenceStats
    verified: int = 0
    dropped: int = 0
    error: str | None = None  # the final event's message when the run failed

    @property
    def sent(self) -> list[Submitted]:
        return [s for s in self.submitted if s.sent]


class _RecordingRun(JobRun):
    """The real runner, recording each suggestion as submitted next to the runner's check."""

    def __init__(self, store: MemoryJobStore, job_id: str, time_limit_s: float) -> None:
        super().__init__(store, job_id, throttle_s=0, time_limit_s=time_limit_s)
        self.submitted: list[tuple[Suggestion, SuggestionCheck]] = []

    async def suggestion(
        self,
        suggestion: Suggestion,
        *,
        previous: SuggestionCheck | None = None,
        last_attempt: bool = True,
    ) -> SuggestionCheck:
        check = await super().suggestion(suggestion, previous=previous, last_attempt=last_attempt)
        self.submitted.append((suggestion, check))
        return check


async def run_engine(
    provider: Provider,
    fixture: Fixture,
    feature_type: FeatureType,
    priority: PriorityLevel = PriorityLevel.LOW,
    *,
    time_limit_s: float = 300.0,
) -> Run:
    """Run ``provider`` on ``fixture`` as the service would, and record what it cited."""
    request = SuggestionRequest(
        page_or_component=fixture.target, feature_type=feature_type, priority_level=priority
    )
    store = MemoryJobStore()
    job_id = f"{fixture.name}-{feature_type.value}"
    await store.create(JobRecord(job_id, "bench", request, JobState.PENDING, 0, 0))
    await store.claim(job_id, "bench", on_cancel=lambda message: None)
    job = _RecordingRun(store, job_id, time_limit_s)
    started = time.perf_counter()
    try:
        await job.start(provider, PlanRequest.from_request(request, fixture.root))
    finally:
        await store.close()
    run = Run(fixture.name, feature_type, time.perf_counter() - started)
    final = job.final
    # What was sent is what `complete` carries, in order: each is a check's reduced suggestion.
    sent = list(final.suggestions) if isinstance(final, CompleteEvent) else []
    for suggestion, check in job.submitted:
        went = bool(sent) and check.suggestion == sent[0]
        if went:
            sent.pop(0)
        run.submitted.append(
            Submitted(suggestion.title, tuple(suggestion.evidence), check.verified, went)
        )
    if isinstance(final, CompleteEvent):
        stats = final.evidence_stats
        if stats is not None:
            run.cited, run.verified, run.dropped = stats.cited, stats.verified, stats.dropped
    elif final is not None:
        run.error = f"{final.code}: {final.message}"
    return run


# -- scoring ------------------------------------------------------------------------------


@dataclass(slots=True)
class FixtureScore:
    """The figures of one fixture (or of all: ``combine``)."""

    name: str
    files: int
    runs: int = 0
    suggestions: int = 0  # sent
    cited: int = 0
    verified: int = 0
    dropped: int = 0
    planted: int = 0
    found: list[PlantedFact] = field(default_factory=list)
    missed: list[PlantedFact] = field(default_factory=list)
    on_page: int = 0
    distractor: int = 0
    lookalike: int = 0
    elsewhere: int = 0
    finds_page: bool = False  # a sent suggestion cites the route file
    errors: list[str] = field(default_factory=list)
    generate_s: float = 0.0
    run_s: float = 0.0
    distractor_items: list[str] = field(default_factory=list)
    lookalike_items: list[str] = field(default_factory=list)
    elsewhere_items: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float | None:
        return self.verified / self.cited if self.cited else None

    @property
    def recall(self) -> float | None:
        return len(self.found) / self.planted if self.planted else None

    @property
    def page_share(self) -> float | None:
        return self.on_page / self.suggestions if self.suggestions else None

    def to_json(self) -> dict[str, Any]:
        return {
            "fixture": self.name,
            "files": self.files,
            "runs": self.runs,
            "suggestions": self.suggestions,
            "evidence": {"cited": self.cited, "verified": self.verified, "dropped": self.dropped},
            "precision": self.precision,
            "recall": self.recall,
            "planted": self.planted,
            "found": [_fact_json(fact) for fact in self.found],
            "missed": [_fact_json(fact) for fact in self.missed],
            "pageShare": self.page_share,
            "onPage": self.on_page,
            "distractor": self.distractor,
            "distractorItems": self.distractor_items,
            "lookalike": self.lookalike,
            "lookalikeItems": self.lookalike_items,
            "elsewhere": self.elsewhere,
            "elsewhereItems": self.elsewhere_items,
            "findsPage": self.finds_page,
            "errors": self.errors,
            "generateSeconds": round(self.generate_s, 3),
            "runSeconds": round(self.run_s, 3),
        }


def _fact_json(fact: PlantedFact) -> dict[str, Any]:
    return {"kind": fact.kind.value, "where": fact.where(), "what": fact.what}


def _item(item: Evidence) -> str:
    return f"{item.path}:{item.start_line}-{item.end_line}"


def score(fixture: Fixture, runs: Sequence[Run]) -> FixtureScore:
    """The figures of ``runs`` on ``fixture`` (see the module's docstring)."""
    result = FixtureScore(fixture.name, fixture.files, runs=len(runs))
    result.generate_s = fixture.generate_s
    result.planted = len(fixture.facts)
    grounded: set[PlantedFact] = set()
    for run in runs:
        result.run_s += run.seconds
        result.cited += run.cited
        result.verified += run.verified
        result.dropped += run.dropped
        if run.error:
            result.errors.append(f"{run.feature_type.value}: {run.error}")
        for submitted in run.submitted:
            off = [item for item in submitted.cited if fixture.is_distractor(item.path)]
            if off:
                result.distractor += 1
                result.distractor_items.extend(_item(item) for item in off)
            alike = [item for item in submitted.cited if fixture.is_lookalike(item.path)]
            if alike:
                result.lookalike += 1
                result.lookalike_items.extend(_item(item) for item in alike)
            if not submitted.sent:
                continue
            result.suggestions += 1
            items = submitted.verified
            if any(item.path == fixture.route for item in items):
                result.finds_page = True
            for fact in fixture.facts:
                if any(fact.overlaps(i.path, i.start_line, i.end_line) for i in items):
                    grounded.add(fact)
            page = [i for i in items if fixture.is_page(i.path)]
            other = [i for i in items if not (fixture.is_page(i.path) or fixture.is_doc(i.path))]
            if page and not other:
                result.on_page += 1
            stray = [
                i
                for i in other
                if not (fixture.is_distractor(i.path) or fixture.is_lookalike(i.path))
            ]
            if stray:
                result.elsewhere += 1
                result.elsewhere_items.extend(_item(item) for item in stray)
    result.found = [fact for fact in fixture.facts if fact in grounded]
    result.missed = [fact for fact in fixture.facts if fact not in grounded]
    return result


def combine(scores: Sequence[FixtureScore]) -> FixtureScore:
    """All fixtures as one: sums of the counts."""
    total = FixtureScore("overall", sum(s.files for s in scores))
    for part in scores:
        total.runs += part.runs
        total.suggestions += part.suggestions
        total.cited += part.cited
        total.verified += part.verified
        total.dropped += part.dropped
        total.planted += part.planted
        total.found += part.found
        total.missed += part.missed
        total.on_page += part.on_page
        total.distractor += part.distractor
        total.lookalike += part.lookalike
        total.elsewhere += part.elsewhere
        total.errors += [f"{part.name} {error}" for error in part.errors]
        total.generate_s += part.generate_s
        total.run_s += part.run_s
    total.finds_page = all(s.finds_page for s in scores)
    return total


async def run_types(
    provider: Provider,
    fixture: Fixture,
    feature_types: Sequence[FeatureType],
    priority: PriorityLevel,
    *,
    time_limit_s: float = 300.0,
) -> list[Run]:
    """One run per feature type, one after the other."""
    return [
        await run_engine(provider, fixture, kind, priority, time_limit_s=time_limit_s)
        for kind in feature_types
    ]


def run_all(
    provider: Provider,
    fixture: Fixture,
    feature_types: Sequence[FeatureType],
    priority: PriorityLevel,
) -> list[Run]:
    """``run_types`` in an event loop of its own (for a provider that keeps no connections:
    an AI provider's clients belong to the loop they were first used in)."""
    return asyncio.run(run_types(provider, fixture, feature_types, priority))

"""The quality benchmark (``bench/quality``) on the offline engine, with floors.

The fixtures are generated here, the real offline engine runs on each through the real
runner (``JobRun``, in-memory store, the server's evidence verification), once per feature
type, and the figures must stay at or above what the engine does today (it is
deterministic: the same fixtures always give the same figures). Measured when the floors
were last set (bench/RESULTS.md, "Quality (offline engine)"), with the page's own files
taken from the repository map, a Django view's template read, a list destructured from a
data hook followed, and the page's own facts never grouped with a look-alike page's:
precision 1.000 (149 items), recall 32/32, page share 110 of 110 suggestions, other or
look-alike pages cited 0.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from bench.quality import FIXTURES, Fixture, FixtureScore, build, combine, run_all, score
from bench.quality.__main__ import main
from bench.quality.fixtures import Plant, Spec

from feature_planner.agent.base import PlanRequest, PlanResult, Provider, RunSink
from feature_planner.agent.facts import FactKind
from feature_planner.agent.providers.offline import OfflineProvider
from feature_planner.models import Evidence, FeatureType, PriorityLevel, Suggestion

SCALE = 10_000  # files around the buried page: a few seconds; the 100,000 run is in RESULTS.md
# Recall: 32 of 32 planted facts. The margin is one fact: a re-ranking that crowds one fact
# out of the five slots of a low-priority run does not fail CI, two do.
RECALL_FLOOR = 0.95
FIXTURE_RECALL_FLOOR = 0.75  # each fixture: today 1.0; one miss allowed in a fixture of 4+
# Page share: 110 of 110 suggestions, in every fixture. Margin: five suggestions overall,
# two of the buried page's 25.
PAGE_SHARE_FLOOR = 0.95
BURIED_PAGE_SHARE_FLOOR = 0.9
# Suggestions citing another page named with (or mentioning) the page's word (the account
# page's RecentOrders for Orders, shipments-archive for Shipments): none since the page's
# own facts are grouped apart from theirs (there were 32 at the start of issue 18).
LOOKALIKE_CEILING = 0


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FixtureScore]:
    base = tmp_path_factory.mktemp("quality")
    found: dict[str, FixtureScore] = {}
    for name, spec in FIXTURES.items():
        fixture = build(spec, base, scale=SCALE if spec.scaled else 0)
        runs = run_all(OfflineProvider(interval_s=0), fixture, list(FeatureType), PriorityLevel.LOW)
        found[name] = score(fixture, runs)
    return found


def _misses(scores: Sequence[FixtureScore]) -> list[str]:
    return [f"{s.name} {fact.kind.value} {fact.where()}" for s in scores for fact in s.missed]


@pytest.mark.timeout(120)
def test_every_item_cited_is_verified(scores: dict[str, FixtureScore]) -> None:
    for result in scores.values():
        assert not result.errors, result.errors
        assert result.precision == 1.0, (result.name, result.cited, result.verified)
        assert result.dropped == 0, result.name
        assert result.runs == len(FeatureType) and result.suggestions > 0, result.name


def test_fact_recall_stays_above_its_floor(scores: dict[str, FixtureScore]) -> None:
    overall = combine(list(scores.values()))

    assert overall.recall is not None and overall.recall >= RECALL_FLOOR, _misses([overall])
    for result in scores.values():
        assert result.recall is not None and result.recall >= FIXTURE_RECALL_FLOOR, _misses(
            [result]
        )


def test_suggestions_rest_on_the_pages_own_files(scores: dict[str, FixtureScore]) -> None:
    overall = combine(list(scores.values()))

    for result in scores.values():
        assert result.distractor == 0, (result.name, result.distractor_items)
    assert overall.page_share is not None and overall.page_share >= PAGE_SHARE_FLOOR
    assert overall.lookalike <= LOOKALIKE_CEILING


def test_the_buried_page_is_found_among_generated_files(scores: dict[str, FixtureScore]) -> None:
    buried = scores["buried"]

    assert buried.files > SCALE
    assert buried.finds_page  # a suggestion cites the route file itself
    assert buried.page_share is not None and buried.page_share >= BURIED_PAGE_SHARE_FLOOR
    assert buried.distractor == 0  # no generated route, no git-ignored copy of the page
    assert all(s.finds_page for s in scores.values())


# -- the harness itself: its measures can fail --------------------------------------------


class _Citing(Provider):
    """Submits one suggestion with the given items, as a model would."""

    name = "citing"

    def __init__(self, items: Sequence[Evidence]) -> None:
        self._items = list(items)

    async def run(self, request: PlanRequest, sink: RunSink) -> PlanResult:
        suggestion = Suggestion(
            title="Handle the failed request",
            rationale="The response is never checked.",
            description="Check response.ok and show an error.",
            implementation_considerations=["Test it with a 500."],
            evidence=self._items,
        )
        check = await sink.suggestion(suggestion)
        return PlanResult(suggestions=[check.suggestion], context="", model="test")


_TINY = Spec(
    name="tiny",
    target="Cart page",
    route="app/cart/page.tsx",
    page=("app/cart/",),
    distractors=("app/about/",),
    plants=(
        Plant(FactKind.TODO, "app/cart/page.tsx", "TODO: round once", "a TODO"),
        Plant(FactKind.UNLABELLED_INPUT, "app/cart/view.html", "<input", "unseen: not code"),
    ),
    files=lambda _: iter(
        [
            ("app/cart/page.tsx", "// TODO: round once\nexport default function Cart() {}\n"),
            ("app/cart/view.html", '<form><input name="q"></form>\n'),
            ("app/about/page.tsx", "// TODO: about\nexport default function About() {}\n"),
        ]
    ),
)


@pytest.fixture
def tiny(tmp_path: Path) -> Fixture:
    return build(_TINY, tmp_path)


def test_a_fact_the_engine_cannot_see_counts_as_missed(tiny: Fixture) -> None:
    result = score(
        tiny,
        run_all(OfflineProvider(interval_s=0), tiny, [FeatureType.ENHANCEMENT], PriorityLevel.LOW),
    )

    assert [fact.kind for fact in result.found] == [FactKind.TODO]
    assert [fact.path for fact in result.missed] == ["app/cart/view.html"]
    assert result.recall == 0.5


def test_wrong_and_stray_citations_are_counted(tiny: Fixture) -> None:
    right = Evidence(path="app/cart/page.tsx", start_line=1, end_line=1, quote="TODO: round once")
    wrong = Evidence(path="app/cart/page.tsx", start_line=2, end_line=2, quote="not there")
    other = Evidence(path="app/about/page.tsx", start_line=1, end_line=1, quote="TODO: about")
    provider = _Citing([right, wrong, other])
    result = score(tiny, run_all(provider, tiny, [FeatureType.ENHANCEMENT], PriorityLevel.LOW))

    assert (result.cited, result.verified, result.dropped) == (3, 2, 1)
    assert result.precision == pytest.approx(2 / 3)
    assert result.distractor == 1 and result.page_share == 0.0
    assert len(result.found) == 1  # the verified TODO still grounds its fact


def test_json_output_and_a_missing_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    for name in ("ANTHROPIC_API_KEY", "FEATURE_PLANNER_ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert main(["--provider", "anthropic"]) == 2
    assert "needs FEATURE_PLANNER_ANTHROPIC_API_KEY" in capsys.readouterr().err

    assert main(["--fixtures", "fastapi", "--types", "optimization", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["overall"]["precision"] == 1.0
    assert document["fixtures"][0]["byFeatureType"][0]["suggestions"][0]["sent"] is True

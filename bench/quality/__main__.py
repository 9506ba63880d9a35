"""``python -m bench.quality``: generate the fixtures, run an engine on them, print the
figures (``--help`` lists the options)."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from feature_planner.agent.base import Provider
from feature_planner.agent.providers import build_provider
from feature_planner.agent.providers.offline import OfflineProvider
from feature_planner.config import ConfigurationError, load_settings
from feature_planner.models import FeatureType, PriorityLevel

from . import __doc__ as _about
from .fixtures import FIXTURES, build
from .harness import FixtureScore, Run, combine, run_types, score

PROVIDERS = ("offline", "anthropic", "openai", "claude-agent-sdk")
DEFAULT_SCALE = 10_000  # filler files around the buried page: seconds, not minutes


def make_provider(name: str) -> tuple[Provider, float]:
    """The engine under test, made as the service makes it from the settings (keys and base
    URLs from the environment or ``.env``), and the service's time limit for a run; the
    offline engine without its narration pause. Raises ``ConfigurationError`` (naming the
    variable to set) when a key is missing."""
    if name == "offline":
        return OfflineProvider(interval_s=0), 300.0
    settings = load_settings(provider=name)
    return build_provider(settings), settings.time_limit_s


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def table(scores: Sequence[FixtureScore]) -> str:
    """The figures as a Markdown table, one row per fixture and one for all of them."""
    head = (
        "| fixture | files | runs | suggestions | cited | verified | precision | facts found "
        "| recall | page share | other pages | look-alikes | elsewhere | page found | generate "
        "| run |"
    )
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for s in [*scores, combine(scores)]:
        name = f"**{s.name}**" if s.name == "overall" else s.name
        lines.append(
            f"| {name} | {s.files:,} | {s.runs} | {s.suggestions} | {s.cited} | {s.verified} "
            f"| {_ratio(s.precision)} | {len(s.found)}/{s.planted} | {_percent(s.recall)} "
            f"| {_percent(s.page_share)} | {s.distractor} | {s.lookalike} | {s.elsewhere} "
            f"| {'yes' if s.finds_page else 'NO'} | {s.generate_s:.2f} s | {s.run_s:.2f} s |"
        )
    return "\n".join(lines)


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def details(scores: Sequence[FixtureScore]) -> str:
    """What the table does not show: each missed fact, each stray citation, each error."""
    lines = []
    for s in scores:
        for fact in s.missed:
            lines.append(f"missed   {s.name}: {fact.kind.value} at {fact.where()} ({fact.what})")
        for label, items in (
            ("other page", s.distractor_items),
            ("look-alike", s.lookalike_items),
            ("elsewhere", s.elsewhere_items),
        ):
            for item, count in Counter(items).items():
                lines.append(f"{label:<8} {s.name}: {item} (cited {count}x)")
        for error in s.errors:
            lines.append(f"error    {s.name}: {error}")
    return "\n".join(lines)


def _runs_json(runs: Sequence[Run]) -> list[dict[str, object]]:
    return [
        {
            "featureType": run.feature_type.value,
            "seconds": round(run.seconds, 3),
            "error": run.error,
            "suggestions": [
                {
                    "title": s.title,
                    "sent": s.sent,
                    "cited": [i.model_dump(by_alias=True) for i in s.cited],
                    "verified": [i.model_dump(by_alias=True) for i in s.verified],
                }
                for s in run.submitted
            ],
        }
        for run in runs
    ]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.quality", description=(_about or "").split("\n")[0]
    )
    parser.add_argument("--provider", choices=PROVIDERS, default="offline")
    parser.add_argument("--fixtures", nargs="+", choices=sorted(FIXTURES), default=list(FIXTURES))
    parser.add_argument(
        "--types",
        nargs="+",
        choices=[t.value for t in FeatureType],
        default=[t.value for t in FeatureType],
        help="feature types to run (default: all)",
    )
    parser.add_argument(
        "--priority", choices=[p.value for p in PriorityLevel], default=PriorityLevel.LOW.value
    )
    parser.add_argument(
        "--scale",
        type=int,
        default=DEFAULT_SCALE,
        help=f"generated files around the buried page (default {DEFAULT_SCALE:,})",
    )
    parser.add_argument("--git", action="store_true", help="make each fixture a git checkout")
    parser.add_argument("--keep", type=Path, help="generate into this folder and keep it")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    return parser.parse_args(argv)


async def _bench(
    args: argparse.Namespace, provider: Provider, time_limit_s: float, base: Path
) -> tuple[list[FixtureScore], dict[str, list[Run]]]:
    """Every fixture in turn, in one event loop (an AI provider's clients stay in theirs)."""
    types = [FeatureType(value) for value in args.types]
    scores: list[FixtureScore] = []
    runs: dict[str, list[Run]] = {}
    try:
        for name in args.fixtures:
            spec = FIXTURES[name]
            if (base / name).exists():
                shutil.rmtree(base / name)
            fixture = build(spec, base, scale=args.scale if spec.scaled else 0, git=args.git)
            runs[name] = await run_types(
                provider, fixture, types, PriorityLevel(args.priority), time_limit_s=time_limit_s
            )
            scores.append(score(fixture, runs[name]))
            print(f"{name}: {fixture.files:,} files, {len(runs[name])} runs", file=sys.stderr)
    finally:
        await provider.aclose()
    return scores, runs


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        provider, time_limit_s = make_provider(args.provider)
    except ConfigurationError as problem:
        print(f"python -m bench.quality --provider {args.provider}: {problem}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    base = args.keep or Path(tempfile.mkdtemp(prefix="feature-planner-quality-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        scores, runs = asyncio.run(_bench(args, provider, time_limit_s, base))
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    if args.json:
        document = {
            "provider": args.provider,
            "priority": args.priority,
            "featureTypes": args.types,
            "scale": args.scale,
            "git": args.git,
            "seconds": round(time.perf_counter() - started, 3),
            "fixtures": [
                {**s.to_json(), "byFeatureType": _runs_json(runs[s.name])} for s in scores
            ],
            "overall": combine(scores).to_json(),
        }
        print(json.dumps(document, indent=2))
    else:
        print(table(scores))
        print(details(scores))
        print(f"{time.perf_counter() - started:.1f} s in all", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

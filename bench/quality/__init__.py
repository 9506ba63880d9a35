"""Quality benchmark: does an engine's advice rest on the code of the page it was asked about?

    .venv/bin/python -m bench.quality                     # the offline engine, every fixture
    .venv/bin/python -m bench.quality --scale 100000      # the buried page among 100k files
    .venv/bin/python -m bench.quality --json              # machine output
    .venv/bin/python -m bench.quality --provider anthropic   # a real model (needs its key)

Fixture repositories are generated in a temporary folder (``fixtures``): small applications
(Next.js, React, Django, FastAPI, and a Next.js page buried in generated files) with planted
facts in the files of one page, and distractors. The engine runs on each, once per feature
type, through the real runner (``harness``), which verifies every item it cites; the table
gives evidence precision, fact recall, page share and citations of other pages.
"""

from __future__ import annotations

from .fixtures import FIXTURES, Fixture, PlantedFact, build
from .harness import FixtureScore, Run, combine, run_all, run_engine, run_types, score

__all__ = [
    "FIXTURES",
    "Fixture",
    "FixtureScore",
    "PlantedFact",
    "Run",
    "build",
    "combine",
    "run_all",
    "run_engine",
    "run_types",
    "score",
]

"""The benchmark suite (bench/): it must run to the end and print every target.

The smoke profile runs every cell of the quick profile, each as short as it can be, against
real servers; its figures mean nothing on a shared machine, so no timing is asserted.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from bench.record import ANALYSIS_HEADING

from feature_planner.agent.base import PlanRequest
from feature_planner.agent.providers import ScriptedProvider
from feature_planner.models import FeatureType, PriorityLevel
from tests.agent.sinks import RecordingSink

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T10", "T11", "T12"}
VERDICTS = {"pass", "FAIL", "partial"}
REQUEST = PlanRequest(
    page_or_component="Cart",
    feature_type=FeatureType.ENHANCEMENT,
    priority_level=PriorityLevel.HIGH,
    repository=ROOT,
)


def _table(markdown: str) -> list[list[str]]:
    """The rows of the targets table: target, mode, measured, baseline, ratio, goal, result
    (the run's own part: the analysis carried over after it has tables of its own)."""
    run = markdown.split(ANALYSIS_HEADING, 1)[0]
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in run.splitlines()
        if line.startswith("| T")
    ]


@pytest.mark.timeout(180)
def test_smoke_profile_prints_and_records_every_target_in_both_modes(tmp_path: Path) -> None:
    output = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--profile", "smoke", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]

    modes: dict[str, set[str]] = {}
    for target, mode, measured, *_, result in _table(output.read_text()):
        name = target.split()[0]
        modes.setdefault(name, set()).add(mode)
        assert measured and measured != "—", target
        assert result.strip("*").split()[0].strip("*") in VERDICTS, result
        assert f"{name} " in done.stdout  # the printed table has it too
    assert set(modes) == TARGETS
    assert set().union(*modes.values()) == {"memory", "redis"}
    for target in ("T10", "T11", "T12"):
        assert modes[target] == {"memory", "redis"}
    assert "Where the time goes" in output.read_text()  # the analysis is carried over


async def test_scripted_provider_stamps_each_chunk_and_waits_on_its_pace() -> None:
    paces: list[int] = []

    async def pace() -> None:
        paces.append(time.monotonic_ns())

    provider = ScriptedProvider(["[0] one", "[1] two"], stamp=True, pace=pace)
    sink = RecordingSink()
    await provider.run(REQUEST, sink)

    stamps = [int(chunk.split(":", 1)[0]) for chunk in sink.chunks]
    assert [chunk.split(":", 1)[1] for chunk in sink.chunks] == ["[0] one", "[1] two"]
    assert len(paces) == 2
    assert paces[0] <= stamps[0] <= paces[1] <= stamps[1] <= time.monotonic_ns()


async def test_scripted_provider_sends_chunks_unchanged_by_default() -> None:
    provider = ScriptedProvider(["[0] one"])
    sink = RecordingSink()
    await provider.run(REQUEST, sink)
    assert sink.chunks == ["[0] one"]

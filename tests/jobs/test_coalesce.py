"""Delta coalescing: bounded rate, nothing lost, everything flushed."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from feature_planner.jobs.coalesce import DeltaCoalescer


async def test_first_chunk_goes_out_at_once_then_one_per_interval() -> None:
    loop = asyncio.get_running_loop()
    published: list[tuple[float, str]] = []
    coalescer = DeltaCoalescer(0.05, lambda text: published.append((loop.time(), text)))
    start = loop.time()
    coalescer.add("a")
    assert published == [(published[0][0], "a")]
    for char in "bcd":
        coalescer.add(char)
    assert len(published) == 1
    await asyncio.sleep(0.08)
    assert [text for _, text in published] == ["a", "bcd"]
    assert published[1][0] - start >= 0.05


async def test_flush_publishes_the_buffer_and_cancels_the_timer() -> None:
    published: list[str] = []
    coalescer = DeltaCoalescer(10, published.append)
    coalescer.add("x")
    coalescer.add("y")
    coalescer.flush()
    assert published == ["x", "y"]
    coalescer.flush()
    await asyncio.sleep(0)
    assert published == ["x", "y"]


async def test_zero_interval_publishes_every_chunk() -> None:
    published: list[str] = []
    coalescer = DeltaCoalescer(0, published.append)
    for chunk in ["a", "b", "", "c"]:
        coalescer.add(chunk)
    assert published == ["a", "b", "c"]


@settings(max_examples=60, deadline=None)
@given(
    chunks=st.lists(st.text(min_size=0, max_size=12), min_size=0, max_size=40),
    delays=st.lists(st.sampled_from([0, 0, 0, 0.001, 0.003, 0.006]), min_size=40, max_size=40),
    interval=st.sampled_from([0, 0.002, 0.005, 0.1]),
)
def test_random_chunkings_and_timings_never_lose_or_duplicate_text(
    chunks: list[str], delays: list[float], interval: float
) -> None:
    async def scenario() -> list[str]:
        published: list[str] = []
        coalescer = DeltaCoalescer(interval, published.append)
        for chunk, delay in zip(chunks, delays, strict=False):
            coalescer.add(chunk)
            if delay:
                await asyncio.sleep(delay)
        coalescer.flush()
        return published

    published = asyncio.run(scenario())
    assert "".join(published) == "".join(chunks)
    assert all(published)  # no empty deltas

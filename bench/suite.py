"""The run: which servers start, in which order, and the cells each one gets.

Every server runs alone on the server core while it is measured; the load generator and
the benchmark's own redis-server share the other core.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import redis

from .cells import (
    ChurnResult,
    ConnectResult,
    CreateResult,
    DeltaResult,
    FirehoseResult,
    IdleResult,
    LatencyResult,
    Profile,
    churn,
    create_latency,
    creates,
    deltas,
    firehose,
    idle_streams,
    paced,
    tokens,
)
from .servers import ROOT, Pools, Process, redis_server, uvicorn_server

__all__ = ["MODES", "PROFILES", "Mode", "Results", "run", "sustains"]

Mode = Literal["memory", "redis"]
MODES: tuple[Mode, ...] = ("memory", "redis")
T = TypeVar("T")

PROFILES = {
    "quick": Profile(
        "quick",
        repetitions=1,
        create_s=1.2,
        ramp_s=0.5,
        settle_s=0.2,
        measure_s=1.0,
        moderate_rate=3_000,
        t8_steps=3,
        idle_streams=2_000,
        heartbeat_s=1.0,
        idle_window_s=2.0,
        churn_streams=40,
        b2_streams=40,
        b2_events=2_000,
    ),
    "full": Profile(
        "full",
        repetitions=3,
        create_s=4.0,
        ramp_s=1.5,
        settle_s=0.5,
        measure_s=4.0,
        moderate_rate=3_000,
        t8_steps=6,
        idle_streams=15_000,
        heartbeat_s=15.0,
        idle_window_s=30.0,
        churn_streams=100,
        b2_streams=40,
        b2_events=5_000,
    ),
    # For the test suite: every cell, as short as it can be; the figures mean nothing.
    "smoke": Profile(
        "smoke",
        repetitions=1,
        create_s=0.3,
        ramp_s=0.15,
        settle_s=0.05,
        measure_s=0.3,
        moderate_rate=1_000,
        t8_steps=1,
        idle_streams=150,
        heartbeat_s=0.5,
        idle_window_s=0.5,
        churn_streams=6,
        b2_streams=4,
        b2_events=500,
    ),
}


@dataclass
class Results:
    profile: Profile
    b0: list[CreateResult] = field(default_factory=list)
    b1: list[CreateResult] = field(default_factory=list)
    b2: list[FirehoseResult] = field(default_factory=list)
    b2_paced: list[DeltaResult] = field(default_factory=list)  # at the moderate rate
    creates: dict[Mode, list[CreateResult]] = field(default_factory=dict)
    create_latency: dict[Mode, list[LatencyResult]] = field(default_factory=dict)
    moderate: dict[Mode, list[DeltaResult]] = field(default_factory=dict)  # T4, T5
    half_cpu: dict[Mode, list[DeltaResult]] = field(default_factory=dict)  # T6, T7
    sustained: list[DeltaResult] = field(default_factory=list)  # T8, in memory
    sustained_capped: bool = False  # the search stopped while still keeping up
    n0_moderate: dict[Mode, list[DeltaResult]] = field(default_factory=dict)
    n0_sustained: list[DeltaResult] = field(default_factory=list)
    n0_sustained_capped: bool = False
    connect: dict[Mode, list[ConnectResult]] = field(default_factory=dict)  # T11
    idle: dict[Mode, list[IdleResult]] = field(default_factory=dict)  # T10
    churn: dict[Mode, list[ChurnResult]] = field(default_factory=dict)  # T12
    service_deltas: dict[Mode, list[DeltaResult]] = field(default_factory=dict)  # T12
    generator_share: float = 0.0  # the load generator's busiest cell, share of its core
    seconds: float = 0.0


def sustains(result: DeltaResult) -> bool:
    """T8's condition: every stream kept up, at p99 ≤ 50 ms, without a fault."""
    return result.keeps_up and result.p99 <= 50 and result.faults == 0


def service_env(profile: Profile, data_dir: str, redis_url: str | None) -> dict[str, str]:
    """The settings of the service (and of N0, which reads the same variables)."""
    users = ",".join(f"user{n}={token}" for n, token in enumerate(tokens(profile)))
    env = {
        "FEATURE_PLANNER_PROVIDER": "scripted",
        "FEATURE_PLANNER_USERS": users,
        # Limits out of the way; a 1 s window keeps each user's moving-window list short.
        "FEATURE_PLANNER_CREATE_LIMIT": "1000000000",
        "FEATURE_PLANNER_CREATE_WINDOW_S": "1",
        "FEATURE_PLANNER_MAX_STREAMS_PER_USER": "1000000",
        "FEATURE_PLANNER_THROTTLE_MS": "0",
        "FEATURE_PLANNER_LOG_LEVEL": "warning",
        "FEATURE_PLANNER_SCRIPTED_CHUNKS": str(profile.chunks),
        "FEATURE_PLANNER_SCRIPTED_INTERVAL_MS": str(profile.interval_ms),
        "FEATURE_PLANNER_HEARTBEAT_S": "15",
        "FEATURE_PLANNER_REPOSITORY": str(ROOT),
        "FEATURE_PLANNER_DATABASE_URL": f"sqlite:///{data_dir}/agents.db",
        "FEATURE_PLANNER_DRAIN_S": "0",  # stop at once: nothing left running matters
    }
    if redis_url:
        env["FEATURE_PLANNER_REDIS_URL"] = redis_url
    return env


def idle_env(profile: Profile, data_dir: str, redis_url: str | None) -> dict[str, str]:
    """Runs that wait an hour for their first chunk: their streams only hear heartbeats."""
    return {
        **service_env(profile, data_dir, redis_url),
        "FEATURE_PLANNER_SCRIPTED_CHUNKS": "1",
        "FEATURE_PLANNER_SCRIPTED_INTERVAL_MS": "3600000",
        "FEATURE_PLANNER_HEARTBEAT_S": str(profile.heartbeat_s),
        "FEATURE_PLANNER_TIME_LIMIT_S": "7200",
    }


@dataclass(frozen=True)
class _Backend:
    """Where a mode keeps its jobs: the settings, and what to meter and leave out."""

    mode: Mode
    env: dict[str, str]
    idle_env: dict[str, str]
    redis: Process | None
    pools: Pools


class _Run:
    def __init__(self, profile: Profile, log: Callable[[str], None]) -> None:
        self.profile = profile
        self.results = Results(profile)
        self._log = log
        self.started = time.monotonic()

    def note(self, what: str) -> None:
        self._log(f"[{time.monotonic() - self.started:6.1f} s] {what}")

    async def once(self, cell: Awaitable[T], describe: Callable[[T], str]) -> T:
        result = await cell
        share = getattr(result, "generator_share", 0.0)
        self.results.generator_share = max(self.results.generator_share, share)
        self.note(describe(result))
        return result

    async def repeat(
        self, cell: Callable[[], Awaitable[T]], describe: Callable[[T], str], warm_up: bool = True
    ) -> list[T]:
        """``repetitions`` runs of ``cell``; in the full profile, after one unrecorded warm-up."""
        if self.profile.repetitions > 1 and warm_up:
            await cell()
        return [await self.once(cell(), describe) for _ in range(self.profile.repetitions)]

    # -- servers ---------------------------------------------------------------------------

    async def baselines(self) -> None:
        r, p = self.results, self.profile
        with uvicorn_server("bench.baselines:b0", {}) as server:
            r.b0 = await self.repeat(lambda: creates(server, p), _create_line("B0"))
        with uvicorn_server("bench.baselines:b1", {}) as server:
            r.b1 = await self.repeat(lambda: creates(server, p), _create_line("B1"))
        with uvicorn_server("bench.baselines:b2", {}) as server:
            r.b2 = await self.repeat(
                lambda: firehose(server, p),
                lambda x: f"B2 firehose: {x.events:,} events, {x.cpu_us:.1f} µs/event",
            )
            r.b2_paced = await self.repeat(
                lambda: paced(server, p, p.moderate_rate), _delta_line("B2 paced")
            )

    async def service(self, backend: _Backend) -> None:
        r, p, mode = self.results, self.profile, backend.mode
        label = f"service {mode}"
        with uvicorn_server("bench.service:create_app", backend.env, factory=True) as server:

            def cell(rate: float) -> Awaitable[DeltaResult]:
                return deltas(server, p, rate, backend.redis)

            r.moderate[mode] = await self.repeat(lambda: cell(p.moderate_rate), _delta_line(label))
            tried = list(r.moderate[mode])
            if mode == "memory":
                r.sustained, tries = await self.sustained(cell, r.moderate[mode], label)
                r.sustained_capped = _capped(tries)
                tried += [*tries, *r.sustained]
            rate = _rate_at_half_cpu(tried)
            r.half_cpu[mode] = await self.repeat(lambda: cell(rate), _delta_line(label))
            r.service_deltas[mode] = [*tried, *r.half_cpu[mode]]
            r.creates[mode] = await self.repeat(lambda: creates(server, p), _create_line(label))
            half_load = _median([c.rps for c in r.creates[mode]]) / 2
            r.create_latency[mode] = await self.repeat(
                lambda: create_latency(server, p, half_load), _latency_line(label)
            )
            r.churn[mode] = await self.repeat(
                lambda: churn(server, p, backend.pools),
                lambda x: (
                    f"{label} churn: {x.streams} streams, {x.resumed} resumed, "
                    f"{x.faults} faults; tasks {x.tasks_before}→{x.tasks_after}, "
                    f"files {x.files_before}→{x.files_after}"
                ),
            )

    async def naive(self, backend: _Backend) -> None:
        r, p, mode = self.results, self.profile, backend.mode
        label = f"N0 {mode}"
        with uvicorn_server("bench.naive:create_app", backend.env, factory=True) as server:

            def cell(rate: float) -> Awaitable[DeltaResult]:
                return deltas(server, p, rate, backend.redis)

            r.n0_moderate[mode] = await self.repeat(
                lambda: cell(p.moderate_rate), _delta_line(label)
            )
            if mode == "memory":
                r.n0_sustained, tries = await self.sustained(cell, r.n0_moderate[mode], label)
                r.n0_sustained_capped = _capped(tries)

    async def idle(self, backend: _Backend) -> None:
        """T10 and T11, on a fresh server per repetition (RSS does not shrink back)."""
        r, p, mode = self.results, self.profile, backend.mode
        r.connect[mode], r.idle[mode] = [], []
        for _ in range(p.repetitions):
            with uvicorn_server("bench.service:create_app", backend.idle_env, factory=True) as s:
                connect, idle = await self.once(
                    idle_streams(s, p),
                    lambda x: (
                        f"service {mode} connect p50/p99 {x[0].p50:.1f}/{x[0].p99:.1f} ms; "
                        f"{x[1].streams:,} idle: {x[1].rss_kib_each:.1f} KiB, "
                        f"{x[1].tasks_each:.2f} tasks each, {x[1].refused} refused"
                    ),
                )
            r.connect[mode].append(connect)
            r.idle[mode].append(idle)

    # -- searches ------------------------------------------------------------------------

    async def sustained(
        self, cell: Callable[[float], Awaitable[DeltaResult]], known: list[DeltaResult], label: str
    ) -> tuple[list[DeltaResult], list[DeltaResult]]:
        """T8: the highest rate kept up with at p99 ≤ 50 ms. From a guess a little above what
        a full core would do at the known cost per delta (the cost falls with load), steps
        of 25 % until one rate passes and one fails, then halves the gap between them; in
        the full profile the best rate found is then repeated."""
        reference = known[-1]
        rate = 1.25 * reference.rate / max(reference.server_share, 0.02)
        best: DeltaResult | None = None
        failed_at = math.inf
        tries: list[DeltaResult] = []
        for _ in range(self.profile.t8_steps):
            result = await self.once(cell(rate), _delta_line(f"{label} (sustained?)"))
            tries.append(result)
            if sustains(result):
                best = result
            else:
                failed_at = rate
            if best is None:
                rate *= 0.75
            elif math.isinf(failed_at):
                rate *= 1.25
            else:
                rate = (best.rate + failed_at) / 2
        if best is None or self.profile.repetitions == 1:
            return [best or tries[-1]], tries
        found = best.rate
        return await self.repeat(lambda: cell(found), _delta_line(label)), tries


def _capped(tries: list[DeltaResult]) -> bool:
    """Whether the search stopped before any rate above the best one failed."""
    passed = [t.rate for t in tries if sustains(t)]
    return bool(passed) and not any(t.rate > max(passed) for t in tries if not sustains(t))


def _rate_at_half_cpu(cells: list[DeltaResult]) -> float:
    """The delta rate expected to take 50 % of the server core: interpolated between the
    cells measured below and above it, else extrapolated from the nearest."""
    points = sorted((c.server_share, c.rate) for c in cells if c.server_share > 0)
    below = [point for point in points if point[0] <= 0.5]
    above = [point for point in points if point[0] > 0.5]
    if below and above:
        (s0, r0), (s1, r1) = below[-1], above[0]
        return r0 + (0.5 - s0) * (r1 - r0) / (s1 - s0)
    share, rate = below[-1] if below else above[0]
    return rate * 0.5 / share


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _create_line(label: str) -> Callable[[CreateResult], str]:
    return lambda x: f"{label} creates: {x.rps:,.0f} req/s, {x.cpu_us:.0f} µs/req"


def _latency_line(label: str) -> Callable[[LatencyResult], str]:
    return lambda x: (
        f"{label} create latency at {x.rate:,.0f}/s: p50 {x.p50:.2f} ms, p99 {x.p99:.2f} ms "
        f"(generator lag p99 {x.lag_p99:.2f} ms)"
    )


def _delta_line(label: str) -> Callable[[DeltaResult], str]:
    return lambda x: (
        f"{label} deltas at {x.rate:,.0f}/s ({x.streams} streams, "
        f"{x.delivered_per_s:,.0f}/s delivered): {x.cpu_us:.1f} µs/delta, "
        f"CPU {x.server_share:.0%}, p50/p99 {x.p50:.2f}/{x.p99:.2f} ms, "
        f"{x.lost}/{x.duplicated}/{x.reordered} lost/dup/reordered, {x.failed} failed"
        + (f", {x.late_opens} opened late" if x.late_opens else "")
        + (f", {x.unavailable} creates retried after 503" if x.unavailable else "")
    )


def _flush(url: str) -> None:
    client = redis.Redis.from_url(url)
    client.flushall()
    client.close()


async def _measure(profile: Profile, log: Callable[[str], None]) -> Results:
    run = _Run(profile, log)
    with tempfile.TemporaryDirectory() as data_dir, redis_server() as (url, redis_process):
        await run.baselines()
        for mode in MODES:
            url_or_none = url if mode == "redis" else None
            backend = _Backend(
                mode,
                service_env(profile, data_dir, url_or_none),
                idle_env(profile, data_dir, url_or_none),
                redis_process if mode == "redis" else None,
                Pools(f"{data_dir}/agents.db", redis_process.port if url_or_none else None),
            )
            for step in (run.service, run.naive, run.idle):
                _flush(url)
                gc.collect()  # between servers: inside a cell it would pause the generator
                await step(backend)
    run.results.seconds = time.monotonic() - run.started
    return run.results


def run(
    profile: Profile, log: Callable[[str], None] = lambda line: print(line, file=sys.stderr)
) -> Results:
    """Measure everything; ``log`` hears one line per cell."""
    runner: Callable[[Coroutine[Any, Any, Results]], Results] = asyncio.run
    with contextlib.suppress(ImportError):  # the generator is cheaper on uvloop
        import uvloop

        runner = uvloop.run
    gc.disable()
    try:
        return runner(_measure(profile, log))
    finally:
        gc.enable()

"""The measurements: each drives one running server for a while and returns its figures.

Server CPU is read from ``/proc`` around a measurement window; the load generator's own CPU
(``getrusage``) and the redis-server's over the same window go beside it.
"""

from __future__ import annotations

import asyncio
import collections
import math
import random
import resource
import time
from dataclasses import dataclass

from .loadgen import (
    API,
    Client,
    DeltaStats,
    Stream,
    closed_loop,
    count_firehose,
    create_request,
    get_json,
    open_loop,
    open_stream,
    percentile,
    stream_request,
)
from .probe import PROBE_PATH
from .servers import Pools, Process

__all__ = [
    "ChurnResult",
    "ConnectResult",
    "CreateResult",
    "DeltaResult",
    "FirehoseResult",
    "IdleResult",
    "LatencyResult",
    "Profile",
    "churn",
    "create_latency",
    "creates",
    "deltas",
    "firehose",
    "idle_streams",
    "paced",
    "tokens",
]

CONNECTIONS = 8  # closed-loop connections for saturation
BURST = 100  # T11: simultaneous connects
IDLE_PER_JOB = 100  # T10: idle streams share jobs, so the figures are per connection


@dataclass(frozen=True)
class Profile:
    name: str
    repetitions: int
    create_s: float  # each create run (closed and open loop)
    ramp_s: float  # a delta cell opens its streams evenly over this
    settle_s: float
    measure_s: float
    moderate_rate: float  # deltas/s for T4/T5: N0 with Redis must keep up with it
    t8_steps: int  # rates tried when looking for T8's sustained rate
    idle_streams: int
    heartbeat_s: float
    idle_window_s: float
    churn_streams: int
    b2_streams: int
    b2_events: int
    interval_ms: float = 10  # 100 deltas/s per stream, a model's pace
    users: int = 64  # creates rotate over users, as many clients would

    @property
    def job_s(self) -> float:
        return self.ramp_s + self.settle_s + self.measure_s + 0.3

    @property
    def chunks(self) -> int:
        return round(self.job_s * 1000 / self.interval_ms)

    @property
    def stream_rate(self) -> float:
        return 1000 / self.interval_ms


def tokens(profile: Profile) -> list[str]:
    return [f"bench-token-{n}" for n in range(profile.users)]


# -- metering ------------------------------------------------------------------------------


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Usage:
    seconds: float
    server: float  # CPU seconds
    generator: float
    redis: float

    @property
    def server_share(self) -> float:
        return self.server / self.seconds

    @property
    def generator_share(self) -> float:
        return self.generator / self.seconds


class Meter:
    """CPU of the server, the load generator and redis-server over a window."""

    def __init__(self, server: Process, redis: Process | None = None) -> None:
        self._server, self._redis = server, redis
        self._start = self._sample()

    def _sample(self) -> tuple[float, float, float, float]:
        redis = self._redis.cpu_seconds() if self._redis else 0.0
        return time.monotonic(), self._server.cpu_seconds(), _own_cpu(), redis

    def stop(self) -> Usage:
        end = self._sample()
        wall, server, generator, redis = (b - a for a, b in zip(self._start, end, strict=True))
        return Usage(wall, server, generator, redis)


async def _sleep_until(monotonic_ns: int) -> None:
    await asyncio.sleep(max(0.0, (monotonic_ns - time.monotonic_ns()) / 1e9))


def _ms(sorted_ns: list[int], fraction: float) -> float:
    return percentile(sorted_ns, fraction) / 1e6


# -- creates (T1, T2, T3) ------------------------------------------------------------------


@dataclass(frozen=True)
class CreateResult:
    rps: float
    cpu_us: float  # server CPU per request
    errors: int
    generator_share: float


async def creates(server: Process, profile: Profile) -> CreateResult:
    """Saturation throughput of the create call (closed loop)."""
    requests = [create_request(token) for token in tokens(profile)]
    await closed_loop(server.port, requests, CONNECTIONS, min(0.3, profile.create_s))
    meter = Meter(server)
    stats = await closed_loop(server.port, requests, CONNECTIONS, profile.create_s)
    usage = meter.stop()
    return CreateResult(
        rps=stats.count / stats.seconds,
        cpu_us=usage.server / stats.count * 1e6,
        errors=sum(stats.errors.values()),
        generator_share=usage.generator_share,
    )


@dataclass(frozen=True)
class LatencyResult:
    rate: float
    p50: float  # ms, from the intended send time
    p99: float
    p999: float
    max: float
    lag_p50: float  # ms the generator sent late: part of the figures above
    lag_p99: float
    server_share: float
    errors: int
    generator_share: float


async def create_latency(server: Process, profile: Profile, rate: float) -> LatencyResult:
    """Create latency at a fixed arrival rate (open loop)."""
    requests = [create_request(token) for token in tokens(profile)]
    meter = Meter(server)
    stats = await open_loop(server.port, requests, rate, profile.create_s)
    usage = meter.stop()
    latencies, lags = sorted(stats.latencies), sorted(stats.lags)
    return LatencyResult(
        rate=rate,
        p50=_ms(latencies, 0.5),
        p99=_ms(latencies, 0.99),
        p999=_ms(latencies, 0.999),
        max=latencies[-1] / 1e6,
        lag_p50=_ms(lags, 0.5),
        lag_p99=_ms(lags, 0.99),
        server_share=usage.server_share,
        errors=sum(stats.errors.values()),
        generator_share=usage.generator_share,
    )


# -- deltas (T4 to T8, T12) -----------------------------------------------------------------


@dataclass(frozen=True)
class DeltaResult:
    rate: float  # intended deltas/s
    streams: int
    delivered_per_s: float
    cpu_us: float  # server CPU per delivered delta
    redis_cpu_us: float
    server_share: float
    p50: float  # ms, model→client
    p99: float
    p999: float
    max: float
    received: int
    lost: int
    duplicated: int
    reordered: int  # a delta whose text is not the chunk its id says
    failed: int  # streams refused or ended without their final event
    late_opens: int  # streams that opened after the window began (ramp too short)
    unavailable: int  # creates answered 503 (store unavailable) and retried
    generator_share: float

    @property
    def faults(self) -> int:
        return self.lost + self.duplicated + self.reordered

    @property
    def keeps_up(self) -> bool:
        return self.delivered_per_s >= 0.95 * self.rate and not self.failed


async def deltas(
    server: Process,
    profile: Profile,
    rate: float,
    redis: Process | None = None,
    path: str | None = None,
) -> DeltaResult:
    """``rate`` deltas/s: streams of one job each, opened evenly over the ramp. With
    ``path``, the streams GET it instead of creating jobs (baseline B2, paced)."""
    count = max(1, round(rate / profile.stream_rate))
    stats = DeltaStats()
    start = time.monotonic_ns()
    stats.window_start_ns = start + int((profile.ramp_s + profile.settle_s) * 1e9)
    stats.window_end_ns = stats.window_start_ns + int(profile.measure_s * 1e9)
    users = tokens(profile)
    async with Client(server.port) as client:

        async def one(index: int) -> Stream:
            await _sleep_until(start + int(index * profile.ramp_s * 1e9 / count))
            if path is not None:
                return await open_stream(server.port, stats, stream_request(path, None))
            token = users[index % len(users)]
            job = await client.create_job(token)
            return await open_stream(server.port, stats, stream_request(f"{API}/{job}", token))

        opening = asyncio.gather(*(one(index) for index in range(count)))
        await _sleep_until(stats.window_start_ns)
        meter = Meter(server, redis)
        await _sleep_until(stats.window_end_ns)
        usage = meter.stop()
        streams = await opening
        await asyncio.wait_for(asyncio.gather(*(s.done for s in streams)), profile.job_s + 60)
        unavailable = client.unavailable
    latencies = sorted(stats.latencies)
    delivered = max(1, stats.delivered)
    return DeltaResult(
        rate=rate,
        streams=count,
        delivered_per_s=stats.delivered / usage.seconds,
        cpu_us=usage.server / delivered * 1e6,
        redis_cpu_us=usage.redis / delivered * 1e6,
        server_share=usage.server_share,
        p50=_ms(latencies, 0.5),
        p99=_ms(latencies, 0.99),
        p999=_ms(latencies, 0.999),
        max=latencies[-1] / 1e6 if latencies else math.nan,
        received=stats.received,
        lost=stats.lost,
        duplicated=stats.duplicated,
        reordered=stats.reordered,
        failed=stats.failed,
        late_opens=sum(s.started_ns > stats.window_start_ns for s in streams),
        unavailable=unavailable,
        generator_share=usage.generator_share,
    )


@dataclass(frozen=True)
class FirehoseResult:
    events: int
    cpu_us: float
    per_s: float
    generator_share: float


async def firehose(server: Process, profile: Profile) -> FirehoseResult:
    """B2's firehose: pre-framed events written as fast as the sockets take them."""
    path = f"/stream?events={profile.b2_events}"
    meter = Meter(server)
    events = await count_firehose(server.port, path, profile.b2_streams)
    usage = meter.stop()
    return FirehoseResult(
        events=events,
        cpu_us=usage.server / events * 1e6,
        per_s=events / usage.seconds,
        generator_share=usage.generator_share,
    )


async def paced(server: Process, profile: Profile, rate: float) -> DeltaResult:
    """B2 paced: the write pattern of a delta cell, one stamped event per tick, nothing else."""
    path = f"/paced?events={profile.chunks}&interval_ms={profile.interval_ms}"
    return await deltas(server, profile, rate, path=path)


# -- connects and idle streams (T10, T11) --------------------------------------------------


@dataclass(frozen=True)
class ConnectResult:
    p50: float  # ms from the connect call to the stream's first byte
    p99: float
    max: float
    refused: dict[int, int]  # answers other than 200, by status


@dataclass(frozen=True)
class IdleResult:
    streams: int  # open at once
    rss_kib_each: float
    tasks_each: float
    core_pct_per_10k: float  # server CPU while idle, % of a core per 10,000 streams
    heartbeat_s: float
    refused: int  # streams answered other than 200 while opening


async def _tasks(server: Process) -> int:
    return int((await get_json(server.port, PROBE_PATH))["tasks"])


async def _settled_tasks(server: Process, timeout: float = 3.0) -> int:
    """The task count once two readings 0.2 s apart agree (closing streams leave
    short-lived tasks behind for a moment)."""
    deadline = time.monotonic() + timeout
    previous = await _tasks(server)
    while True:
        await asyncio.sleep(0.2)
        current = await _tasks(server)
        if current == previous or time.monotonic() > deadline:
            return current
        previous = current


async def _open_all(server: Process, stats: DeltaStats, requests: list[bytes]) -> list[Stream]:
    streams = await asyncio.gather(*(open_stream(server.port, stats, r) for r in requests))
    await asyncio.gather(*(s.connected for s in streams))
    return list(streams)


async def _warm_up(server: Process, client: Client, stats: DeltaStats, token: str) -> None:
    """A burst like T11's on one job, closed again: the server's client pools grow to it."""
    job = await client.create_job(token)
    streams = await _open_all(server, stats, [stream_request(f"{API}/{job}", token)] * BURST)
    for stream in streams:
        stream.close()
    await asyncio.gather(*(s.done for s in streams))


async def idle_streams(server: Process, profile: Profile) -> tuple[ConnectResult, IdleResult]:
    """T11: ``BURST`` streams connect at once; T10: then many more stay open, idle."""
    users = tokens(profile)
    stats = DeltaStats()
    opened: list[Stream] = []
    async with Client(server.port) as client:
        await _warm_up(server, client, stats, users[0])
        tasks0, rss0 = await _settled_tasks(server), server.rss_kib()
        burst_jobs = [await client.create_job(users[n % len(users)]) for n in range(BURST)]
        requests = [
            stream_request(f"{API}/{job}", users[n % len(users)])
            for n, job in enumerate(burst_jobs)
        ]
        opened += await _open_all(server, stats, requests)
        first_bytes = sorted(s.first_byte_ns - s.started_ns for s in opened)
        connect = ConnectResult(
            p50=_ms(first_bytes, 0.5),
            p99=_ms(first_bytes, 0.99),
            max=first_bytes[-1] / 1e6,
            refused=dict(collections.Counter(s.status for s in opened if s.status != 200)),
        )
        remaining = max(0, profile.idle_streams - BURST)
        for first in range(0, remaining, IDLE_PER_JOB):
            token = users[(first // IDLE_PER_JOB) % len(users)]
            job = await client.create_job(token)
            request = stream_request(f"{API}/{job}", token)
            opened += await _open_all(
                server, stats, [request] * min(IDLE_PER_JOB, remaining - first)
            )
        tasks1, rss1 = await _settled_tasks(server), server.rss_kib()
        meter = Meter(server)
        await asyncio.sleep(profile.idle_window_s)
        usage = meter.stop()
        alive = sum(s.status == 200 and not s.done.done() for s in opened)
        for stream in opened:
            stream.close()
    count = max(1, alive)
    idle = IdleResult(
        streams=alive,
        rss_kib_each=(rss1 - rss0) / count,
        tasks_each=(tasks1 - tasks0) / count,
        core_pct_per_10k=usage.server_share * 100 * 10_000 / count,
        heartbeat_s=profile.heartbeat_s,
        refused=sum(s.status != 200 for s in opened),
    )
    return connect, idle


# -- churn (T12) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ChurnResult:
    streams: int
    resumed: int
    received: int
    faults: int
    failed: int
    tasks_before: int
    tasks_after: int
    files_before: int
    files_after: int


async def churn(server: Process, profile: Profile, pools: Pools) -> ChurnResult:
    """Streams that drop at a random event and resume with Last-Event-ID (most of them);
    afterwards the server's tasks and open files (less its client pools) must be back where
    they started."""
    rng = random.Random(7)
    users = tokens(profile)
    stats = DeltaStats()
    tasks0, files0 = await _settled_tasks(server), server.open_files(pools)
    async with Client(server.port) as client:
        jobs = [
            await client.create_job(users[n % len(users)]) for n in range(profile.churn_streams)
        ]
        first = await asyncio.gather(
            *(
                open_stream(
                    server.port,
                    stats,
                    stream_request(f"{API}/{job}", users[n % len(users)]),
                    stop_after=rng.randrange(profile.chunks // 2),
                )
                for n, job in enumerate(jobs)
            )
        )
        await asyncio.gather(*(s.done for s in first))
        again = [
            (n, s) for n, s in enumerate(first) if s.aborted and n % 4 != 3
        ]  # a quarter go away for good: their runs finish unwatched
        resumed = await asyncio.gather(
            *(
                open_stream(
                    server.port,
                    stats,
                    stream_request(f"{API}/{jobs[n]}", users[n % len(users)], s.last_id),
                    last_id=s.last_id,
                )
                for n, s in again
            )
        )
        await asyncio.wait_for(asyncio.gather(*(s.done for s in resumed)), profile.job_s + 30)
    tasks1, files1 = await _back_to(server, pools, tasks0, files0, profile.job_s + 5)
    return ChurnResult(
        streams=len(first),
        resumed=len(resumed),
        received=stats.received,
        faults=stats.faults,
        failed=stats.failed,
        tasks_before=tasks0,
        tasks_after=tasks1,
        files_before=files0,
        files_after=files1,
    )


async def _back_to(
    server: Process, pools: Pools, tasks: int, files: int, timeout: float
) -> tuple[int, int]:
    """Wait for the runs left unwatched to finish; the counts once settled (or at timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        now_tasks, now_files = await _tasks(server), server.open_files(pools)
        if (now_tasks <= tasks and now_files <= files) or time.monotonic() > deadline:
            return now_tasks, now_files
        await asyncio.sleep(0.2)

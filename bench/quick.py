"""Quick benchmark: server CPU per create and per delivered delta, beside baselines B1 and B2.

    .venv/bin/python -m bench.quick            # about half a minute

The servers run pinned to core 0, this load generator to core 1 (when there are two).
Server CPU comes from /proc/<pid>/stat (user + system), the steadier figure on a shared
machine; throughput is reported beside it. The full suite of BENCHMARKS.md is a later issue.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token"
API = "/api/feature-planner/suggest-feature"
BODY = json.dumps(
    {"pageOrComponent": "Collections page", "featureType": "enhancement", "priorityLevel": "high"}
).encode()
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


@contextmanager
def server(target: str, env: dict[str, str], factory: bool = False) -> Iterator[tuple[int, int]]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    if factory:
        command.append("--factory")
    if shutil.which("taskset") and os.cpu_count() and os.cpu_count() > 1:  # type: ignore[operator]
        command = ["taskset", "-c", "0", *command]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})
    try:
        wait_for_port(port)
        yield process.pid, port
    finally:
        process.terminate()
        process.wait(10)


async def post_loop(port: int, seconds: float, results: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = (
        f"POST {API} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
        body = await reader.readexactly(length)
        assert head.startswith(b"HTTP/1.1 201"), head + body
        results.append(time.perf_counter() - start)
    writer.close()
    await writer.wait_closed()


async def measure_creates(
    pid: int, port: int, seconds: float = 4, connections: int = 8
) -> dict[str, float]:
    latencies: list[float] = []
    await asyncio.gather(*(post_loop(port, 0.5, []) for _ in range(connections)))  # warm-up
    cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
    await asyncio.gather(*(post_loop(port, seconds, latencies) for _ in range(connections)))
    cpu, wall = cpu_seconds(pid) - cpu0, time.perf_counter() - wall0
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / wall,
        "server_cpu_us": cpu / len(latencies) * 1e6,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


async def read_stream(port: int, path: str, auth: bool) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    headers = f"Authorization: Bearer {TOKEN}\r\n" if auth else ""
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: bench\r\n{headers}Accept: text/event-stream\r\n\r\n".encode()
    )
    await reader.readuntil(b"\r\n\r\n")
    deltas, tail = 0, b""
    while chunk := await reader.read(65536):
        data = tail + chunk
        deltas += data.count(b"event: delta")
        tail = data[-16:]
        if b"event: complete" in data or data.endswith(b"0\r\n\r\n"):
            break
    writer.close()
    await writer.wait_closed()
    return deltas


async def create_job(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            f"POST {API} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        + BODY
    )
    response = await reader.read()
    writer.close()
    return str(json.loads(response.split(b"\r\n\r\n", 1)[1])["data"]["jobId"])


async def measure_relay(pid: int, port: int, jobs: int, subscribers: int) -> dict[str, float]:
    ids = [await create_job(port) for _ in range(jobs)]
    cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
    counts = await asyncio.gather(
        *(read_stream(port, f"{API}/{job}", True) for job in ids for _ in range(subscribers))
    )
    cpu, wall = cpu_seconds(pid) - cpu0, time.perf_counter() - wall0
    delivered = sum(counts)
    return {
        "delivered": delivered,
        "per_s": delivered / wall,
        "server_cpu_us": cpu / delivered * 1e6,
    }


async def measure_firehose(pid: int, port: int, streams: int) -> dict[str, float]:
    cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
    counts = await asyncio.gather(*(read_stream(port, "/stream", False) for _ in range(streams)))
    cpu, wall = cpu_seconds(pid) - cpu0, time.perf_counter() - wall0
    delivered = sum(counts)
    return {
        "delivered": delivered,
        "per_s": delivered / wall,
        "server_cpu_us": cpu / delivered * 1e6,
    }


@contextmanager
def redis_server() -> Iterator[str]:
    """A redis-server of the benchmark's own, on core 1 with the load generator."""
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def main() -> None:
    if os.cpu_count() and os.cpu_count() > 1:  # type: ignore[operator]
        os.sched_setaffinity(0, {1})
    chunks, jobs, subscribers = 2000, 4, 10
    service_env = {
        "FEATURE_PLANNER_PROVIDER": "scripted",
        "FEATURE_PLANNER_USERS": f"bench={TOKEN}",
        "FEATURE_PLANNER_CREATE_LIMIT": "100000000",
        "FEATURE_PLANNER_MAX_STREAMS_PER_USER": "100000",
        "FEATURE_PLANNER_LOG_LEVEL": "warning",
        "FEATURE_PLANNER_THROTTLE_MS": "0",
        "FEATURE_PLANNER_SCRIPTED_CHUNKS": str(chunks),
        "FEATURE_PLANNER_SCRIPTED_CHUNK_SIZE": "16",
        "FEATURE_PLANNER_SCRIPTED_INTERVAL_MS": "0.5",
        "FEATURE_PLANNER_REPOSITORY": str(ROOT),
    }
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    rows = []
    with server("bench.baselines:b1", {}) as (pid, port):
        b1 = asyncio.run(measure_creates(pid, port))
    with server("feature_planner.web.app:create_app", service_env, factory=True) as (pid, port):
        create = asyncio.run(measure_creates(pid, port))
    with server("feature_planner.web.app:create_app", service_env, factory=True) as (pid, port):
        relay = asyncio.run(measure_relay(pid, port, jobs, subscribers))
    with server("bench.baselines:b2", {"BENCH_EVENTS": str(chunks)}) as (pid, port):
        b2 = asyncio.run(measure_firehose(pid, port, jobs * subscribers))
    with redis_server() as url:
        redis_env = {**service_env, "FEATURE_PLANNER_REDIS_URL": url}
        with server("feature_planner.web.app:create_app", redis_env, factory=True) as (pid, port):
            create_redis = asyncio.run(measure_creates(pid, port))
        with server("feature_planner.web.app:create_app", redis_env, factory=True) as (pid, port):
            relay_redis = asyncio.run(measure_relay(pid, port, jobs, subscribers))
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    rows.append(
        (
            "create, in memory (T1)",
            f"{create['rps']:,.0f} req/s",
            f"B1 {b1['rps']:,.0f} req/s",
            f"{create['rps'] / b1['rps']:.2f}",
        )
    )
    rows.append(
        (
            "create server CPU",
            f"{create['server_cpu_us']:.0f} µs/req",
            f"B1 {b1['server_cpu_us']:.0f} µs/req",
            f"{create['server_cpu_us'] / b1['server_cpu_us']:.2f}",
        )
    )
    rows.append(
        (
            "create latency p50/p99 (closed loop, 8 conns)",
            f"{create['p50_ms']:.2f}/{create['p99_ms']:.2f} ms",
            f"B1 {b1['p50_ms']:.2f}/{b1['p99_ms']:.2f} ms",
            "",
        )
    )
    rows.append(
        (
            "server CPU per delivered delta (T4)",
            f"{relay['server_cpu_us']:.1f} µs",
            f"B2 {b2['server_cpu_us']:.1f} µs",
            f"{relay['server_cpu_us'] / b2['server_cpu_us']:.2f}",
        )
    )
    rows.append(
        (
            "create with Redis (T3)",
            f"{create_redis['rps']:,.0f} req/s",
            f"memory {create['rps']:,.0f} req/s",
            f"{create_redis['rps'] / create['rps']:.2f}",
        )
    )
    rows.append(
        (
            "create with Redis server CPU, p50/p99",
            f"{create_redis['server_cpu_us']:.0f} µs/req",
            f"{create_redis['p50_ms']:.2f}/{create_redis['p99_ms']:.2f} ms",
            "",
        )
    )
    rows.append(
        (
            "server CPU per delivered delta, Redis (T5)",
            f"{relay_redis['server_cpu_us']:.1f} µs",
            f"memory {relay['server_cpu_us']:.1f} µs",
            f"{relay_redis['server_cpu_us'] / relay['server_cpu_us']:.2f}",
        )
    )
    rows.append(
        (
            "deltas delivered",
            f"{relay['delivered']:,} ({relay['per_s']:,.0f}/s)",
            f"B2 {b2['delivered']:,}",
            "",
        )
    )
    generator_cpu = (self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime)
    width = max(len(r[0]) for r in rows)
    print(f"{'metric':<{width}}  {'measured':>24}  {'baseline':>24}  ratio")
    for name, value, base, ratio in rows:
        print(f"{name:<{width}}  {value:>24}  {base:>24}  {ratio}")
    print(
        f"load generator CPU: {generator_cpu:.1f} s; "
        f"{jobs} jobs x {subscribers} subscribers x {chunks} chunks"
    )


if __name__ == "__main__":
    main()

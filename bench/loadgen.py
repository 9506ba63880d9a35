"""The load generator: asyncio protocols on raw sockets, cheap enough not to be the bottleneck.

- ``closed_loop``: keep-alive connections that each send the next request as soon as the last
  one is answered — saturation throughput.
- ``open_loop``: requests at a fixed rate from one ticking task; latency counts from each
  request's *intended* send time, so a slow server cannot slow the schedule down.
- ``Stream``: one SSE connection. It checks that delta ids run ``last + 1, last + 2, …`` and
  that delta ``N`` carries chunk ``N - 1``, and computes model→client latency from the
  ``monotonic_ns`` stamp the scripted provider puts in front of each chunk.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import itertools
import json
import os
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

__all__ = [
    "API",
    "Client",
    "DeltaStats",
    "RequestStats",
    "Stream",
    "closed_loop",
    "count_firehose",
    "create_request",
    "open_loop",
    "open_stream",
    "percentile",
    "stream_request",
]

API = "/api/feature-planner/suggest-feature"
BODY = json.dumps(
    {"pageOrComponent": "Collections page", "featureType": "enhancement", "priorityLevel": "high"}
).encode()
DELTA = re.compile(rb'id: (\d+)\nevent: delta\ndata: \{"text": ?"(\d+):\[(\d+)\]')
FINAL = re.compile(rb"id: (\d+)\nevent: (complete|error)\n")


def create_request(token: str) -> bytes:
    return (
        f"POST {API} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY


def stream_request(path: str, token: str | None, last_event_id: int | None = None) -> bytes:
    headers = f"Authorization: Bearer {token}\r\n" if token else ""
    if last_event_id is not None:
        headers += f"Last-Event-ID: {last_event_id}\r\n"
    return (
        f"GET {path} HTTP/1.1\r\nHost: bench\r\n{headers}Accept: text/event-stream\r\n\r\n".encode()
    )


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


# -- request / response ------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """A keep-alive HTTP/1.1 connection, one request at a time; answers go to ``on_answer``."""

    def __init__(self, on_answer: Callable[[_Connection, int, bytes], None]) -> None:
        self.on_answer = on_answer
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self.intended_ns = 0
        self.sent_ns = 0
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self, request: bytes, intended_ns: int) -> None:
        assert self.transport is not None
        self.intended_ns = intended_ns
        self.sent_ns = time.monotonic_ns()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data
        while (head_end := buffer.find(b"\r\n\r\n")) >= 0:
            head = buffer[:head_end].lower()
            at = head.find(b"content-length:") + 15
            line_end = head.find(b"\r\n", at)
            length = int(head[at : line_end if line_end >= 0 else len(head)])
            end = head_end + 4 + length
            if len(buffer) < end:
                break
            status, body, buffer = int(buffer[9:12]), buffer[head_end + 4 : end], buffer[end:]
            self.on_answer(self, status, body)
        self._buffer = buffer

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the server closed the connection"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def _connect(port: int, on_answer: Callable[[_Connection, int, bytes], None]) -> _Connection:
    loop = asyncio.get_running_loop()
    _, connection = await loop.create_connection(lambda: _Connection(on_answer), "127.0.0.1", port)
    return connection


@dataclass
class RequestStats:
    """Answers to a run of requests: latencies in ns, errors by status."""

    latencies: list[int] = field(default_factory=list)
    lags: list[int] = field(default_factory=list)  # send time - intended time (open loop)
    errors: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    def record(self, status: int, latency_ns: int) -> None:
        if status >= 300:
            self.errors[status] = self.errors.get(status, 0) + 1
        self.latencies.append(latency_ns)

    @property
    def count(self) -> int:
        return len(self.latencies)


async def closed_loop(
    port: int, requests: Sequence[bytes], connections: int, seconds: float
) -> RequestStats:
    """Saturation: every connection sends its next request as soon as it has an answer."""
    stats = RequestStats()
    cycle = itertools.cycle(requests)
    end = 0  # set once every connection is open

    def answered(connection: _Connection, status: int, body: bytes) -> None:
        now = time.monotonic_ns()
        stats.record(status, now - connection.sent_ns)
        if now < end:
            connection.send(next(cycle), now)
        else:
            connection.close()

    pool = [await _connect(port, answered) for _ in range(connections)]
    start = time.monotonic_ns()
    end = start + int(seconds * 1e9)
    for connection in pool:
        connection.send(next(cycle), start)
    await asyncio.wait_for(asyncio.gather(*(c.closed for c in pool)), seconds + 10)
    stats.seconds = (time.monotonic_ns() - start) / 1e9
    return stats


async def open_loop(
    port: int, requests: Sequence[bytes], rate: float, seconds: float, connections: int = 16
) -> RequestStats:
    """A fixed arrival rate; latency from the intended send time (no coordinated omission)."""
    stats = RequestStats()
    cycle = itertools.cycle(requests)
    idle: deque[_Connection] = deque()
    backlog: deque[int] = deque()
    total = max(1, int(rate * seconds))
    loop = asyncio.get_running_loop()
    all_sent, all_answered = loop.create_future(), loop.create_future()

    def answered(connection: _Connection, status: int, body: bytes) -> None:
        stats.record(status, time.monotonic_ns() - connection.intended_ns)
        stats.lags.append(connection.sent_ns - connection.intended_ns)
        if backlog:
            connection.send(next(cycle), backlog.popleft())
        else:
            idle.append(connection)
        if stats.count == total and not all_answered.done():
            all_answered.set_result(None)

    idle.extend([await _connect(port, answered) for _ in range(connections)])
    period = int(1e9 / rate)
    sent = 0

    def send_due() -> None:
        nonlocal sent
        due = min(total, (time.monotonic_ns() - start) // period + 1)
        for index in range(sent, due):
            intended = start + index * period
            if idle:
                idle.popleft().send(next(cycle), intended)
            else:
                backlog.append(intended)
        sent = due
        if sent == total and not all_sent.done():
            all_sent.set_result(None)

    start = time.monotonic_ns()
    with Ticker(max(period, 50_000), send_due):
        await all_sent
    await asyncio.wait_for(all_answered, 10)
    stats.seconds = (time.monotonic_ns() - start) / 1e9
    for connection in idle:
        connection.close()
    return stats


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class _Itimerspec(ctypes.Structure):
    _fields_ = (("it_interval", _Timespec), ("it_value", _Timespec))


class Ticker:
    """Calls ``callback`` every ``period_ns`` from the event loop, to the microsecond.

    The loop's own timers round to a millisecond, which would add up to 1 ms of lateness to
    every open-loop request; a Linux ``timerfd`` watched by the loop does not.
    """

    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

    def __init__(self, period_ns: int, callback: Callable[[], None]) -> None:
        self._callback = callback
        self._fd = self._libc.timerfd_create(time.CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create")
        every = _Timespec(period_ns // 1_000_000_000, period_ns % 1_000_000_000)
        if self._libc.timerfd_settime(self._fd, 0, ctypes.byref(_Itimerspec(every, every)), None):
            raise OSError(ctypes.get_errno(), "timerfd_settime")
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._fd, self._fire)

    def _fire(self) -> None:
        try:
            os.read(self._fd, 8)  # the number of expirations: send_due catches up by itself
        except BlockingIOError:
            return
        self._callback()

    def __enter__(self) -> Ticker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.remove_reader(self._fd)
        os.close(self._fd)


class Client:
    """A few keep-alive connections for calls whose answers the caller awaits."""

    def __init__(self, port: int, size: int = 8) -> None:
        self._port = port
        self._size = size
        self._idle: deque[_Connection] = deque()
        self._all: list[_Connection] = []
        self._queued: deque[tuple[bytes, asyncio.Future[tuple[int, bytes]]]] = deque()
        self.unavailable = 0  # creates answered 503 and retried

    async def __aenter__(self) -> Client:
        self._all = [await _connect(self._port, self._answered) for _ in range(self._size)]
        self._idle.extend(self._all)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for connection in self._all:
            connection.close()
        await asyncio.gather(*(c.closed for c in self._all))

    async def call(self, request: bytes) -> tuple[int, bytes]:
        answer: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        if self._idle:
            self._start(self._idle.popleft(), request, answer)
        else:
            self._queued.append((request, answer))
        return await answer

    async def create_job(self, token: str) -> str:
        """A job's id; a 503 (store briefly unavailable) is retried, and counted."""
        for attempt in range(5):
            status, body = await self.call(create_request(token))
            if status == 201:
                return str(json.loads(body)["data"]["jobId"])
            if status != 503:
                break
            self.unavailable += 1
            await asyncio.sleep(0.1 * 2**attempt)
        raise RuntimeError(f"create answered {status}: {body[:200]!r}")

    def _start(
        self, connection: _Connection, request: bytes, answer: asyncio.Future[tuple[int, bytes]]
    ) -> None:
        connection.waiter = answer
        connection.send(request, time.monotonic_ns())

    def _answered(self, connection: _Connection, status: int, body: bytes) -> None:
        if connection.waiter is not None and not connection.waiter.done():
            connection.waiter.set_result((status, body))
        connection.waiter = None
        if self._queued:
            self._start(connection, *self._queued.popleft())
        else:
            self._idle.append(connection)


async def get_json(port: int, path: str) -> Any:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    return json.loads(response.split(b"\r\n\r\n", 1)[1])


# -- event streams -----------------------------------------------------------------------


@dataclass
class DeltaStats:
    """What the streams of one cell received inside the measurement window, and any fault."""

    window_start_ns: int = 0
    window_end_ns: int = 0
    delivered: int = 0  # deltas received inside the window
    latencies: list[int] = field(default_factory=list)  # model→client, ns, inside the window
    received: int = 0  # deltas received in all
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    completed: int = 0
    failed: int = 0  # refused, error event, or ended without a final event

    @property
    def faults(self) -> int:
        return self.lost + self.duplicated + self.reordered


class Stream(asyncio.Protocol):
    """One SSE connection; ``done`` resolves when it closes."""

    def __init__(
        self, stats: DeltaStats, request: bytes, last_id: int = 0, stop_after: int | None = None
    ) -> None:
        self.stats = stats
        self.request = request
        self.last_id = last_id
        self.stop_after = stop_after  # abort the connection once this event id arrived
        self.started_ns = time.monotonic_ns()
        self.first_byte_ns = 0
        self.connected = asyncio.get_running_loop().create_future()
        self.done = asyncio.get_running_loop().create_future()
        self.final = False
        self.aborted = False
        self.status = 0
        self._transport: asyncio.Transport | None = None
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        if not self.first_byte_ns:
            self.first_byte_ns = now
        buffer = self._tail + data
        if not self.status:
            head_end = buffer.find(b"\r\n\r\n")
            if head_end < 0:
                self._tail = buffer
                return
            self.status = int(buffer[9:12])
            buffer = buffer[head_end + 4 :]
            if self.status != 200:
                self.close()
                return
        cut = buffer.rfind(b"\n\n") + 2
        if cut < 2:
            self._tail = buffer
            return
        self._tail = buffer[cut:]
        self._check(buffer[:cut], now)

    def _check(self, events: bytes, now: int) -> None:
        stats = self.stats
        if not self.connected.done():
            self.connected.set_result(None)
        counted = stats.window_start_ns <= now < stats.window_end_ns
        for match in DELTA.finditer(events):
            event_id = int(match[1])
            if event_id <= self.last_id:
                stats.duplicated += 1
                continue
            stats.lost += event_id - self.last_id - 1
            if int(match[3]) != event_id - 1:
                stats.reordered += 1
            self.last_id = event_id
            stats.received += 1
            if counted:
                stats.delivered += 1
                stats.latencies.append(now - int(match[2]))
        if final := FINAL.search(events):
            stats.lost += max(0, int(final[1]) - self.last_id - 1)
            self.final = final[2] == b"complete"
            self.close()
        elif self.stop_after is not None and self.last_id >= self.stop_after:
            self.aborted = True
            assert self._transport is not None
            self._transport.abort()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.final:
            self.stats.completed += 1
        elif not self.aborted:
            self.stats.failed += 1
        for future in (self.connected, self.done):
            if not future.done():
                future.set_result(None)


async def open_stream(
    port: int,
    stats: DeltaStats,
    request: bytes,
    last_id: int = 0,
    stop_after: int | None = None,
) -> Stream:
    loop = asyncio.get_running_loop()
    started = time.monotonic_ns()
    _, stream = await loop.create_connection(
        lambda: Stream(stats, request, last_id, stop_after), "127.0.0.1", port
    )
    stream.started_ns = started
    return stream


class _Firehose(asyncio.Protocol):
    """Counts the events of a stream it does not check (baseline B2)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.events = 0
        self.done = asyncio.get_running_loop().create_future()
        self._carry = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._transport.write(stream_request(self.path, None))

    def data_received(self, data: bytes) -> None:
        data = self._carry + data
        self.events += data.count(b"\n\n")
        self._carry = data[-1:]
        if data.endswith(b"0\r\n\r\n"):
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def count_firehose(port: int, path: str, streams: int) -> int:
    loop = asyncio.get_running_loop()
    hoses = []
    for _ in range(streams):
        _, hose = await loop.create_connection(lambda: _Firehose(path), "127.0.0.1", port)
        hoses.append(hose)
    await asyncio.wait_for(asyncio.gather(*(hose.done for hose in hoses)), 60)
    return sum(hose.events for hose in hoses)

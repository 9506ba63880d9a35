"""Replicas sharing one Redis: app instances in this process, or separate processes.

``replicas(url, **settings)`` starts an app in a ``BackgroundServer`` of this process (its
``executions`` count is readable); ``processes(url, **settings)`` starts
``feature-planner serve`` as a subprocess, which a test may ``kill -9``. Both return a
``Replica``: a small client whose ``stream`` opens its own connection, so that threads may
stream at once, and whose ``watch`` streams in a background thread.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from feature_planner.agent.providers import scripted_text
from feature_planner.config import load_settings
from feature_planner.jobs.service import JobService
from feature_planner.serving import BackgroundServer, free_port
from feature_planner.web.app import create_app
from tests.conftest import ALICE, API, BOB, VALID_BODY
from tests.log_scan import find_secrets
from tests.redis_server import RedisServer
from tests.sse_decoder import ServerSentEvent, SSEDecoder

USERS = f"alice={ALICE},bob={BOB}"
LOGIN_LINK_LINE = re.compile(r"Open http://\S+/auth/login\?token=[\w.-]+ to log in as \w+")
CHUNK_SIZE = 8

# The settings every replica starts with; a test overrides what it needs.
DEFAULTS: dict[str, Any] = {
    "provider": "scripted",
    "users": USERS,
    "scripted_chunks": 30,
    "scripted_chunk_size": CHUNK_SIZE,
    "scripted_interval_ms": 20,
    "throttle_ms": 0,
    "log_level": "warning",
}

# A run that lasts about 5 s: long enough to do things to it while it runs.
LONG_RUN: dict[str, Any] = {"scripted_chunks": 200, "scripted_interval_ms": 25}


def expected_text(chunks: int, chunk_size: int = CHUNK_SIZE) -> str:
    return "".join(scripted_text(chunks, chunk_size))


@dataclass
class Received:
    """What one connection received, and when (``time.monotonic()``)."""

    status: int
    headers: httpx.Headers
    events: list[ServerSentEvent] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    body: bytes = b""
    ended_at: float = 0.0
    broken: httpx.TransportError | None = None  # the connection broke mid-stream

    @property
    def job_events(self) -> list[ServerSentEvent]:
        return [event for event in self.events if event.event != "connected"]

    @property
    def ids(self) -> list[int]:
        return [int(event.id or "-1") for event in self.job_events]

    @property
    def text(self) -> str:
        return "".join(e.json()["text"] for e in self.events if e.event == "delta")

    @property
    def last(self) -> ServerSentEvent:
        return self.events[-1]

    @property
    def last_id(self) -> int:
        return int(self.events[-1].id or "0")

    def error(self) -> dict[str, Any]:
        if self.body:
            payload: dict[str, Any] = httpx.Response(self.status, content=self.body).json()
            return payload["error"]  # type: ignore[no-any-return]
        assert self.last.event == "error", self.last
        data: dict[str, Any] = self.last.json()
        return data


class Watch:
    """A stream read in a background thread; ``wait_for`` an event, ``drop`` it, ``join``."""

    def __init__(
        self, replica: Replica, job_id: str, *, token: str, last_event_id: int | None
    ) -> None:
        self._cond = threading.Condition()
        self._drop = threading.Event()
        self._result: Received | None = None
        self._error: BaseException | None = None
        self.events: list[ServerSentEvent] = []
        self._thread = threading.Thread(
            target=self._run, args=(replica, job_id, token, last_event_id), daemon=True
        )
        self._thread.start()

    def _run(self, replica: Replica, job_id: str, token: str, last_event_id: int | None) -> None:
        def seen(event: ServerSentEvent) -> bool:
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()
            return self._drop.is_set()

        try:
            self._result = replica.stream(
                job_id, token=token, last_event_id=last_event_id, stop_after=seen
            )
        except BaseException as exc:  # reported by join()
            self._error = exc
        finally:
            with self._cond:
                self._cond.notify_all()

    def wait_for(
        self, condition: Callable[[ServerSentEvent], bool], timeout: float = 10
    ) -> ServerSentEvent:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if condition(event):
                        return event
                if not self._thread.is_alive():
                    raise AssertionError(f"the stream ended first: {self._error or self._result}")
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"no such event in {timeout} s; got {len(self.events)}"
                self._cond.wait(remaining)

    def drop(self) -> None:
        """Close the connection at the next event."""
        self._drop.set()

    def join(self, timeout: float = 15) -> Received:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the stream did not end within {timeout} s"
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


class Replica:
    """One replica seen from outside: its URL, and for in-process ones its service."""

    def __init__(
        self,
        url: str,
        *,
        service: JobService | None = None,
        process: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self.url = url
        self.service = service
        self.process = process
        self.http = httpx.Client(base_url=url, timeout=10)

    @property
    def executions(self) -> int:
        assert self.service is not None, "only an in-process replica counts its runs"
        return self.service.executions

    def auth(self, token: str = ALICE) -> dict[str, str]:
        return {"authorization": f"Bearer {token}"}

    def create(self, token: str = ALICE) -> httpx.Response:
        return self.http.post(API, json=VALID_BODY, headers=self.auth(token))

    def create_job(self, token: str = ALICE) -> str:
        response = self.create(token)
        assert response.status_code == 201, response.text
        job_id: str = response.json()["data"]["jobId"]
        return job_id

    def delete(self, job_id: str, token: str = ALICE) -> httpx.Response:
        return self.http.delete(f"{API}/{job_id}", headers=self.auth(token))

    def stream(
        self,
        job_id: str,
        *,
        token: str = ALICE,
        last_event_id: int | None = None,
        stop_after: Callable[[ServerSentEvent], bool] | None = None,
        read_timeout: float = 10,
    ) -> Received:
        """Read the stream to its end, or until ``stop_after`` says so; its own connection."""
        headers = {**self.auth(token), "accept": "text/event-stream"}
        if last_event_id is not None:
            headers["last-event-id"] = str(last_event_id)
        timeout = httpx.Timeout(10, read=read_timeout)
        with (
            httpx.Client(base_url=self.url, timeout=timeout) as client,
            client.stream("GET", f"{API}/{job_id}", headers=headers) as response,
        ):
            result = Received(response.status_code, response.headers)
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                result.body = response.read()
                result.ended_at = time.monotonic()
                return result
            decoder = SSEDecoder()
            try:
                for chunk in response.iter_raw():
                    for event in decoder.feed(chunk):
                        result.events.append(event)
                        result.times.append(time.monotonic())
                        if stop_after is not None and stop_after(event):
                            result.ended_at = time.monotonic()
                            return result
            except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                result.broken = exc
            result.ended_at = time.monotonic()
            return result

    def watch(self, job_id: str, *, token: str = ALICE, last_event_id: int | None = None) -> Watch:
        return Watch(self, job_id, token=token, last_event_id=last_event_id)

    def kill(self) -> None:
        """``kill -9`` (a subprocess replica only)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def close(self) -> None:
        self.http.close()


ReplicaFactory = Callable[..., Replica]


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's redis-server, emptied: for tests that leave Redis running."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, which it may stop, kill, freeze and restart
    (``start()`` again restarts it on the same port)."""
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory).start()
    try:
        yield server
    finally:
        process = server.process
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGCONT)  # in case a test froze it
        server.stop()


@pytest.fixture
def replicas(repo: Path) -> Iterator[ReplicaFactory]:
    """``replicas(redis_url, **settings)``: an app in this process, on its own port."""
    started: list[tuple[BackgroundServer, Replica]] = []

    def start(redis_url: str, **overrides: Any) -> Replica:
        settings = load_settings(
            **{**DEFAULTS, "repository": str(repo), "redis_url": redis_url, **overrides}
        )
        app = create_app(settings)
        server = BackgroundServer(app).start()
        replica = Replica(server.url, service=app.state.planner.service)
        started.append((server, replica))
        return replica

    try:
        yield start
    finally:
        for server, replica in reversed(started):
            replica.close()
            server.stop()


@pytest.fixture
def processes(repo: Path, tmp_path: Path) -> Iterator[ReplicaFactory]:
    """``processes(redis_url, workers=1, **settings)``: ``feature-planner serve`` in a
    subprocess (settings as ``FEATURE_PLANNER_*`` variables), ready once ``/healthz`` is."""
    started: list[Replica] = []

    def start(redis_url: str | None, *, workers: int = 1, **overrides: Any) -> Replica:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURE_PLANNER_")}
        # At info, so that the access log is written, and scanned for credentials.
        options = {
            **DEFAULTS,
            "log_level": "info",
            "repository": str(repo),
            "redis_url": redis_url,
            **overrides,
        }
        env.update(
            {f"FEATURE_PLANNER_{k.upper()}": str(v) for k, v in options.items() if v is not None}
        )
        command = [sys.executable, "-m", "feature_planner.cli", "serve", "--port", str(port)]
        if workers > 1:
            command += ["--workers", str(workers)]
        log = tmp_path / f"replica-{port}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                command,
                env=env,
                cwd=tmp_path,  # no stray .env
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        replica = Replica(f"http://127.0.0.1:{port}", process=process)
        started.append(replica)
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if replica.http.get("/healthz", timeout=1).status_code == 200:
                    return replica
            if process.poll() is not None:
                raise RuntimeError(f"the replica exited: {log.read_text()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the replica did not start: {log.read_text()}")
            time.sleep(0.05)

    try:
        yield start
    finally:
        _stop_processes(started)
    # What the processes printed is log lines too: no credential in any of them, but for
    # the one-time login links that `local` mode prints for its operator on purpose.
    for log in tmp_path.glob("replica-*.log"):
        lines = log.read_text(errors="replace").splitlines()
        leaked = [x for x in lines if find_secrets(x) and not LOGIN_LINK_LINE.fullmatch(x)]
        assert not leaked, f"{log.name} shows credentials: {leaked[:5]}"


def _stop_processes(started: list[Replica]) -> None:
    for replica in started:
        replica.close()
        process = replica.process
        assert process is not None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(8)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)  # its own group, workers too
                process.wait(5)


def wait_until(condition: Callable[[], object], timeout: float = 5.0, step: float = 0.02) -> float:
    """Poll until ``condition()`` is true; the seconds it took."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, f"condition not met within {timeout} s"
        time.sleep(step)
    return time.monotonic() - start

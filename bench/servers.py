"""The processes under test: uvicorn servers pinned to one core, a redis-server of our own.

Server CPU comes from ``/proc/<pid>/task/*/schedstat`` (``/proc/<pid>/stat`` where that is
missing), RSS from ``/proc/<pid>/statm`` and open files from ``/proc/<pid>/fd``: steadier
than anything measured over the wire.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CLIENT_CORE",
    "SERVER_CORE",
    "Pools",
    "Process",
    "pin_self",
    "redis_server",
    "uvicorn_server",
]

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
SCHEDSTAT = Path("/proc/self/schedstat").exists()
SERVER_CORE, CLIENT_CORE = 0, 1


def _two_cores() -> bool:
    return (os.cpu_count() or 1) >= 2


def pin_self(core: int = CLIENT_CORE) -> None:
    """Pin the load generator (and what it starts unpinned) to ``core``."""
    if _two_cores():
        os.sched_setaffinity(0, {core})


def _pinned(command: list[str], core: int) -> list[str]:
    if _two_cores() and shutil.which("taskset"):
        return ["taskset", "-c", str(core), *command]
    return command


@dataclass
class Process:
    """A process under test, on a local port."""

    pid: int
    port: int

    def cpu_seconds(self) -> float:
        """On-CPU time of all its threads: ``schedstat`` counts in ns, where ``stat``
        counts in 10 ms ticks, too coarse for a one-second window."""
        if not SCHEDSTAT:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / TICKS
        total = 0
        for thread in Path(f"/proc/{self.pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):  # the thread just ended
                total += int((thread / "schedstat").read_text().split()[0])
        return total / 1e9

    def rss_kib(self) -> int:
        return int(Path(f"/proc/{self.pid}/statm").read_text().split()[1]) * PAGE_KIB

    def open_files(self, pools: Pools | None = None) -> int:
        """Its open file descriptors, less those of its client pools (Redis connections,
        database files): a pool grows with concurrency up to its size; that is no leak."""
        links = []
        for fd in Path(f"/proc/{self.pid}/fd").iterdir():
            with contextlib.suppress(FileNotFoundError):
                links.append(os.readlink(fd))
        if pools is None:
            return len(links)
        pooled = _sockets_to(self.pid, pools.redis_port) if pools.redis_port else set()
        return sum(
            not link.startswith(pools.files)
            and link.removeprefix("socket:[").removesuffix("]") not in pooled
            for link in links
        )


@dataclass(frozen=True)
class Pools:
    """What ``Process.open_files`` leaves out."""

    files: str  # the prefix of the database files
    redis_port: int | None = None


def _sockets_to(pid: int, port: int) -> set[str]:
    """The inodes of the TCP sockets connected to ``port`` on this host."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the process on port {port} did not start") from None
            time.sleep(0.05)


@contextmanager
def _running(command: list[str], port: int, env: dict[str, str]) -> Iterator[Process]:
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            try:
                _wait_for_port(port, process)
            except RuntimeError:
                log.seek(0)
                sys.stderr.write(log.read().decode(errors="replace")[-4000:])
                raise
            yield Process(process.pid, port)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def uvicorn_server(target: str, env: dict[str, str], *, factory: bool = False) -> Iterator[Process]:
    """``uvicorn target`` on a free port, pinned to the server core."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", target, "--port", str(port)]
    command += ["--log-level", "warning", *(["--factory"] if factory else [])]
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("FEATURE_PLANNER_")}
    with _running(_pinned(command, SERVER_CORE), port, {**inherited, **env}) as process:
        yield process


@contextmanager
def redis_server() -> Iterator[tuple[str, Process]]:
    """A redis-server of the benchmark's own, on the load generator's core."""
    port = free_port()
    command = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"]
    with _running(_pinned(command, CLIENT_CORE), port, dict(os.environ)) as process:
        yield f"redis://127.0.0.1:{port}/0", process

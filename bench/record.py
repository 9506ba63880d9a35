"""Recording a run in bench/RESULTS.md: the machine, the date, the table, what was missed.

The hand-written analysis that follows the generated part (from ``ANALYSIS_HEADING`` on) is
kept as it is.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from .suite import Results
from .targets import Row, baseline_rows, markdown_table, misses

__all__ = ["ANALYSIS_HEADING", "RESULTS", "document", "machine", "write"]

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
ANALYSIS_HEADING = "## Where the time goes"
PACKAGES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "pydantic",
    "redis",
    "limits",
    "sse-starlette",
)


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _redis_version() -> str:
    try:
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    except OSError:
        return "none"
    return next((p.removeprefix("v=") for p in out.split() if p.startswith("v=")), "unknown")


def machine() -> dict[str, str]:
    """What the figures depend on, taken before the run (the load average included)."""
    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": _cpu_model(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "kernel": platform.release(),
        "packages": ", ".join(versions) + f", Redis {_redis_version()}",
        "load": load,
    }


def document(results: Results, table: list[Row], host: dict[str, str], command: str) -> str:
    profile = results.profile
    lines = [
        "# Benchmark results",
        "",
        f"`{command}` — the `{profile.name}` profile of the suite in `bench/` "
        f"({results.seconds:.0f} s; "
        + (
            f"{profile.repetitions} repetitions per cell after a warm-up, median and min-max"
            if profile.repetitions > 1
            else "one repetition per cell"
        )
        + "). Method and targets: `../shared/BENCHMARKS.md`.",
        "",
        f"{host['date']} · `nproc` {host['nproc']} · {host['cpu']} · {host['python']} · "
        f"Linux {host['kernel']} · load average before the run {host['load']}",
        "",
        host["packages"],
        "",
        "The servers run pinned to core 0, the load generator and the benchmark's own "
        "redis-server to core 1. Server CPU is the server process's on-CPU time "
        "(`/proc/<pid>/task/*/schedstat`) over the measurement window, divided by the work "
        "done. Delta cells: streams of 100 deltas/s each (one scripted chunk every 10 ms, "
        "throttle off, one shared clock driving every run), opened evenly, then measured; "
        "model→client latency from the `monotonic_ns` stamp each chunk carries. Create "
        "latency: open loop at half the measured saturation rate, from each request's "
        "intended send time. T4 compares with B2 paced, a bare StreamingResponse writing "
        "one stamped event per tick of the same clock (the service's write pattern); the "
        "B2 firehose, whose writes coalesce in the socket buffer, is listed with the "
        "baselines. T10's CPU is scaled to the 15 s heartbeat when the profile pings "
        "faster. The load generator used at most "
        f"{results.generator_share:.0%} of its core in any cell.",
        "",
        markdown_table(table),
        "",
        "Baselines, measured in the same run:",
        "",
        "| baseline | measured |",
        "| --- | --- |",
        *(f"| {name} | {value} |" for name, value in baseline_rows(results)),
        "",
    ]
    missed = misses(table)
    if missed:
        lines += ["Missed, and by how much:", "", *(f"- {line}" for line in missed), ""]
    return "\n".join(lines)


def write(path: Path, text: str) -> None:
    """Write ``text``, then the analysis section of the file it replaces (or of RESULTS.md)."""
    source = path if path.exists() else RESULTS
    analysis = ""
    if source.exists():
        previous = source.read_text()
        if ANALYSIS_HEADING in previous:
            analysis = previous[previous.index(ANALYSIS_HEADING) :]
    path.write_text(text + ("\n" + analysis if analysis else ""))

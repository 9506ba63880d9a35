"""The targets of BENCHMARKS.md (T1 to T12; there is no T9), checked against a run's results.

Each row carries its measured figure (median, and min-max over the repetitions), the
baseline it is compared with, the ratio, the target, and the checks that decide pass/fail.
"""

from __future__ import annotations

import collections
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .cells import ConnectResult, CreateResult, DeltaResult, LatencyResult
from .suite import MODES, Mode, Results, sustains

__all__ = ["Check", "Row", "baseline_rows", "markdown_table", "misses", "rows", "text_table"]


@dataclass(frozen=True)
class Check:
    what: str
    value: float
    limit: float
    at_most: bool  # True: value ≤ limit passes; False: value ≥ limit passes
    unit: str = ""

    @property
    def ok(self) -> bool:
        if math.isnan(self.value):
            return False
        return self.value <= self.limit if self.at_most else self.value >= self.limit

    def shortfall(self) -> str:
        value, limit = _num(self.value), _num(self.limit)
        if not self.at_most:
            share = self.value / self.limit if self.limit else 0
            return f"{self.what} {value}{self.unit} is {share:.0%} of the {limit}{self.unit} needed"
        if not self.limit:
            return f"{self.what} is {value}{self.unit}, not {limit}"
        ratio = self.value / self.limit
        over = f"{ratio - 1:.0%} over" if ratio < 2 else f"{ratio:.1f} x"
        return f"{self.what} {value}{self.unit} is {over} the {limit}{self.unit} allowed"


@dataclass(frozen=True)
class Row:
    target: str
    mode: str
    metric: str
    measured: str
    baseline: str
    ratio: str
    goal: str
    checks: tuple[Check, ...]
    untested: str = ""  # what this profile did not try

    @property
    def verdict(self) -> str:
        if not all(check.ok for check in self.checks):
            return "FAIL"
        return "partial" if self.untested else "pass"


def _num(value: float) -> str:
    if math.isnan(value):
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}".removesuffix(".0")
    return f"{value:.2f}".rstrip("0").rstrip(".") if value else "0"


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def _spread(values: Sequence[float], fmt: Callable[[float], str] = _num) -> str:
    """The median, with min-max when there were several repetitions."""
    if len(values) <= 1:
        return fmt(_median(values))
    return f"{fmt(_median(values))} ({fmt(min(values))}-{fmt(max(values))})"


def _latency(results: Sequence[DeltaResult | LatencyResult]) -> str:
    p50 = [r.p50 for r in results]
    p99 = [r.p99 for r in results]
    p999 = _median([r.p999 for r in results])
    worst = max(r.max for r in results)
    return f"p50 {_spread(p50)} · p99 {_spread(p99)} ms (p99.9 {_num(p999)}, max {_num(worst)})"


def rows(r: Results) -> list[Row]:
    return [
        _t1(r),
        _t2(r),
        _t3(r),
        _t4(r),
        _t5(r),
        _half_cpu(r, "T6", "memory", 1, 5),
        _half_cpu(r, "T7", "redis", 2, 10),
        _t8(r),
        *(_t10(r, mode) for mode in MODES),
        *(_t11(r, mode) for mode in MODES),
        *(_t12(r, mode) for mode in MODES),
    ]


def _t1(r: Results) -> Row:
    rps = [c.rps for c in r.creates["memory"]]
    b1 = [c.rps for c in r.b1]
    ratio = _median(rps) / _median(b1)
    cpu = _median([c.cpu_us for c in r.creates["memory"]])
    return Row(
        "T1",
        "memory",
        "create throughput",
        f"{_spread(rps)} req/s · {_num(cpu)} µs CPU/req",
        f"B1 {_spread(b1)} req/s · {_num(_median([c.cpu_us for c in r.b1]))} µs",
        f"{ratio:.2f} x B1",
        "≥ 0.8 x B1",
        (Check("throughput / B1", ratio, 0.8, at_most=False),),
    )


def _t2(r: Results) -> Row:
    cells = r.create_latency["memory"]
    lag = _median([c.lag_p99 for c in cells])
    return Row(
        "T2",
        "memory",
        "create latency, open loop at 50 % load",
        f"{_latency(cells)} at {_num(cells[0].rate)}/s",
        f"generator send lag p99 {_num(lag)} ms",
        "",
        "p50 ≤ 0.3 ms, p99 ≤ 2 ms",
        (
            Check("p50", _median([c.p50 for c in cells]), 0.3, at_most=True, unit=" ms"),
            Check("p99", _median([c.p99 for c in cells]), 2, at_most=True, unit=" ms"),
        ),
    )


def _t3(r: Results) -> Row:
    rps = [c.rps for c in r.creates["redis"]]
    memory = _median([c.rps for c in r.creates["memory"]])
    ratio = _median(rps) / memory
    p99 = [c.p99 for c in r.create_latency["redis"]]
    return Row(
        "T3",
        "redis",
        "create throughput; latency at 50 % load",
        f"{_spread(rps)} req/s · p99 {_spread(p99)} ms at 50 %",
        f"memory {_num(memory)} req/s",
        f"{ratio:.2f} x memory",
        "≥ 0.55 x memory; p99 ≤ 3 ms",
        (
            Check("throughput / memory", ratio, 0.55, at_most=False),
            Check("p99", _median(p99), 3, at_most=True, unit=" ms"),
        ),
    )


def _t4(r: Results) -> Row:
    cpu = [d.cpu_us for d in r.moderate["memory"]]
    b2 = _median([d.cpu_us for d in r.b2_paced])
    firehose = _median([f.cpu_us for f in r.b2])
    n0 = _median([d.cpu_us for d in r.n0_moderate["memory"]])
    return Row(
        "T4",
        "memory",
        f"server CPU per delivered delta at {_num(r.profile.moderate_rate)}/s",
        f"{_spread(cpu)} µs",
        f"B2 paced {_num(b2)} µs (firehose {_num(firehose)}) · N0 {_num(n0)} µs",
        f"{_median(cpu) / b2:.2f} x B2 · {_median(cpu) / n0:.2f} x N0",
        "≤ 1.5 x B2, ≤ 0.5 x N0",
        (
            Check("CPU / B2 paced", _median(cpu) / b2, 1.5, at_most=True),
            Check("CPU / N0", _median(cpu) / n0, 0.5, at_most=True),
        ),
    )


def _t5(r: Results) -> Row:
    cpu = [d.cpu_us for d in r.moderate["redis"]]
    n0 = _median([d.cpu_us for d in r.n0_moderate["redis"]])
    better = n0 / _median(cpu)
    return Row(
        "T5",
        "redis",
        f"server CPU per delivered delta at {_num(r.profile.moderate_rate)}/s",
        f"{_spread(cpu)} µs",
        f"N0 {_num(n0)} µs",
        f"{better:.1f} x better",
        "≥ 6 x better than N0",
        (Check("N0 / service", better, 6, at_most=False),),
    )


def _half_cpu(r: Results, target: str, mode: Mode, p50: float, p99: float) -> Row:
    cells = r.half_cpu[mode]
    share = _median([c.server_share for c in cells])
    return Row(
        target,
        mode,
        "model→client latency at 50 % CPU, throttle off",
        f"{_latency(cells)} at {_num(cells[0].rate)} deltas/s",
        f"server CPU {share:.0%}",
        "",
        f"p50 ≤ {p50} ms, p99 ≤ {p99} ms",
        (
            Check("p50", _median([c.p50 for c in cells]), p50, at_most=True, unit=" ms"),
            Check("p99", _median([c.p99 for c in cells]), p99, at_most=True, unit=" ms"),
        ),
    )


def _sustained(cells: Sequence[DeltaResult], capped: bool) -> tuple[float, str]:
    """The delta rate kept up with at p99 ≤ 50 ms (the median over the repetitions, a
    repetition that did not keep up counting 0), and how to show it; ``≥``: the search
    stopped while still keeping up."""
    kept = [c for c in cells if sustains(c)]
    if not kept:
        worst = cells[-1]
        return 0.0, f"none kept up (at {_num(worst.rate)}/s: p99 {_num(worst.p99)} ms)"
    value = _median([c.rate if sustains(c) else 0.0 for c in cells])
    p99 = _median([c.p99 for c in kept])
    share = _median([c.server_share for c in kept])
    times = f", {len(kept)} of {len(cells)} repetitions" if len(cells) > 1 else ""
    bound = "≥ " if capped and value else ""
    return value, (
        f"{bound}{_num(kept[0].rate)} deltas/s (p99 {_num(p99)} ms, CPU {share:.0%}{times})"
    )


def _t8(r: Results) -> Row:
    rate, shown = _sustained(r.sustained, r.sustained_capped)
    n0_rate, n0_shown = _sustained(r.n0_sustained, r.n0_sustained_capped)
    ratio = rate / n0_rate if n0_rate else math.nan
    checks = (
        Check("deltas/s", rate, 30_000, at_most=False),
        Check("ratio to N0", ratio, 2.5, at_most=False),
    )
    inconclusive = not all(c.ok for c in checks) and (r.sustained_capped or r.n0_sustained_capped)
    return Row(
        "T8",
        "memory",
        "sustained deltas/s on one core, p99 ≤ 50 ms",
        shown,
        f"N0 {n0_shown}",
        f"{ratio:.1f} x N0",
        "≥ 30,000 and ≥ 2.5 x N0",
        checks,
        untested="higher rates (the search stopped while keeping up)" if inconclusive else "",
    )


def _t10(r: Results, mode: Mode) -> Row:
    cells = r.idle[mode]
    scale = cells[0].heartbeat_s / 15  # pings cost in proportion to their frequency
    cpu = [c.core_pct_per_10k * scale for c in cells]
    opened = min(c.streams for c in cells)
    tried = r.profile.idle_streams >= 15_000
    scaled = f" (scaled from a {_num(cells[0].heartbeat_s)} s heartbeat)" if scale != 1 else ""
    refused = max(c.refused for c in cells)
    return Row(
        "T10",
        mode,
        "idle open streams",
        f"{opened:,} open" + (f" ({refused:,} refused)" if refused else "") + ": "
        f"{_spread([c.rss_kib_each for c in cells])} KiB, "
        f"{_spread([c.tasks_each for c in cells])} tasks each; "
        f"{_spread(cpu)} % of a core per 10,000{scaled}",
        "",
        "",
        "≤ 16 KiB, ≤ 1 task each; ≥ 15,000; ≤ 1 % per 10,000",
        (
            Check("RSS each", _median([c.rss_kib_each for c in cells]), 16, True, " KiB"),
            Check("tasks each", _median([c.tasks_each for c in cells]), 1, at_most=True),
            Check("CPU per 10,000", _median(cpu), 1, at_most=True, unit=" %"),
            *([Check("streams open", opened, 15_000, at_most=False)] if tried else []),
        ),
        untested="" if tried else f"15,000 streams, this profile opens {r.profile.idle_streams:,}",
    )


def _t11(r: Results, mode: Mode) -> Row:
    cells = r.connect[mode]
    worst = max(c.max for c in cells)
    return Row(
        "T11",
        mode,
        "time to first byte, 100 simultaneous connects",
        f"p50 {_spread([c.p50 for c in cells])} · p99 {_spread([c.p99 for c in cells])} ms "
        f"(max {_num(worst)})" + _refusals(cells),
        "",
        "",
        "p50 ≤ 2 ms, p99 ≤ 20 ms",
        (
            Check("p50", _median([c.p50 for c in cells]), 2, at_most=True, unit=" ms"),
            Check("p99", _median([c.p99 for c in cells]), 20, at_most=True, unit=" ms"),
            Check("refused", sum(sum(c.refused.values()) for c in cells), 0, at_most=True),
        ),
    )


def _refusals(cells: Sequence[ConnectResult]) -> str:
    statuses: collections.Counter[int] = collections.Counter()
    for cell in cells:
        statuses.update(cell.refused)
    if not statuses:
        return ""
    return "; refused: " + ", ".join(f"{n} x {status}" for status, n in sorted(statuses.items()))


def _t12(r: Results, mode: Mode) -> Row:
    cells = r.service_deltas[mode]
    churns = r.churn[mode]
    received = sum(c.received for c in cells) + sum(c.received for c in churns)
    lost = sum(c.lost for c in cells)
    duplicated = sum(c.duplicated for c in cells)
    reordered = sum(c.reordered for c in cells)
    churned = sum(c.faults for c in churns)
    failed = sum(c.failed for c in cells) + sum(c.failed for c in churns)
    tasks = max(c.tasks_after - c.tasks_before for c in churns)
    files = max(c.files_after - c.files_before for c in churns)
    last = churns[-1]
    return Row(
        "T12",
        mode,
        "correctness under load; churn",
        f"{received:,} deltas: {lost} lost, {duplicated} duplicated, {reordered} reordered, "
        f"{churned} faults across resumes, {failed} streams failed; after churn tasks "
        f"{last.tasks_before}→{last.tasks_after}, files {last.files_before}→{last.files_after}",
        "",
        "",
        "0 faults; tasks and files back to baseline",
        (
            Check("faults", lost + duplicated + reordered + churned, 0, at_most=True),
            Check("failed streams", failed, 0, at_most=True),
            Check("extra tasks", tasks, 0, at_most=True),
            Check("extra files", files, 0, at_most=True),
        ),
    )


def baseline_rows(r: Results) -> list[tuple[str, str]]:
    def creates(results: Sequence[CreateResult]) -> str:
        rps = [c.rps for c in results]
        cpu = [c.cpu_us for c in results]
        return f"{_spread(rps)} req/s · {_spread(cpu)} µs CPU/req"

    def per_delta(results: Sequence[DeltaResult]) -> str:
        cpu = [d.cpu_us for d in results]
        return f"{_spread(cpu)} µs CPU/delta · p99 {_spread([d.p99 for d in results])} ms"

    _, n0_sustained = _sustained(r.n0_sustained, r.n0_sustained_capped)
    return [
        ("B0 bare ASGI create", creates(r.b0)),
        ("B1 Starlette create", creates(r.b1)),
        (
            "B2 raw StreamingResponse firehose",
            f"{_spread([f.cpu_us for f in r.b2])} µs CPU/event · "
            f"{_spread([f.per_s for f in r.b2])} events/s",
        ),
        (f"B2 paced, {_num(r.profile.moderate_rate)} events/s", per_delta(r.b2_paced)),
        (
            f"N0 memory, {_num(r.profile.moderate_rate)} deltas/s",
            per_delta(r.n0_moderate["memory"]),
        ),
        (f"N0 Redis, {_num(r.profile.moderate_rate)} deltas/s", per_delta(r.n0_moderate["redis"])),
        ("N0 memory, sustained", n0_sustained),
    ]


def misses(table: Sequence[Row]) -> list[str]:
    """One line per failed check: which target, and by how much."""
    return [
        f"{row.target} {row.mode}: {check.shortfall()}"
        for row in table
        for check in row.checks
        if not check.ok
    ]


HEADER = ("target", "mode", "measured", "baseline", "ratio", "goal", "result")


def _cells(row: Row) -> tuple[str, ...]:
    return (
        f"{row.target} {row.metric}",
        row.mode,
        row.measured,
        row.baseline,
        row.ratio,
        row.goal,
        row.verdict,
    )


def text_table(table: Sequence[Row]) -> str:
    """For the terminal: one block per target, the figures on their own lines."""
    lines = []
    for row in table:
        lines.append(f"{row.verdict:<7} {row.target:<4} {row.mode:<6} {row.metric}")
        lines.append(f"{'':19}measured  {row.measured}")
        if row.baseline or row.ratio:
            lines.append(
                f"{'':19}baseline  {row.baseline}{'  →  ' if row.ratio else ''}{row.ratio}"
            )
        lines.append(f"{'':19}target    {row.goal}")
        if row.untested:
            lines.append(f"{'':19}not tried {row.untested}")
    return "\n".join(lines)


def markdown_table(table: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + " --- |" * len(HEADER)]
    for row in table:
        cells = list(_cells(row))
        if row.verdict != "pass":
            cells[-1] = f"**{row.verdict}**"
            if row.untested:
                cells[-1] += f" (not tried: {row.untested})"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)

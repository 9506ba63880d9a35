"""Prometheus metrics, one registry per app. Label values are bounded: no job or user ids."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from .models import TokenUsage

__all__ = ["Metrics"]


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.jobs_created = Counter("feature_planner_jobs_created", "Jobs created", registry=r)
        self.jobs_finished = Counter(
            "feature_planner_jobs_finished",
            "Runs of this process that ended, by outcome and error code",
            ["outcome", "code"],
            registry=r,
        )
        self.deltas = Counter(
            "feature_planner_deltas", "Delta events produced by this process's runs", registry=r
        )
        self.tokens = Counter(
            "feature_planner_tokens",
            "Model tokens used by this process's runs, by provider and kind",
            ["provider", "kind"],
            registry=r,
        )
        self.cost = Counter(
            "feature_planner_cost_usd",
            "What this process's runs cost in US dollars, where the provider reports it",
            ["provider"],
            registry=r,
        )
        self.refusals = Counter(
            "feature_planner_rate_limited",
            "Requests refused by a per-user limit",
            ["limit"],
            registry=r,
        )
        self.store_errors = Counter(
            "feature_planner_store_errors", "Requests answered 503: store unreachable", registry=r
        )
        self.job_duration = Histogram(
            "feature_planner_job_duration_seconds",
            "From the start of a run to its final event",
            buckets=(0.5, 1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 180),
            registry=r,
        )
        self.first_delta = Histogram(
            "feature_planner_first_delta_seconds",
            "From the start of a run to its first delta (the model's time to first token)",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30),
            registry=r,
        )
        self.open_streams = Gauge(
            "feature_planner_open_streams", "Streams open on this process", registry=r
        )
        self.history_writes = Counter(
            "feature_planner_history_writes", "Job history rows written to the database", registry=r
        )
        self.history_write_failures = Counter(
            "feature_planner_history_write_failures",
            "Job history writes that failed (each is retried, then given up)",
            registry=r,
        )
        self.history_writes_lost = Counter(
            "feature_planner_history_writes_lost",
            "Job history rows never written: retries exhausted, queue full, or shut down",
            ["reason"],
            registry=r,
        )
        self.subscribers_per_job = Histogram(
            "feature_planner_job_subscribers",
            "Streams open on the job in this process when one more opens (this one included)",
            buckets=(1, 2, 3, 5, 10, 20, 50),
            registry=r,
        )

    def watch_open_streams(self, count: Callable[[], int]) -> None:
        self.open_streams.set_function(lambda: float(count()))

    def watch_events_relayed(self, total: Callable[[], int]) -> None:
        """``total`` is read at each scrape: counting per write would cost every event."""
        self.registry.register(_CounterOf("feature_planner_events_relayed", _RELAYED, total))

    def job_finished(
        self,
        outcome: str,
        code: str,
        *,
        provider: str,
        duration_s: float,
        deltas: int,
        first_delta_s: float | None,
        usage: TokenUsage | None,
    ) -> None:
        self.jobs_finished.labels(outcome, code).inc()
        self.job_duration.observe(duration_s)
        self.deltas.inc(deltas)
        if first_delta_s is not None:
            self.first_delta.observe(first_delta_s)
        if usage is not None:
            for kind, value in (
                ("input", usage.input_tokens),
                ("output", usage.output_tokens),
                ("cache_read", usage.cache_read_input_tokens),
                ("cache_creation", usage.cache_creation_input_tokens),
            ):
                if value:
                    self.tokens.labels(provider, kind).inc(value)
            if usage.cost_usd:
                self.cost.labels(provider).inc(usage.cost_usd)


_RELAYED = "Job events (deltas, activity, the final event) written to clients' streams"


class _CounterOf(Collector):
    """A counter whose value a function gives when scraped."""

    def __init__(self, name: str, documentation: str, value: Callable[[], int]) -> None:
        self._name, self._documentation, self._value = name, documentation, value

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self._name, self._documentation, value=self._value())

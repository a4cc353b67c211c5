"""Prometheus metrics: the engine's families and a factory for the policies' own.

Names follow Prometheus conventions (``_total`` counters, ``_seconds``
histograms) under the ``distillguard_`` prefix. No label takes unbounded values
by default: per-account series exist only when ``metrics.per_account_labels``
is on, in a separate family so that turning it on changes no other series.

With several worker processes set ``PROMETHEUS_MULTIPROC_DIR`` (``serve`` does
it for you) and /metrics aggregates the workers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase

from gateway.metric_queue import flush_all, queued

PREFIX = "distillguard_"

# Gateway overhead is sub-millisecond when healthy; upstream time spans minutes for reasoning models.
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)

M = TypeVar("M", bound=MetricWrapperBase)


class Family(Generic[M]):
    """A metric family whose labelled children are cached.

    prometheus-client's ``labels()`` takes a lock and validates on every call;
    on the request path that is measurable, so children are looked up in a
    plain dict after the first use. A counter's or histogram's child comes
    behind a queue (``gateway.metric_queue``: its updates are applied in
    batches, before any read). Any other attribute is the family's own.
    """

    __slots__ = ("_children", "metric")

    def __init__(self, metric: M) -> None:
        self.metric = metric
        self._children: dict[tuple[str, ...], M] = {}

    def labels(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = queued(self.metric.labels(*values))
            self._children[values] = child
        return child

    def __getattr__(self, name: str) -> Any:
        return getattr(self.metric, name)


class GatewayMetrics:
    """All metric families. One instance per process; policies get it through their services."""

    _families: dict[str, Family[Any]] = {}

    def __init__(self, per_account_labels: bool = False) -> None:
        self.per_account_labels = per_account_labels
        self.requests = self.counter(
            "requests_total",
            "Requests answered, by route, status code and tier.",
            ("route", "status", "tier"),
        )
        self.account_requests = self.counter(
            "account_requests_total",
            "Requests by account (only with metrics.per_account_labels).",
            ("account",),
        )
        self.request_duration = self.histogram(
            "request_duration_seconds", "Total time per request.", ("route", "stream"), LATENCY_BUCKETS
        )
        self.upstream_duration = self.histogram(
            "upstream_duration_seconds",
            "Time waiting for the upstream (headers and body).",
            ("route", "stream"),
            LATENCY_BUCKETS,
        )
        self.overhead = self.histogram(
            "gateway_overhead_seconds",
            "Time spent in the gateway itself (auth, policies, parsing), excluding upstream waits.",
            ("route", "stream"),
            OVERHEAD_BUCKETS,
        )
        self.ttft = self.histogram(
            "time_to_first_token_seconds",
            "Time from request to the first streamed event.",
            ("route",),
            LATENCY_BUCKETS,
        )
        self.stream_events = self.counter(
            "stream_events_total", "Streamed events sent to clients.", ("route",)
        )
        self.tokens = self.counter(
            "tokens_total",
            "Tokens reported by the upstream, by type (input, output, reasoning).",
            ("route", "type", "tier"),
        )
        self.policy_actions = self.counter(
            "policy_actions_total",
            "Actions taken (or, in shadow mode, that would be taken) by policies.",
            ("policy", "action", "mode"),
        )
        self.policy_failures = self.counter(
            "policy_failures_total",
            "Policies that raised; enforce-mode failures fail closed.",
            ("policy", "phase", "mode"),
        )
        self.policy_duration = self.histogram(
            "policy_duration_seconds", "Time per policy phase call.", ("policy", "phase"), OVERHEAD_BUCKETS
        )
        self.upstream_errors = self.counter(
            "upstream_errors_total", "Upstream failures by upstream and kind.", ("upstream", "kind")
        )
        self.auth_failures = self.counter(
            "auth_failures_total", "Rejected credentials, by reason.", ("reason",)
        )
        self.config_reloads = self.counter(
            "config_reloads_total",
            "Config reload attempts by result (applied, rejected, unchanged).",
            ("result",),
        )
        self.config_info = self.gauge(
            "config_loaded_timestamp_seconds", "When the config now serving was loaded.", (), "max"
        )
        self.in_flight = self.gauge("in_flight_requests", "Requests being served.", ("route",), "livesum")

    def policy_action(self, policy: str, action: str, mode: str, count: int = 1) -> None:
        self.policy_actions.labels(policy, action, mode).inc(count)

    @classmethod
    def _get_or_create(cls, kind: type[M], name: str, *args: Any, **kwargs: Any) -> Family[M]:
        full = PREFIX + name
        existing = cls._families.get(full)
        if existing is not None:
            if not isinstance(existing.metric, kind):
                raise ValueError(f"metric {full} already exists as {type(existing.metric).__name__}")
            return existing
        family = Family(kind(full, *args, **kwargs))
        cls._families[full] = family
        return family

    def counter(self, name: str, doc: str, labels: Sequence[str] = ()) -> Family[Counter]:
        """A counter named ``distillguard_<name>``; the same object on every call (safe across reloads)."""
        return self._get_or_create(Counter, name.removesuffix("_total"), doc, tuple(labels))

    def histogram(
        self, name: str, doc: str, labels: Sequence[str] = (), buckets: Sequence[float] = LATENCY_BUCKETS
    ) -> Family[Histogram]:
        return self._get_or_create(Histogram, name, doc, tuple(labels), buckets=tuple(buckets))

    def gauge(
        self, name: str, doc: str, labels: Sequence[str] = (), multiprocess_mode: str = "livesum"
    ) -> Family[Gauge]:
        return self._get_or_create(Gauge, name, doc, tuple(labels), multiprocess_mode=multiprocess_mode)


def render_metrics() -> tuple[bytes, str]:
    """The exposition text of this process, or of all workers in multiprocess mode."""
    flush_all()  # this worker's queued updates; the others' are at most a second behind
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST

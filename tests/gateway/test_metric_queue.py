"""Queued metric updates: every update counted once, in the bucket prometheus-client would use."""

from __future__ import annotations

import asyncio
import math
import threading

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

from gateway import metric_queue
from gateway.metric_queue import QueuedCounter, QueuedHistogram, flush_all, periodic_flush
from gateway.metrics import OVERHEAD_BUCKETS, GatewayMetrics


def _histogram(name: str) -> Histogram:
    return Histogram(name, "test", ("x",), buckets=OVERHEAD_BUCKETS, registry=CollectorRegistry())


def _samples(metric: Histogram | Counter) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in metric.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_a_queued_histogram_matches_direct_observations_bucket_for_bucket() -> None:
    # Bounds themselves (``amount <= bound`` puts them in their own bucket), values between,
    # beyond the last finite bound, zero, a negative and NaN (in the sum, in no bucket).
    values = [*OVERHEAD_BUCKETS, 0.0, -1.0, 0.00011, 0.0003, 0.7, 2.0, 1e9, math.nan]
    direct, batched = _histogram("direct_seconds"), _histogram("batched_seconds")
    child = QueuedHistogram(batched.labels("a"))
    for value in values:
        direct.labels("a").observe(value)
        child.observe(value)
    assert _samples(batched) != _samples(direct)  # nothing applied yet: the updates wait
    child.flush()
    got = {(n.replace("batched", "direct"), labels): v for (n, labels), v in _samples(batched).items()}
    want = _samples(direct)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == value or (math.isnan(value) and math.isnan(got[key])), key


def test_a_counter_refuses_a_negative_amount_at_once() -> None:
    counter = Counter("neg_total", "test", ("x",), registry=CollectorRegistry())
    child = QueuedCounter(counter.labels("a"))
    with pytest.raises(ValueError):
        child.inc(-1)
    child.inc(2.5)
    child.inc()
    assert child._value.get() == 3.5  # any attribute of the child reads it after a flush


def test_updates_from_many_threads_while_others_flush_are_counted_exactly_once() -> None:
    counter = Counter("threads_total", "test", ("x",), registry=CollectorRegistry())
    histogram = _histogram("threads_seconds")
    queued_counter = QueuedCounter(counter.labels("a"))
    queued_histogram = QueuedHistogram(histogram.labels("a"))
    writers, each = 4, 20_000
    done = threading.Event()

    def write() -> None:
        for index in range(each):
            queued_counter.inc()
            queued_histogram.observe(0.0002 if index % 2 else 0.002)

    def flush() -> None:
        while not done.is_set():
            flush_all()

    flushers = [threading.Thread(target=flush) for _ in range(2)]
    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in flushers + threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    for thread in flushers:
        thread.join()
    flush_all()
    samples = _samples(histogram)
    assert counter.labels("a")._value.get() == writers * each
    assert samples[("threads_seconds_count", (("x", "a"),))] == writers * each
    assert samples[("threads_seconds_bucket", (("le", "0.00025"), ("x", "a")))] == writers * each / 2
    assert samples[("threads_seconds_sum", (("x", "a"),))] == pytest.approx(writers * each * 0.0011)


def test_a_queue_never_grows_past_its_bound_without_a_flusher() -> None:
    histogram = _histogram("bound_seconds")
    child = QueuedHistogram(histogram.labels("a"))
    for _ in range(metric_queue.MAX_QUEUED * 3 + 5):
        child.observe(0.001)
        assert len(child._queue) < metric_queue.MAX_QUEUED
    assert histogram.labels("a")._sum.get() == pytest.approx(0.001 * metric_queue.MAX_QUEUED * 3)


def test_the_default_registry_sees_every_update_of_a_gateway_family() -> None:
    metrics = GatewayMetrics()
    child = metrics.policy_duration.labels("queued-test", "request")
    assert isinstance(child, QueuedHistogram)
    before = REGISTRY.get_sample_value(
        "distillguard_policy_duration_seconds_count", {"policy": "queued-test", "phase": "request"}
    )
    child.observe(0.0001)
    child.observe(0.3)
    after = REGISTRY.get_sample_value(
        "distillguard_policy_duration_seconds_count", {"policy": "queued-test", "phase": "request"}
    )
    assert after == (before or 0) + 2


async def test_the_periodic_flush_applies_updates_and_flushes_once_more_when_stopped() -> None:
    counter = Counter("periodic_total", "test", ("x",), registry=CollectorRegistry())
    child = QueuedCounter(counter.labels("a"))
    task = asyncio.create_task(periodic_flush(0.01))
    child.inc(3)
    for _ in range(200):
        await asyncio.sleep(0.01)
        if counter.labels("a")._value.get() == 3:
            break
    assert counter.labels("a")._value.get() == 3
    child.inc(4)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert counter.labels("a")._value.get() == 7

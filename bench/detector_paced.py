"""The detector's paced run (``python -m bench.detector --paced RATE``): requests at a steady rate
through the core's background worker, the inline cost of each one timed as the request path sees it
(caches cold after an idle gap), then the same requests back to back, and the collections that
started on the request path."""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import time
from collections.abc import Callable

from bench.detector import build_exchanges, quantiles, resident_mb
from bench.processes import cpu_seconds
from gateway.plugins.base import Exchange
from policies.detector.config import DetectorConfig
from policies.detector.core import DetectorCore
from policies.detector.request import observe


async def _paced_run(
    exchanges: list[Exchange], core: DetectorCore, settings: DetectorConfig, rate: float
) -> tuple[list[float], list[float]]:
    """Requests at ``rate`` per second through the core's own background worker (as in a gateway:
    the analysis and the semantic rounds run beside the request path); each one's inline cost."""
    cpu_inline, wall_inline = [], []
    start = time.perf_counter()
    for number, exchange in enumerate(exchanges):
        delay = start + number / rate - time.perf_counter()
        await asyncio.sleep(max(0.0, delay))  # also lets the background run when behind schedule
        _ = exchange.request  # the engine builds the view when it admits a request, before any policy
        _INLINE[0] = True
        wall, cpu = time.perf_counter(), time.thread_time()
        observation = observe(exchange, settings)
        cpu_inline.append(time.thread_time() - cpu)
        wall_inline.append(time.perf_counter() - wall)
        _INLINE[0] = False
        observation.inline_seconds = cpu_inline[-1]
        core.submit(observation)
    await core.drain()
    return cpu_inline, wall_inline


_INLINE = [False]  # whether the request path is being timed (for the GC count below)
_GC_INLINE = [0]  # garbage collections that started while it was


def _count_inline_gc(phase: str, info: dict[str, int]) -> None:
    if phase == "start" and _INLINE[0]:
        _GC_INLINE[0] += 1


def _hot_inline(exchanges: list[Exchange], settings: DetectorConfig) -> list[float]:
    """The request path's CPU time for the same requests back to back (warm caches): the paced
    figures above it are the same code run once every 1/RATE s, after the caches went cold."""
    out = []
    for exchange in exchanges:
        exchange._view = None  # a fresh request view, as the paced run had (built before the policies)
        _ = exchange.request
        cpu = time.thread_time()
        observe(exchange, settings)
        out.append(time.thread_time() - cpu)
    return out


def bench_paced(
    requests: int, seed: int, rate: float, new_core: Callable[[], tuple[DetectorCore, DetectorConfig]]
) -> None:
    """Inline cost with the background analysis running concurrently, at a steady request rate."""
    exchanges = build_exchanges(requests, seed)
    core, settings = new_core()
    semantic = core.analysis.semantic
    embedder_pid = getattr(semantic._embedder, "pid", None)
    gc.collect()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    before = usage.ru_utime + usage.ru_stime
    embedder_before = cpu_seconds(embedder_pid) if embedder_pid else 0.0
    started = time.perf_counter()
    gc.callbacks.append(_count_inline_gc)
    cpu_inline, wall_inline = asyncio.run(_paced_run(exchanges, core, settings, rate))
    gc.callbacks.remove(_count_inline_gc)
    elapsed = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    this_cpu = usage.ru_utime + usage.ru_stime - before
    embedder_cpu = (cpu_seconds(embedder_pid) - embedder_before) if embedder_pid else 0.0
    lost = getattr(semantic, "lost", 0)  # batches the embedding process failed to serve
    print(
        f"paced: {requests} requests at {rate:.0f}/s through the core's background worker "
        f"({elapsed:.1f} s; semantic signals {'on' if semantic.active else 'off'}, "
        f"{semantic.embedded} prompts embedded, {lost} lost, {semantic.skipped} skipped)"
    )
    for name, values in (("inline (CPU time)", cpu_inline), ("inline (wall)", wall_inline)):
        q = quantiles(values)
        print(
            f"  {name:<22} p50 {q['p50'] * 1e6:7.1f} µs  p90 {q['p90'] * 1e6:7.1f}  "
            f"p99 {q['p99'] * 1e6:7.1f}  max {q['max'] * 1e6:8.1f}"
        )
    q = quantiles(_hot_inline(exchanges, settings))
    print(
        f"  {'inline, back to back':<22} p50 {q['p50'] * 1e6:7.1f} µs  p90 {q['p90'] * 1e6:7.1f}  "
        f"p99 {q['p99'] * 1e6:7.1f}  max {q['max'] * 1e6:8.1f}  (CPU time, warm caches; "
        f"{_GC_INLINE[0]} garbage collections started on the paced request path)"
    )
    print(
        f"  CPU per request: this process {this_cpu / requests * 1e3:.3f} ms (request path, analysis and, "
        f"in-process, embeddings), the embedding process {embedder_cpu / requests * 1e3:.3f} ms; "
        f"resident memory: this process {resident_mb():.0f} MB"
        + (f", the embedding process {semantic._embedder.rss / 2**20:.0f} MB" if embedder_pid else "")
    )
    print(f"  machine load average while measuring: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

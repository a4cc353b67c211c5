"""What the quota decision adds per request, memory and Redis backends, at concurrency 64.

    python -m bench.quota [--requests 2000] [--concurrency 64] [--rounds 3]

Starts a Redis, the mock upstream and two gateway processes (one per
backend), each with a baseline tier (no policies) and a quota tier (requests,
tokens per minute and per day, concurrency, reasoning and distinct-prompt
budgets: six windows in one decision, limits high enough that nothing is
refused). One account hammers each variant from one client pool at the given
concurrency, in interleaved rounds so drift hits every variant alike.
Reported, each as the median over rounds, and for the quota tier as a ratio
to the baseline tier of the same gateway:

* client latency p50 / p99 and the gateway's own overhead p50 (its
  ``x-distillguard-overhead-ms`` header: time not spent waiting upstream);
* CPU time per request of the gateway process (and of redis-server), read from
  /proc: unlike wall time it does not move when other processes load the box;
* the time per request of the quota's request and after-response phases, as
  the gateway measures them (``distillguard_policy_duration_seconds``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.processes import cpu_seconds
from tests.support import (
    ROOT,
    TEST_KEYS,
    RedisProcess,
    base_config,
    free_port,
    metric_value,
    spawn_gateway,
    wait_for,
)

HIGH = 10**11
QUOTA = {
    "requests_per_minute": HIGH,
    "tokens_per_minute": HIGH,
    "tokens_per_day": HIGH,
    "max_concurrent": 10**6,
    "reasoning_tokens_per_day": HIGH,
    "distinct_prompts_per_day": 1000,
}
BODY = {
    "model": "mock-small",
    "messages": [{"role": "user", "content": "Tell me about caches."}],
    "max_tokens": 8,
}


def _config(upstream: str, state: dict[str, Any]) -> dict[str, Any]:
    config = base_config(upstream, state=state)
    config["tiers"]["pro"]["policies"] = [{"name": "quota", "config": QUOTA}]  # free: the baseline
    return config


def _phase_seconds(url: str, phase: str) -> tuple[float, float]:
    text = httpx.get(f"{url}/metrics").text
    name = "distillguard_policy_duration_seconds"
    labels = {"policy": "quota", "phase": phase}
    return metric_value(text, f"{name}_sum", **labels), metric_value(text, f"{name}_count", **labels)


async def _load(url: str, key: str, requests: int, concurrency: int) -> tuple[list[float], list[float]]:
    """Latencies and gateway overheads (seconds) of ``requests`` requests, ``concurrency`` at a time."""
    latencies: list[float] = []
    overheads: list[float] = []
    remaining = requests
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                response = await client.post(
                    f"{url}/v1/chat/completions", json=BODY, headers={"authorization": f"Bearer {key}"}
                )
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"unexpected {response.status_code}: {response.text[:200]}")
                overheads.append(float(response.headers["x-distillguard-overhead-ms"]) / 1000)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, overheads


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


Variant = tuple[str, str]


def _measure(url: str, key: str, pids: dict[str, int], args: argparse.Namespace) -> dict[str, float]:
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    phases_before = {phase: _phase_seconds(url, phase) for phase in ("request", "after_response")}
    latencies, overheads = asyncio.run(_load(url, key, args.requests, args.concurrency))
    stats = {
        "p50": _pct(latencies, 0.5),
        "p99": _pct(latencies, 0.99),
        "overhead": _pct(overheads, 0.5),
    }
    for name, pid in pids.items():
        stats[f"cpu_{name}"] = (cpu_seconds(pid) - cpu_before[name]) / args.requests
    for phase, (total, count) in phases_before.items():
        after_total, after_count = _phase_seconds(url, phase)
        calls = after_count - count
        stats[phase] = (after_total - total) / calls if calls else 0.0
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per variant per round")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    redis_server = RedisProcess().start()
    mock_port = free_port()
    mock = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "mock-upstream", "--port", str(mock_port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    gateways: dict[str, subprocess.Popen[bytes]] = {}
    try:
        upstream = f"http://127.0.0.1:{mock_port}"
        wait_for(lambda: httpx.get(f"{upstream}/v1/models").status_code == 200, timeout=20)
        directory = Path(tempfile.mkdtemp(prefix="dg-bench-quota-"))
        urls: dict[str, str] = {}
        for backend, state in (
            ("memory", {"backend": "memory"}),
            ("redis", {"backend": "redis", "url": redis_server.url}),
        ):
            path = directory / f"{backend}.yaml"
            path.write_text(yaml.safe_dump(_config(upstream, state)))
            port = free_port()
            gateways[backend] = spawn_gateway(path, port)
            urls[backend] = f"http://127.0.0.1:{port}"
        assert redis_server.process is not None
        variants: list[Variant] = [(backend, tier) for backend in urls for tier in ("free", "pro")]
        for backend, tier in variants:  # warm-up: connections, script loading, caches
            asyncio.run(_load(urls[backend], TEST_KEYS[tier], 300, args.concurrency))
        rounds: dict[Variant, list[dict[str, float]]] = {v: [] for v in variants}
        for number in range(args.rounds):
            for backend, tier in variants if number % 2 == 0 else list(reversed(variants)):
                pids = {"gateway": gateways[backend].pid}
                if backend == "redis":
                    pids["redis"] = redis_server.process.pid
                rounds[(backend, tier)].append(_measure(urls[backend], TEST_KEYS[tier], pids, args))
        _report(rounds, args)
    finally:
        for process in gateways.values():
            process.terminate()
        for process in gateways.values():
            process.wait(timeout=20)
        mock.terminate()
        mock.wait(timeout=20)
        redis_server.stop()
    return 0


def _report(rounds: dict[Variant, list[dict[str, float]]], args: argparse.Namespace) -> None:
    def med(variant: Variant, key: str) -> float:
        return statistics.median(r.get(key, 0.0) for r in rounds[variant]) * 1000  # ms

    print(
        f"quota decision cost: {args.rounds} round(s) x {args.requests} requests per variant, "
        f"concurrency {args.concurrency}, one account, {os.cpu_count()} CPUs shared by client, mock, "
        f"Redis and gateway; load average before: {os.getloadavg()[0]:.1f}"
    )
    header = [
        "variant",
        "p50 ms",
        "p99 ms",
        "ovh p50",
        "gw CPU/req",
        "redis CPU/req",
        "quota req",
        "quota after",
    ]
    print(f"{header[0]:<20}" + "".join(f"{h:>14}" for h in header[1:]))
    for backend in ("memory", "redis"):
        base, quota = (backend, "free"), (backend, "pro")
        for variant, name in ((base, f"{backend}: no quota"), (quota, f"{backend}: quota")):
            cells = [
                f"{med(variant, 'p50'):.2f}",
                f"{med(variant, 'p99'):.2f}",
                f"{med(variant, 'overhead'):.3f}",
                f"{med(variant, 'cpu_gateway'):.3f}",
                f"{med(variant, 'cpu_redis'):.3f}" if backend == "redis" else "-",
                f"{med(variant, 'request') * 1000:.0f} us" if variant == quota else "-",
                f"{med(variant, 'after_response') * 1000:.0f} us" if variant == quota else "-",
            ]
            print(f"{name:<20}" + "".join(f"{c:>14}" for c in cells))
        ratios = {key: med(quota, key) / med(base, key) for key in ("p50", "p99", "overhead", "cpu_gateway")}
        print(
            f"  {backend} quota / no quota: latency p50 x{ratios['p50']:.2f}, p99 x{ratios['p99']:.2f}, "
            f"gateway overhead p50 x{ratios['overhead']:.2f}, "
            f"gateway CPU per request x{ratios['cpu_gateway']:.2f} "
            f"(+{med(quota, 'cpu_gateway') - med(base, 'cpu_gateway'):.3f} ms)"
        )


if __name__ == "__main__":
    sys.exit(main())

"""Three gateway processes sharing one Redis, hammered by one client pool with one account's key.

Limits hold exactly across replicas (no limit x replicas), token budgets are
not exceeded by more than one reservation, concurrency is global, and when
Redis dies every request is still answered per the tier's mode, then service
recovers when Redis returns.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis
import yaml

from tests.support import (
    MockHandle,
    RedisProcess,
    base_config,
    free_port,
    metric_value,
    ops_url,
    spawn_gateway,
)

RPM = 12  # one request every 5 s after the burst: a burst-only test window is long enough to be exact
TOKENS_PER_DAY = 5000
MAX_CONCURRENT = 3


@dataclass
class Cluster:
    redis: RedisProcess
    urls: list[str]
    ports: list[int]
    processes: list[subprocess.Popen[bytes]]

    def flush(self) -> None:
        client = redis.Redis(port=self.redis.port)
        client.flushall()
        client.close()

    def metrics(self, name: str, **labels: str) -> float:
        return sum(
            metric_value(httpx.get(f"{ops_url(port)}/metrics").text, name, **labels) for port in self.ports
        )


@pytest.fixture(scope="module")
def cluster(mock_upstream: MockHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    server = RedisProcess().start()
    config = base_config(
        mock_upstream.url, state={"backend": "redis", "url": server.url, "timeout_seconds": 0.3}
    )
    tiers = config["tiers"]
    tiers["free"]["policies"] = [
        {"name": "quota", "config": {"requests_per_minute": RPM, "on_backend_error": "fail_closed"}}
    ]
    tiers["pro"]["policies"] = [
        {"name": "quota", "config": {"tokens_per_day": TOKENS_PER_DAY, "on_backend_error": "fail_open"}}
    ]
    tiers["trusted"]["policies"] = [{"name": "quota", "config": {"max_concurrent": MAX_CONCURRENT}}]
    path = tmp_path_factory.mktemp("replicas") / "policy.yaml"
    path.write_text(yaml.safe_dump(config))
    ports = [free_port() for _ in range(3)]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            processes.append(spawn_gateway(path, port))
        yield Cluster(server, [f"http://127.0.0.1:{port}" for port in ports], ports, processes)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)
        server.stop()


async def _hammer(
    cluster: Cluster,
    tier: str,
    count: int,
    concurrency: int,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> list[httpx.Response]:
    """``count`` requests from one pool, spread round-robin over the replicas like a load balancer."""
    key = {"free": "dg-test-free-key", "pro": "dg-test-pro-key", "trusted": "dg-test-trusted-key"}[tier]
    targets = itertools.cycle(cluster.urls)
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one(url: str) -> httpx.Response:
            async with gate:
                return await client.post(
                    f"{url}/v1/chat/completions",
                    json=body,
                    headers={"authorization": f"Bearer {key}", **(headers or {})},
                )

        return await asyncio.gather(*(one(next(targets)) for _ in range(count)))


def _chat(content: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": "mock-small", "messages": [{"role": "user", "content": content}], **extra}


async def test_admitted_requests_equal_the_limit_exactly(cluster: Cluster) -> None:
    cluster.flush()
    started = time.monotonic()
    responses = await _hammer(cluster, "free", 90, 24, _chat(max_tokens=5))
    elapsed = time.monotonic() - started
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) == {200, 429}, statuses
    # GCRA: the burst of RPM, plus one more per 5 s that passed since the first admission.
    assert RPM <= statuses[200] <= RPM + int(elapsed // 5), (statuses, elapsed)
    if elapsed < 4.9:
        assert statuses[200] == RPM
    # All three replicas decided (30 requests each); per-replica counters would have admitted 3 x RPM.
    answered_by = Counter(r.request.url.port for r in responses)
    assert sorted(answered_by.values()) == [30, 30, 30]
    rejected = next(r for r in responses if r.status_code == 429)
    assert (
        rejected.json()["error"]["type"] == "rate_limit_error" and int(rejected.headers["retry-after"]) >= 1
    )


async def test_token_budget_is_not_exceeded_by_more_than_one_reservation(cluster: Cluster) -> None:
    cluster.flush()
    body = _chat("Tell me about caches.", max_tokens=400)
    reservation = 400 + 8 + 4  # max_tokens + ceil(25 bytes / 4 * 1.25) + 4 per message
    consumed = 0
    rounds = 0
    while rounds < 10:
        rounds += 1
        responses = await _hammer(cluster, "pro", 48, 16, body)
        statuses = Counter(r.status_code for r in responses)
        assert set(statuses) <= {200, 429}, statuses
        consumed += sum(r.json()["usage"]["total_tokens"] for r in responses if r.status_code == 200)
        if statuses[200] == 0:
            break  # every reservation settled and no room is left for one more
    assert statuses[200] == 0, "the budget was never exhausted"
    # The budget refills 5000 tokens a day (0.06 a second): negligible over this test.
    assert TOKENS_PER_DAY - reservation <= consumed <= TOKENS_PER_DAY + reservation, consumed
    refused = responses[0].json()["error"]
    assert refused["code"] == "budget_exceeded" and "tokens per day" in refused["message"]


async def test_concurrency_is_global_across_replicas(cluster: Cluster) -> None:
    cluster.flush()
    slow = {"x-mock-first-byte-ms": "2500"}  # all 12 arrive before the first admitted one ends
    responses = await _hammer(cluster, "trusted", 12, 12, _chat(max_tokens=5), slow)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: MAX_CONCURRENT, 429: 12 - MAX_CONCURRENT}, statuses
    # Every slot was released: the next round is admitted the same way.
    again = Counter(
        r.status_code for r in await _hammer(cluster, "trusted", 12, 12, _chat(max_tokens=5), slow)
    )
    assert again[200] == MAX_CONCURRENT


async def test_redis_killed_and_restarted(cluster: Cluster) -> None:
    cluster.flush()
    body = _chat(max_tokens=5)
    assert {r.status_code for r in await _hammer(cluster, "free", 3, 3, body)} == {200}
    open_errors = cluster.metrics(
        "distillguard_quota_backend_errors_total", backend="redis", mode="fail_open"
    )
    cluster.redis.stop()
    try:
        started = time.monotonic()
        closed = await _hammer(cluster, "free", 30, 10, body)
        opened = await _hammer(cluster, "pro", 30, 10, body)
        assert time.monotonic() - started < 20, "requests must be answered promptly while Redis is down"
        assert {r.status_code for r in closed} == {503}
        error = closed[0].json()["error"]
        assert error["type"] == "service_unavailable_error" and error["code"] == "quota_backend_unavailable"
        assert closed[0].headers["retry-after"] == "1"
        assert {r.status_code for r in opened} == {200}
        after = cluster.metrics("distillguard_quota_backend_errors_total", backend="redis", mode="fail_open")
        assert after - open_errors == 30
    finally:
        cluster.redis.start()  # the same port: the gateways' pools reconnect by themselves
    deadline = time.monotonic() + 15
    while True:
        statuses = {r.status_code for r in await _hammer(cluster, "free", 3, 3, body)}
        if statuses == {200}:
            break
        assert statuses <= {200, 503} and time.monotonic() < deadline, statuses
        await asyncio.sleep(0.2)
    # Quotas hold again after recovery.
    cluster.flush()
    recovered = Counter(r.status_code for r in await _hammer(cluster, "free", 30, 10, body))
    assert recovered[200] == RPM

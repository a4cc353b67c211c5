"""Admin pins live in the state store: every worker and replica applies a pin within a second."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from gateway.pins import SharedPins
from gateway.risk import RiskBoard
from gateway.state.base import StateStore, StoreUnavailableError
from gateway.state.memory import MemoryStore
from gateway.state.redis import RedisStore
from tests.support import MockHandle, RedisProcess, base_config, free_port, ops_url, spawn_gateway

TOKEN = "pins-admin-token"
CHAT = {"model": "mock-small", "messages": [{"role": "user", "content": "hi"}]}


async def _share(store: StateStore) -> None:
    one, two = RiskBoard(), RiskBoard()
    pins_one, pins_two = SharedPins(one, lambda: store), SharedPins(two, lambda: store)
    await pins_two.refresh()
    await pins_one.set("acct", "critical", reason="ticket 7")
    assert one.pinned("acct") == "critical"
    assert await pins_two.refresh() and two.level("acct") == "critical"
    assert not await pins_two.refresh(), "nothing is read again until the version moves"
    await pins_two.set("other", "high", reason="x")
    await pins_one.set("acct", None, reason="cleared")
    await pins_two.refresh()
    await pins_one.refresh()
    assert two.pinned("acct") is None and one.pinned("acct") is None
    assert one.pinned("other") == two.pinned("other") == "high"
    # A process started later picks up every pin in force.
    late = RiskBoard()
    await SharedPins(late, lambda: store).refresh()
    assert late.pins() == {"other": "high"}


async def test_pins_are_shared_through_the_memory_store() -> None:
    await _share(MemoryStore("pins"))


async def test_pins_are_shared_through_redis(redis_server: RedisProcess) -> None:
    store = RedisStore(redis_server.url, "t-pins")
    await store.client.flushdb()
    try:
        await _share(store)
    finally:
        await store.close()


async def test_a_pin_the_store_cannot_take_is_not_set_anywhere() -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", "down", timeout_seconds=0.2)
    board = RiskBoard()
    try:
        with pytest.raises(StoreUnavailableError):
            await SharedPins(board, lambda: store).set("acct", "critical", reason="x")
    finally:
        await store.close()
    assert board.pinned("acct") is None


def _statuses(port: int, key: str, count: int) -> list[int]:
    statuses = []
    for _ in range(count):
        # A new connection per request, so the kernel spreads them over both workers.
        with httpx.Client(headers={"authorization": f"Bearer {key}", "connection": "close"}) as client:
            statuses.append(
                client.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=CHAT).status_code
            )
    return statuses


def test_a_pin_holds_on_every_worker(
    mock_upstream: MockHandle, redis_server: RedisProcess, tmp_path: Path
) -> None:
    redis.Redis(port=redis_server.port).flushall()
    config: dict[str, Any] = base_config(
        mock_upstream.url,
        state={"backend": "redis", "url": redis_server.url, "key_prefix": "pinsworkers"},
        admin={"token_env": "DG_PINS_ADMIN_TOKEN"},
        risk_levels={"critical": {"block": True}},
    )
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    # A drain shorter than the teardown's wait: with the default 30 s the two raced when a worker still held
    # a connection at SIGTERM.
    process = spawn_gateway(
        path, port, "--workers", "2", "--drain-timeout", "5", env={"DG_PINS_ADMIN_TOKEN": TOKEN}
    )
    admin = {"authorization": f"Bearer {TOKEN}"}
    try:
        assert set(_statuses(port, "dg-test-free-key", 6)) == {200}
        pinned = httpx.put(
            f"{ops_url(port)}/admin/accounts/free/level",
            json={"level": "critical", "reason": "t"},
            headers=admin,
        )
        assert pinned.status_code == 200, pinned.text
        time.sleep(1.0)  # the promise: in force on every worker within a second
        assert set(_statuses(port, "dg-test-free-key", 20)) == {403}
        assert set(_statuses(port, "dg-test-pro-key", 4)) == {200}, "only the pinned account"
        for _ in range(6):
            with httpx.Client(headers={**admin, "connection": "close"}) as client:
                seen = client.get(f"{ops_url(port)}/admin/accounts/free").json()
            assert seen["pinned"] == "critical" and seen["risk_level"] == "critical"
        cleared = httpx.put(f"{ops_url(port)}/admin/accounts/free/level", json={"level": None}, headers=admin)
        assert cleared.status_code == 200
        time.sleep(1.0)
        assert set(_statuses(port, "dg-test-free-key", 20)) == {200}
    finally:
        process.terminate()
        process.wait(timeout=30)


async def test_the_poller_stops_whenever_the_stop_lands(redis_server: RedisProcess) -> None:
    """Regression: a cancel that met a completed Redis read (wait_for on Python 3.11) was swallowed
    and the poller went on for ever, holding a worker past SIGTERM (CI, test_a_pin_holds_on_every_worker)."""
    store = RedisStore(redis_server.url, "t-pins-stop")
    try:
        for attempt in range(40):
            pins = SharedPins(RiskBoard(), lambda: store, interval=0.0005)
            pins.start()
            await asyncio.sleep((attempt % 30) * 0.0001)
            await asyncio.wait_for(asyncio.shield(pins.stop()), 3)
            assert pins._task is None
    finally:
        await store.close()

"""Sharing through the state store: two detector cores on one store (memory twin and real Redis)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from gateway.pins import SharedPins
from gateway.state.base import StoreUnavailableError
from gateway.state.memory import MemoryStore
from gateway.state.redis import RedisStore
from policies.detector.core import core_for
from policies.detector.store_scripts import APPEND_CAPPED, GROUP_SYNC, LEVEL_SYNC, READ_LIST
from policies.detector.sync import SyncState, push_lists, sync_once
from tests.policies.detector.helpers import chat, cover_prompt, harvest_prompt, send
from tests.policy_harness import PolicyHarness
from tests.support import RedisProcess

# The test runs the sync rounds itself (sync_once): the cores' own rounds are set far apart, or one
# could run between the traffic and the "no cluster yet" check on a loaded machine. Each replica
# analyses the accounts that reach it (owners off): the index must meet across replicas as it does
# for accounts on different owners (test_routing.py).
CONFIG = {
    "shared": {"sync": "on", "owners": False, "sync_interval_seconds": 60, "account_sync_seconds": 60},
    "cluster": {"min_accounts": 6},
}


async def _replicas(store: Any) -> tuple[PolicyHarness, PolicyHarness]:
    one = PolicyHarness([("detector", CONFIG)], store=store)
    two = PolicyHarness([("detector", CONFIG)], store=store)
    await one.start()
    await two.start()
    for harness in (one, two):
        # Nor the early rounds the analysis wakes (test_door_share.py tests those): the template
        # must reach the other replica in this test's rounds only.
        core_for(harness.services).wake_sync = lambda: None  # type: ignore[method-assign]
    return one, two


async def _exercise(store: Any) -> None:
    one, two = await _replicas(store)
    rng = random.Random(9)
    # Each replica sees 4 of the 8 accounts using the campaign template: below min_accounts alone.
    for _ in range(3):
        for number in range(8):
            harness = one if number % 2 else two
            await send(harness, f"acct-{number}", chat(harvest_prompt(rng)), ip=f"192.0.2.{number}")
            await send(harness, f"user-{number}", chat(cover_prompt(rng)), ip=f"198.51.100.{number}")
    core_one, core_two = core_for(one.services), core_for(two.services)
    await core_one.drain()
    await core_two.drain()
    assert not core_one.clusters() and not core_two.clusters()
    state_one, state_two = SyncState(), SyncState()
    for _ in range(2):
        await sync_once(core_one, state_one)
        await sync_once(core_two, state_two)
    await core_one.drain()
    await core_two.drain()
    assert core_one.clusters() and core_two.clusters(), "the shared totals must flag the template"
    assert max(c["accounts"] for c in core_one.clusters()) == 8
    # Votes travel: after another round both boards know every member's level.
    await sync_once(core_one, state_one)
    await sync_once(core_two, state_two)
    for number in range(8):
        assert one.services.risk.level(f"acct-{number}") != "none"
        assert two.services.risk.level(f"acct-{number}") != "none"
        assert one.services.risk.level(f"user-{number}") == "none"
    # Operator pins are the engine's (gateway/pins.py), shared through the same store whatever the
    # policies: the detector's rounds neither carry them nor undo them.
    pins_one = SharedPins(one.services.risk, lambda: store)
    pins_two = SharedPins(two.services.risk, lambda: store)
    await pins_one.set("acct-0", "critical", reason="review")
    await sync_once(core_one, state_one)
    await sync_once(core_two, state_two)
    assert two.services.risk.pinned("acct-0") is None, "pins do not travel through the detector"
    await pins_two.refresh()
    await sync_once(core_two, state_two)
    await sync_once(core_one, state_one)
    assert two.services.risk.level("acct-0") == "critical"
    await pins_one.set("acct-0", None, reason="done")
    await sync_once(core_one, state_one)
    await sync_once(core_two, state_two)
    await pins_two.refresh()
    await sync_once(core_two, state_two)
    assert one.services.risk.pinned("acct-0") is None and two.services.risk.pinned("acct-0") is None
    # The allowlist too.
    core_two.allow("acct-1", True)
    await sync_once(core_two, state_two)
    await sync_once(core_one, state_one)
    assert core_one.allowlisted("acct-1") and one.services.risk.level("acct-1") == "none"
    await core_one.stop()
    await core_two.stop()


async def test_two_cores_share_index_levels_and_allowlist_in_memory() -> None:
    await _exercise(MemoryStore("shared"))


async def test_two_cores_share_through_redis(redis_server: RedisProcess) -> None:
    store = RedisStore(redis_server.url, "t-sync")
    await store.client.flushdb()
    try:
        await _exercise(store)
    finally:
        await store.close()


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_scripts_agree_between_lua_and_python(backend: str, redis_server: RedisProcess) -> None:
    store: Any = MemoryStore("eq") if backend == "memory" else RedisStore(redis_server.url, "eq")
    if backend == "redis":
        await store.client.flushdb()
    key = store.key("list")
    for item in range(5):
        await store.run_script(APPEND_CAPPED, [key], [3, 60_000, f"i{item}"])
    assert [_s(x) for x in await store.run_script(READ_LIST, [key], [])] == ["i2", "i3", "i4"]
    keys = [store.key("g", suffix) for suffix in ("h", "m", "l", "u")]
    result = await store.run_script(GROUP_SYNC, keys, [60_000, 2, "2.0", "1.5", 3, "a", "b", "c", 1, "a"])
    assert (float(_s(result[0])), float(_s(result[1])), int(result[2]), int(result[3])) == (2.0, 1.5, 3, 1)
    result = await store.run_script(GROUP_SYNC, keys, [60_000, 2, "1.0", "0.5", 1, "d", 0])
    assert (float(_s(result[0])), int(result[2])) == (3.0, 4)
    level_keys = [store.key("lv", name) for name in ("votes", "pins", "allow", "version")]
    first = await store.run_script(
        LEVEL_SYNC, level_keys, ["100", "r1", "50", "", 1, "acct", "high", 1, "p", "critical", 1, "x", "+"]
    )
    assert _s(first[0]) == "1"
    assert [_s(x) for x in first[1]] == ["acct\tr1", "high"]
    assert [_s(x) for x in first[2]] == ["p", "critical"] and [_s(x) for x in first[3]] == ["x"]
    unchanged = await store.run_script(LEVEL_SYNC, level_keys, ["101", "r2", "50", "1", 0, 0, 0])
    assert [_s(x) for x in unchanged] == ["1"]
    expired = await store.run_script(LEVEL_SYNC, level_keys, ["200", "r2", "50", "", 0, 0, 0])
    assert list(expired[1]) == [], "votes past their expiry are dropped"
    if backend == "redis":
        await store.close()


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _ListsOnALostMaster(MemoryStore):
    """Every list append fails as it does when the lists' cluster master is lost; ``up`` says
    whether the other masters (``ping``) still answer."""

    def __init__(self, up: bool) -> None:
        super().__init__("lost-lists")
        self.up = up

    async def run_script(self, script: Any, keys: Any, args: Any) -> Any:
        if script is APPEND_CAPPED:
            raise StoreUnavailableError("redis: the lists' master is gone")
        return await super().run_script(script, keys, args)

    async def ping(self) -> bool:
        return self.up


@pytest.mark.parametrize("up", [True, False])
async def test_lists_lost_with_one_master_do_not_stop_the_round(up: bool) -> None:
    """Regression (flaky test_cluster lost-master test): when every pending list lived on the lost
    master the round raised as if the whole store were down, and skipped the accounts and levels."""
    store = _ListsOnALostMaster(up)
    harness = PolicyHarness([("detector", CONFIG)], store=store)
    await harness.start()
    core = core_for(harness.services)
    rng = random.Random(3)
    for _ in range(30):
        await send(harness, "acct", chat(harvest_prompt(rng)))
    await core.drain()
    pending = list(core.outbox.lists)
    assert pending, "the account's level change waits to be written (the audit list)"
    if up:
        await push_lists(core)  # counted and kept, not raised
    else:
        with pytest.raises(StoreUnavailableError):
            await push_lists(core)
    assert core.outbox.lists == pending, "kept for the next round"
    await core.stop()

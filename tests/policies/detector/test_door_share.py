"""The shared doorkeeper (door_share.py): a template key's first sightings on different replicas meet in
the store, so a cross-account cluster forms after as many sightings as on one replica."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from gateway.state.memory import MemoryStore
from gateway.state.redis import RedisStore
from policies.detector.core import core_for
from policies.detector.door_share import DOOR_SYNC, entry, parse
from policies.detector.sync import SyncState, account_round, sync_once
from tests.policies.detector.helpers import chat, cover_prompt, harvest_prompt, send
from tests.policy_harness import PolicyHarness
from tests.support import RedisProcess

# The tests run every sync round themselves: the background rounds wait a minute.
# Each replica analyses the requests that reach it (owners off): these tests are of the merge
# itself, which owners keep for hand-overs (test_routing.py: one replica analyses each account).
EXPLICIT = {
    "shared": {"sync": "on", "owners": False, "sync_interval_seconds": 60, "account_sync_seconds": 60}
}


async def _store(backend: str, redis_server: RedisProcess, name: str) -> Any:
    if backend == "memory":
        return MemoryStore(name)
    store = RedisStore(redis_server.url, f"t-{name}")
    await store.client.flushdb()
    return store


async def _cores(replicas: int, store: Any) -> tuple[list[PolicyHarness], list[Any], list[SyncState]]:
    harnesses = [PolicyHarness([("detector", EXPLICIT)], store=store) for _ in range(replicas)]
    for harness in harnesses:
        await harness.start()
    return harnesses, [core_for(h.services) for h in harnesses], [SyncState() for _ in harnesses]


async def _round(cores: list[Any], states: list[SyncState], full: bool = True) -> None:
    """A full sync round on every core, or (``full`` false) the account round between full ones."""
    for core, state in zip(cores, states, strict=True):
        await core.drain()
        await (sync_once if full else account_round)(core, state)


def _members(core: Any) -> set[str]:
    """The accounts of the groups this core's index holds."""
    return {account for group in core.index.groups.values() for account in group.members}


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_a_key_seen_once_on_each_of_two_replicas_becomes_a_group(
    backend: str, redis_server: RedisProcess
) -> None:
    """Two accounts send the campaign prompt once each, to different replicas: on one replica the second
    sighting makes its keys a group of both; before the shared doorkeeper no replica had a group."""
    store = await _store(backend, redis_server, "door-pair")
    harnesses, cores, states = await _cores(2, store)
    rng = random.Random(4)
    await send(harnesses[0], "first", chat(harvest_prompt(rng)), ip="192.0.2.1")
    await send(harnesses[1], "second", chat(harvest_prompt(rng)), ip="192.0.2.2")
    await _round(cores, states)
    assert _members(cores[1]) == {"first", "second"}, "the second replica paired the first one's sighting"
    groups = list(cores[1].index.groups.values())
    for group in groups:
        assert group.g_requests == 2 and group.g_accounts == 2, "both sightings reached the shared totals"
    # The paired sightings count among the accounts' template uses where they are tracked (the first
    # account only on the first replica, which counts it once the key is a group there).
    state = cores[1].accounts.get("second")
    assert state is not None and any(group.key in state.templates for group in groups)
    # A third replica's first sighting joins the shared group (the entry is now a group mark).
    third, core3, state3 = await _cores(1, store)
    await send(third[0], "third", chat(harvest_prompt(rng)), ip="192.0.2.3")
    await _round(core3, state3)
    joined = [g for g in core3[0].index.groups.values() if g.g_accounts == 3]
    assert joined, "the third sighting joined the shared group and read its totals"
    for core in cores + core3:
        await core.stop()
    if backend == "redis":
        await store.close()


async def _flag_after(replicas: int, store: Any, full: bool = True) -> int:
    """Campaign accounts each send the campaign prompt once, round-robin over ``replicas`` cores (every
    core runs a sync round after each request: a full one, or with ``full`` false the account round)
    until a core has the template flagged (min_accounts 5)."""
    harnesses, cores, states = await _cores(replicas, store)
    rng = random.Random(8)
    try:
        for number in range(1, 21):
            await send(
                harnesses[number % replicas],
                f"campaign-{number}",
                chat(harvest_prompt(rng)),
                ip=f"198.51.100.{number}",
            )
            # Honest traffic beside it: its keys stay below the doorkeeper's floor.
            await send(harnesses[number % replicas], f"user-{number}", chat(cover_prompt(rng)))
            await _round(cores, states, full)
            if any(core.clusters() for core in cores):
                return number
        return 10**6
    finally:
        for core in cores:
            await core.stop()


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_a_campaign_cluster_flags_across_three_replicas_as_on_one(
    backend: str, redis_server: RedisProcess
) -> None:
    """One replica flags the campaign template at its fifth account (min_accounts). Spread over three
    replicas each key became a group only at its second sighting on one replica, and the fifth
    account's request left the shared totals at four accounts or fewer."""
    store = await _store(backend, redis_server, "door-flag-1")
    one = await _flag_after(1, store)
    store = await _store(backend, redis_server, "door-flag-3")
    three = await _flag_after(3, store)
    assert one == 5, one
    assert three == one, (one, three)
    if backend == "redis":
        await store.close()


async def test_a_campaign_cluster_flags_in_the_account_round_as_on_one(redis_server: RedisProcess) -> None:
    """The same within the account rounds (every 0.1 s), without waiting for a full round (1 s): the
    sightings meet in the shared doorkeeper, and a group whose new members here may raise its score
    (a campaign's content, ``min_accounts`` within reach) pushes them and reads the totals at once.
    Before, the fifth account was counted in the shared totals only by a full round."""
    one = await _flag_after(1, await _store("redis", redis_server, "door-hot-1"), full=False)
    store = await _store("redis", redis_server, "door-hot-3")
    three = await _flag_after(3, store, full=False)
    assert one == 5, one
    assert three == one, (one, three)
    await store.close()


async def test_a_members_second_use_reads_the_templates_current_count(redis_server: RedisProcess) -> None:
    """A member's second use of a campaign template counts the template in full: one replica raises it
    to ``high`` then if the template has 10 accounts (score 1). On two replicas, the one that counted
    its first use read 6 accounts then (0.6: ``elevated``); four more joined on the other replica
    since. Its second use there is scored against the count it reads in the next account round,
    not a second old."""
    store = await _store("redis", redis_server, "door-second-use")
    harnesses, cores, states = await _cores(2, store)
    rng = random.Random(21)
    try:
        for number in range(5):
            await send(
                harnesses[number % 2], f"campaign-{number}", chat(harvest_prompt(rng)), ip="198.51.100.1"
            )
        await _round(cores, states)
        await _round(cores, states)
        assert cores[1].clusters(), "both replicas know the campaign template (5 accounts)"
        await send(harnesses[1], "member", chat(harvest_prompt(rng)), ip="203.0.113.5")
        await _round(cores, states, full=False)
        assert harnesses[1].services.risk.level("member") in ("none", "elevated")
        for number in range(5, 9):  # four more accounts, on the other replica
            await send(harnesses[0], f"campaign-{number}", chat(harvest_prompt(rng)), ip="198.51.100.1")
            await _round(cores, states, full=False)
        await send(harnesses[1], "member", chat(harvest_prompt(rng)), ip="203.0.113.5")
        await _round(cores, states, full=False)
        assert harnesses[1].services.risk.level("member") in ("high", "critical")
    finally:
        for core in cores:
            await core.stop()
        await store.close()


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_door_script_agrees_between_lua_and_python(backend: str, redis_server: RedisProcess) -> None:
    store = await _store(backend, redis_server, "door-script")
    keys = [store.key("det", "gd", "a"), store.key("det", "gd", "b")]
    first = entry("r1", "acct\twith tab", 0.75)
    out = await store.run_script(DOOR_SYNC, keys, [60_000, first, "*"])
    assert [_s(v) for v in out] == ["", ""]
    out = await store.run_script(DOOR_SYNC, keys, [60_000, entry("r2", "other", 0.5), entry("r2", "x", 0.9)])
    assert [_s(v) for v in out] == [first, "*"]
    assert parse(first) == ("r1", "acct\twith tab", 0.75)
    out = await store.run_script(DOOR_SYNC, keys[:1], [60_000, entry("r3", "late", 0.5)])
    assert [_s(v) for v in out] == ["*"]
    assert parse("*") is None and parse("r1\tnan\tx") is None
    if backend == "redis":
        await store.close()


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _until(check: Any, seconds: float) -> bool:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def test_first_sightings_meet_before_the_next_tick(redis_server: RedisProcess) -> None:
    """The analysis wakes the sync task when a sighting waits for the doorkeeper: the second replica
    pairs the first one's sighting within the early round's gap, not at the next tick (a minute here,
    0.1 s by default: behind a balancer, several requests of a campaign at a harvester's pace)."""
    store = await _store("redis", redis_server, "door-early")
    harnesses, cores, _ = await _cores(2, store)
    rng = random.Random(4)
    await send(harnesses[0], "first", chat(harvest_prompt(rng)), ip="192.0.2.1")
    await cores[0].drain()
    assert await _until(lambda: not cores[0].index.door_ops, 2.0), "offered without a round being run"
    await send(harnesses[1], "second", chat(harvest_prompt(rng)), ip="192.0.2.2")
    await cores[1].drain()
    assert await _until(lambda: _members(cores[1]) == {"first", "second"}, 2.0), _members(cores[1])

"""Per-account features shared across replicas (account_share.py): an attacker spreading an account's
requests round-robin over three replicas is raised as soon as one replica would raise it."""

from __future__ import annotations

import math
import random
import struct
import time
from typing import Any

import pytest

from gateway.plugins import RISK_LEVELS
from gateway.state.memory import MemoryStore
from gateway.state.redis import RedisStore
from policies.detector.core import core_for
from policies.detector.features import AVERAGES, RATE, SIZE
from policies.detector.store_scripts import ACCOUNT_SYNC
from policies.detector.sync import SyncState, sync_once
from tests.policies.detector.helpers import chat, cover_prompt, harvest_prompt, send
from tests.policy_harness import PolicyHarness
from tests.support import RedisProcess

CONFIG = {"shared": {"sync": "on"}}
ROUND = 3  # requests of the account per sync round (about one second of a busy harvester)


def _rank(level: str) -> int:
    return RISK_LEVELS.index(level)


async def _store(backend: str, redis_server: RedisProcess) -> Any:
    if backend == "memory":
        return MemoryStore("share")
    store = RedisStore(redis_server.url, "t-share")
    await store.client.flushdb()
    return store


async def _requests_to_high(replicas: int, store: Any, seed: int = 3) -> tuple[int, list[PolicyHarness]]:
    """Send one harvesting account's requests round-robin over ``replicas`` cores sharing ``store``
    (a sync round every ``ROUND`` requests) until every replica's board has it at ``high``."""
    harnesses = [PolicyHarness([("detector", CONFIG)], store=store) for _ in range(replicas)]
    for harness in harnesses:
        await harness.start()
    cores = [core_for(h.services) for h in harnesses]
    states = [SyncState() for _ in cores]
    rng = random.Random(seed)
    for number in range(1, 301):
        harness = harnesses[number % replicas]
        await send(harness, "harvester", chat(harvest_prompt(rng)), ip="203.0.113.9")
        await cores[number % replicas].drain()
        if number % ROUND == 0:
            for core, state in zip(cores, states, strict=True):
                await sync_once(core, state)
        if all(_rank(h.services.risk.level("harvester")) >= _rank("high") for h in harnesses):
            return number, harnesses
    return 10**6, harnesses


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_three_round_robin_replicas_raise_as_fast_as_one(
    backend: str, redis_server: RedisProcess
) -> None:
    store = await _store(backend, redis_server)
    one, singles = await _requests_to_high(1, store)
    if backend == "redis":
        await store.client.flushdb()
    else:
        store = MemoryStore("share-3")
    three, harnesses = await _requests_to_high(3, store)
    assert one < 10**6, "one replica raises the harvester"
    # Within 10%, plus one sync round of lag (before sharing each replica counted a third of the
    # requests and the three took about three times as many).
    assert three <= one * 1.1 + ROUND, (one, three)
    cores = [core_for(h.services) for h in harnesses]
    total = sum(1 for _ in range(three))
    for core in cores:
        state = core.accounts.get("harvester")
        assert state is not None and state.requests >= total - ROUND, "every replica counts every request"
        await core.stop()
    for harness in singles:
        await core_for(harness.services).stop()
    if backend == "redis":
        await store.close()


async def test_merged_features_match_one_replica() -> None:
    """The shared averages are what one replica computes from the whole stream (up to order)."""
    rng = random.Random(5)
    prompts = [harvest_prompt(rng) if rng.random() < 0.5 else cover_prompt(rng) for _ in range(60)]
    single = PolicyHarness([("detector", CONFIG)], store=MemoryStore("one"))
    await single.start()
    started = time.monotonic()
    for text in prompts:
        await send(single, "mixed", chat(text))
    await core_for(single.services).drain()
    alone = core_for(single.services).accounts["mixed"]
    alone_seconds = time.monotonic() - started

    store = MemoryStore("two")
    pair = [PolicyHarness([("detector", CONFIG)], store=store) for _ in range(2)]
    for harness in pair:
        await harness.start()
    cores = [core_for(h.services) for h in pair]
    states = [SyncState(), SyncState()]
    started = time.monotonic()
    for start in range(0, len(prompts), 6):  # batches of 6 to one replica, then a round
        harness = pair[(start // 6) % 2]
        for text in prompts[start : start + 6]:
            await send(harness, "mixed", chat(text))
        for core, state in zip(cores, states, strict=True):
            await core.drain()
            await sync_once(core, state)
    pair_seconds = time.monotonic() - started
    # The replica that saw the last batch holds the whole stream; the other one read back the
    # account at its own last round (a replica re-reads an account when it sees it again).
    shared = cores[1].accounts["mixed"]
    assert shared.requests == alone.requests == 60
    assert cores[0].accounts["mixed"].requests == 54
    for name, index in AVERAGES.items():
        if name == "template_reuse":  # judged against this replica's index (see account_share.py)
            continue
        assert shared.mean(index) == pytest.approx(alone.mean(index), abs=1e-9), name
    # The rate is a count decaying with a 60 s time constant, so it depends on when each request
    # came: the two runs took different times (more under load). What sharing must keep is that
    # every request counts once: 60 decayed by at most the run's length, neither 30 nor 120.
    for state, seconds in ((alone, alone_seconds), (shared, pair_seconds)):
        rate = state.rate_per_minute(state.last_mono)
        assert 60 * math.exp(-seconds / 60.0) - 1e-6 <= rate <= 60 + 1e-6, (rate, seconds)
    for core in cores:
        await core.stop()
    await core_for(single.services).stop()


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_account_script_agrees_between_lua_and_python(backend: str, redis_server: RedisProcess) -> None:
    store = await _store(backend, redis_server)
    keys = [store.key("acct", "x"), store.key("acctt", "x")]
    deltas = [0.1 * (i + 1) for i in range(SIZE)]
    deltas[RATE] = 0.0
    header = [60_000, SIZE, RATE, 10, 11, 16]
    pack = struct.Struct(f"<{7 + SIZE}d").pack
    first = await store.run_script(
        ACCOUNT_SYNC, keys, [*header, pack(4, 100.0, 101.5, 0.5, 0.25, 3.5, 101.5, *deltas), b""]
    )
    second = await store.run_script(
        ACCOUNT_SYNC, keys, [*header, pack(2, 90.0, 131.5, 0.75, 1.0, 1.0, 131.5, *deltas), b""]
    )
    record = struct.unpack(f"<{4 + SIZE}d", second[0])
    assert record[:4] == (6.0, 90.0, 131.5, 131.5)
    values = record[4:]
    assert values[0] == pytest.approx(0.1 * 0.75 + 0.1)
    assert values[10] == pytest.approx(1.1 * 1.0 + 1.1)  # token averages decay by their own factor
    assert values[RATE] == pytest.approx(3.5 * math.exp(-0.5) + 1.0)
    assert struct.unpack(f"<{4 + SIZE}d", first[0])[0] == 4.0
    if backend == "redis":
        await store.close()

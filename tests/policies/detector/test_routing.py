"""Account ownership across replicas (routing.py): each account is analysed on one replica, which sees
every request of it as a single replica would; a refused push is analysed where it landed."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.plugins import RISK_LEVELS, StoreUnavailableError
from gateway.state.memory import MemoryStore
from gateway.state.redis import RedisStore
from policies.detector.config import DetectorConfig
from policies.detector.core import DetectorCore, core_for
from policies.detector.request import Observation
from policies.detector.routing import decode, encode, owner_among, settings_key
from tests.policies.detector.helpers import chat, harvest_prompt, send
from tests.policy_harness import PolicyHarness
from tests.support import RedisProcess

# The background rounds wait a minute: the tests run every round themselves, in a known order.
# Without the semantic signals (no embedding process per replica: these tests are of the routing,
# and three models loading at once made a loaded CI machine slow enough to time store calls out).
CONFIG = {
    "shared": {
        "sync": "on",
        "sync_interval_seconds": 60,
        "account_sync_seconds": 60,
        "semantic": {"enabled": "off"},
    }
}


# Every core a test starts, stopped when it ends: their routers poll the store every few ms, and one
# cancel does not stop such a loop on 3.11 (redis-py's wait_for can swallow it: stop_task repeats it).
_STARTED: list[PolicyHarness] = []


@pytest.fixture(autouse=True)
async def _stop_cores() -> AsyncIterator[None]:
    yield
    while _STARTED:
        await core_for(_STARTED.pop().services).stop()


async def _start(harness: PolicyHarness) -> PolicyHarness:
    await harness.start()
    _STARTED.append(harness)
    return harness


async def _until(check: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


async def _store(backend: str, redis_server: RedisProcess, name: str) -> Any:
    if backend == "memory":
        return MemoryStore(name)
    store = RedisStore(redis_server.url, name)
    await store.client.flushdb()
    return store


async def _replicas(count: int, store: Any, config: dict[str, Any] = CONFIG) -> list[PolicyHarness]:
    harnesses = [PolicyHarness([("detector", config)], store=store) for _ in range(count)]
    for harness in harnesses:
        await _start(harness)
    for harness in harnesses:  # every replica a member before the traffic
        core = core_for(harness.services)
        await core.router.round(core, beat=True)
    for harness in harnesses:
        core = core_for(harness.services)
        await core.router.round(core, beat=True)
    return harnesses


async def _pair(store: Any) -> tuple[list[PolicyHarness], list[DetectorCore], str]:
    """Two replicas and an account the first forwards to the second, its owner."""
    harnesses = await _replicas(2, store)
    cores = [core_for(h.services) for h in harnesses]
    return harnesses, cores, _owned_by(cores[1], cores[0])


async def _pump(cores: list[DetectorCore]) -> None:
    """Analyse what is queued, forward it, and analyse what was forwarded (twice: a push, a take)."""
    for _ in range(2):
        for core in cores:
            await core.drain()
            await core.router.round(core, beat=False)
        for core in cores:
            await core.drain()


def _owned_by(owner: DetectorCore, other: DetectorCore) -> str:
    """An account ``other`` would forward to ``owner``."""
    return next(a for a in (f"acct-{n}" for n in range(100)) if other.router.owner(a) == owner.replica)


def _rank(level: str) -> int:
    return RISK_LEVELS.index(level)


async def _requests_to_high(harnesses: list[PolicyHarness], account: str, seed: int = 3) -> int:
    """Send one harvesting account's requests round-robin until a replica raises it to ``high``;
    every replica has it there after the next sync round (the owner's vote, read back)."""
    from policies.detector.sync import sync_once

    cores = [core_for(h.services) for h in harnesses]
    rng = random.Random(seed)
    for number in range(1, 301):
        await send(harnesses[number % len(harnesses)], account, chat(harvest_prompt(rng)), ip="203.0.113.9")
        await _pump(cores)
        if any(_rank(h.services.risk.level(account)) >= _rank("high") for h in harnesses):
            for _ in range(2):  # the owner writes its vote, the others read it
                for core in cores:
                    await sync_once(core)
            assert all(_rank(h.services.risk.level(account)) >= _rank("high") for h in harnesses)
            return number
    return 10**6


def test_a_new_replica_takes_only_its_share_of_the_accounts() -> None:
    accounts = [f"acct-{n}" for n in range(3000)]
    three = ("r-a", "r-b", "r-c")
    before = {a: owner_among(three, a) for a in accounts}
    after = {a: owner_among((*three, "r-d"), a) for a in accounts}
    moved = [a for a in accounts if before[a] != after[a]]
    assert all(after[a] == "r-d" for a in moved), "an account moves only to the replica that came"
    assert 0.18 < len(moved) / len(accounts) < 0.32, len(moved)
    shares = [sum(1 for a in accounts if before[a] == r) / len(accounts) for r in three]
    assert all(0.28 < share < 0.39 for share in shares), shares
    # The same owner whatever the order a replica lists the members in.
    assert all(owner_among(tuple(reversed(three)), a) == before[a] for a in accounts[:200])


def _observation(settings: DetectorConfig) -> Observation:
    mono = time.monotonic()
    observation = Observation(
        "acct", "free", time.time(), mono - 2.0, "chat.completions", "m", True, {"50256": -100}, 1, 2, True,
        {"user-agent": "sdk/1", "accept": "*/*"}, "203.0.113.9", settings, None,
    )  # fmt: skip
    observation.user_text, observation.system_text, observation.turns = "write it out 步骤", "sys", 3
    observation.tools, observation.tool_count, observation.tool_depth = True, 4, 2
    observation.status, observation.output_tokens, observation.submitted = 200, 17, mono - 0.5
    return observation


def test_an_observation_reaches_its_owner_whole_with_its_ages_on_the_owner_clock() -> None:
    settings = DetectorConfig.model_validate(CONFIG)
    observation = _observation(settings)
    mono, wall = time.monotonic(), time.time()
    raw = encode(observation, settings_key(settings), mono, wall)
    assert observation.headers is None and observation.client, "settled before it leaves"
    # The owner's monotonic clock is another; one second later by the wall clock.
    other = DetectorConfig.model_validate({})
    got = decode(raw, {settings_key(settings): other}, None, 5000.0, wall + 1.0)
    assert got.forwarded and got.settings is other and got.request is None and got.headers is None
    for name in ("account", "at", "bias", "user_text", "system_text", "turns", "tool_count", "client"):
        assert getattr(got, name) == getattr(observation, name), name
    assert got.mono == pytest.approx(5000.0 - 1.0 - 2.0, abs=0.01)
    assert got.submitted == pytest.approx(5000.0 - 1.0 - 0.5, abs=0.01)
    # An unknown configuration (another replica runs another YAML): the owner's own.
    assert decode(raw, {}, other, 5000.0, wall).settings is other
    with pytest.raises(ValueError):
        decode(b"[1, 2]", {}, other, 5000.0, wall)
    with pytest.raises(ValueError):
        decode(b"not json", {}, other, 5000.0, wall)


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_each_account_is_analysed_whole_on_one_replica(
    backend: str, redis_server: RedisProcess
) -> None:
    store = await _store(backend, redis_server, "t-route")
    harnesses = await _replicas(3, store)
    cores = [core_for(h.services) for h in harnesses]
    assert all(core.router.active for core in cores)
    rng = random.Random(5)
    accounts = [f"user-{n}" for n in range(12)]
    for number in range(120):
        account = accounts[number % len(accounts)]
        await send(harnesses[number % 3], account, chat(harvest_prompt(rng)))
    await _pump(cores)
    for account in accounts:
        tracked = [core for core in cores if core.accounts.get(account) is not None]
        assert len(tracked) == 1, (account, [c.replica for c in tracked])
        owner = tracked[0]
        assert owner.router.owner(account) == owner.replica
        assert owner.accounts.get(account).requests == 10  # type: ignore[union-attr]
        assert all(core.status(account)["analysed_by"] == owner.replica for core in cores)
    sent = sum(core.router.sent for core in cores)
    # Account n always reaches replica n % 3 here: what its owner does not receive directly is sent.
    expected = sum(10 for n, a in enumerate(accounts) if cores[n % 3].router.owner(a) != cores[n % 3].replica)
    assert sent == sum(core.router.received for core in cores) == expected
    assert all(core.router.kept == 0 for core in cores)


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_three_replicas_raise_an_account_at_the_request_one_would(
    backend: str, redis_server: RedisProcess
) -> None:
    one = await _requests_to_high(await _replicas(1, await _store(backend, redis_server, "t-one")), "h")
    three = await _requests_to_high(await _replicas(3, await _store(backend, redis_server, "t-three")), "h")
    assert one < 10**6
    # Before owners, each replica decided from its own view between merges: a round's lag more.
    assert three == one, (one, three)


async def test_a_push_the_owner_cannot_take_is_analysed_where_it_landed(redis_server: RedisProcess) -> None:
    store = await _store("redis", redis_server, "t-refused")
    harnesses, cores, account = await _pair(store)
    # The owner stopped renewing its alive mark (crashed, say): the push is refused.
    await store.client.delete(*cores[1].router.inbox_keys(store, cores[1].replica)[1:])
    rng = random.Random(1)
    for _ in range(3):
        await send(harnesses[0], account, chat(harvest_prompt(rng)))
    await cores[0].drain()
    await cores[0].router.round(cores[0], beat=False)
    await cores[0].drain()
    assert cores[0].router.kept == 3 and cores[0].accounts.get(account).requests == 3  # type: ignore[union-attr]
    kept = cores[0].metrics.forwarded.labels("kept")  # type: ignore[union-attr]
    assert kept._value.get() >= 3


async def test_a_stopping_owner_analyses_what_was_sent_to_it_and_takes_no_more(
    redis_server: RedisProcess,
) -> None:
    store = await _store("redis", redis_server, "t-leave")
    harnesses, cores, account = await _pair(store)
    rng = random.Random(2)
    for _ in range(4):
        await send(harnesses[0], account, chat(harvest_prompt(rng)))
    await cores[0].drain()
    await cores[0].router.push(cores[0])  # in the owner's inbox, not taken yet
    assert cores[0].router.sent == 4
    await harnesses[1].pipeline.shutdown()  # the gateway stops: the owner leaves, with its inbox
    assert cores[1].accounts.get(account).requests == 4  # type: ignore[union-attr]
    assert not cores[1].router.members and not cores[1].router.enabled
    # The next request is analysed where it landed: refused by the owner's inbox if this replica
    # still counts it (kept), or not forwarded once its heartbeat has read the member set.
    await send(harnesses[0], account, chat(harvest_prompt(rng)))
    await cores[0].drain()
    await cores[0].router.round(cores[0], beat=False)

    def analysed_here() -> bool:
        state = cores[0].accounts.get(account)
        return state is not None and state.requests == 1

    assert await _until(analysed_here)  # (the router's own task may have pushed it: then it waits)
    assert cores[0].router.sent == 4
    await cores[0].router.round(cores[0], beat=True)  # the member set has only itself now
    assert not cores[0].router.active


async def test_a_replica_without_its_store_analyses_every_account_itself() -> None:
    store = RedisStore(f"redis://127.0.0.1:{_closed_port()}/0", "t-down")
    harness = await _start(PolicyHarness([("detector", CONFIG)], store=store))
    core = core_for(harness.services)
    with pytest.raises(StoreUnavailableError):
        await core.router.round(core, beat=True)
    assert not core.router.active
    await send(harness, "solo", chat("hello"))
    await core.drain()
    assert core.accounts.get("solo") is not None


def _closed_port() -> int:
    from tests.support import free_port

    return free_port()


def test_owner_settings_refuse_bad_values_naming_the_key() -> None:
    from pydantic import ValidationError

    for bad in (
        {"owners": "sometimes"},
        {"owner_ttl_seconds": 0.1},
        {"inbox_poll_seconds": 0},
        {"inbox_idle_poll_seconds": -1},
        {"inbox_cap": 10},
    ):
        with pytest.raises(ValidationError) as caught:
            DetectorConfig.model_validate({"shared": bad})
        assert ("shared", next(iter(bad))) == caught.value.errors()[0]["loc"][:2]


async def test_what_cannot_be_forwarded_now_is_analysed_where_it_landed(redis_server: RedisProcess) -> None:
    store = await _store("redis", redis_server, "t-backlog")
    _, cores, account = await _pair(store)
    sender, owner = cores[0], cores[1]
    settings = DetectorConfig.model_validate(CONFIG)
    # A backlog behind a store that does not answer: past max_waiting, the rest stays here.
    sender.router.max_waiting = 2
    observations = [_observation(settings) for _ in range(5)]
    for observation in observations:
        observation.account = account
    assert [sender.router.forward(o) for o in observations] == [True, True, False, False, False]
    # One that JSON cannot carry stays here too (a bias keyed by numbers, built in code).
    sender.router.max_waiting = 100
    odd = _observation(settings)
    odd.account, odd.bias = account, {50256: -100}
    assert not sender.router.forward(odd)
    await sender.router.push(sender)
    await owner.router.round(owner, beat=False)
    await owner.drain()
    assert owner.accounts.get(account).requests == 2  # type: ignore[union-attr]


async def test_replicas_join_the_set_when_their_policies_start(redis_server: RedisProcess) -> None:
    # Before any request: the first requests of a campaign are analysed by their owners, not by
    # whichever replica they reached while the set was still forming.
    store = await _store("redis", redis_server, "t-join")
    first = await _start(PolicyHarness([("detector", CONFIG)], store=store))
    second = await _start(PolicyHarness([("detector", CONFIG)], store=store))
    one, two = core_for(first.services), core_for(second.services)
    assert one.router.members == (one.replica,)
    assert two.router.members == tuple(sorted((one.replica, two.replica))) and two.router.active
    await one.router.round(one, beat=True)  # its next heartbeat (within a second)
    assert one.router.members == two.router.members


async def test_a_first_sighting_paired_on_another_replica_counts_on_its_owner_at_once(
    redis_server: RedisProcess,
) -> None:
    """Two accounts of one campaign on different owners: the second one's replica pairs the first
    one's sighting in the shared doorkeeper and tells the first one's owner, which counts the use
    and reads the cluster without waiting for that account's next request (on one replica the
    second sighting's group does the same for both)."""
    from policies.detector.sync import SyncState, early_round

    store = await _store("redis", redis_server, "t-paired")
    harnesses = await _replicas(2, store)
    cores = [core_for(h.services) for h in harnesses]
    for core in cores:  # this test runs the rounds itself
        core.wake_sync = lambda: None  # type: ignore[method-assign]
    first, second = _owned_by(cores[0], cores[1]), _owned_by(cores[1], cores[0])
    rng = random.Random(4)
    await send(harnesses[0], first, chat(harvest_prompt(rng)), ip="192.0.2.1")
    await _pump(cores)
    await early_round(cores[0], SyncState())  # the first sighting waits in the store
    assert not any(first in g.members for g in cores[0].index.groups.values())
    await send(harnesses[1], second, chat(harvest_prompt(rng)), ip="192.0.2.2")
    await _pump(cores)
    await early_round(cores[1], SyncState())  # paired there; the notice goes to the first's owner
    assert cores[1].index.groups and cores[1].accounts.get(first) is None
    await _pump(cores)
    assert cores[0].door_notices, "the first account's owner was told"
    await early_round(cores[0], SyncState())
    groups = [g for g in cores[0].index.groups.values() if first in g.members]
    assert groups and all(g.g_accounts == 2 and g.g_requests == 2 for g in groups), groups
    state = cores[0].accounts.get(first)
    assert state is not None and any(g.key in state.templates for g in groups)


async def test_an_owner_reads_its_inbox_often_while_observations_come(redis_server: RedisProcess) -> None:
    store = await _store("redis", redis_server, "t-pace")
    harnesses = await _replicas(2, store)
    cores = [core_for(h.services) for h in harnesses]
    shared, router = cores[1].shared, cores[1].router
    now = time.monotonic()
    router.last_received = 0.0
    assert router.poll_interval(shared, now) == shared.inbox_idle_poll_seconds == 0.05
    account = _owned_by(cores[1], cores[0])
    await send(harnesses[0], account, chat("hello there"))
    await _pump(cores)
    assert router.poll_interval(shared, time.monotonic()) == shared.inbox_poll_seconds == 0.005
    assert router.poll_interval(shared, time.monotonic() + 2.0) == shared.inbox_idle_poll_seconds
    router.members = (router.replica,)  # alone: only the heartbeat's pace
    assert router.poll_interval(shared, now) == 1.0


async def test_an_inbox_entry_that_cannot_be_read_is_skipped_and_counted(redis_server: RedisProcess) -> None:
    store = await _store("redis", redis_server, "t-garbage")
    harnesses, cores, account = await _pair(store)
    owner = cores[1]
    inbox = owner.router.inbox_keys(store, owner.replica)[0]
    unreadable = owner.metrics.forwarded.labels("unreadable")  # type: ignore[union-attr]
    before = unreadable._value.get()
    await store.client.rpush(inbox, b"not json", b"[1, 2]", b'["pair", "template"]')
    await send(harnesses[0], account, chat("hello there"))
    await _pump(cores)
    assert unreadable._value.get() - before == 3
    assert owner.accounts.get(account).requests == 1  # type: ignore[union-attr]  # the good one

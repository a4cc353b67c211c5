"""The state store on a real 3-master Redis Cluster: quotas, evidence and detector state, and a lost master.

Every script's keys must share one hash slot (else Redis answers CROSSSLOT): the quota's per-account
keys, the detector's per-account state, index shards and level keys, the engine's pins. The cluster
is started from the ``redis-server`` binary (``redis-cli --cluster create``) for this module.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from gateway.config.schema import StateConfig
from gateway.errors import RateLimitError, ServiceUnavailableError
from gateway.pins import SharedPins
from gateway.state.factory import create_store
from gateway.state.redis import RedisStore
from policies.detector.core import core_for
from policies.detector.evidence import account_bundle
from policies.detector.store_scripts import READ_LIST
from policies.detector.sync import SyncState, sync_once
from policies.watermark.evidence import RECORD_SCRIPT, script_args
from tests.policies.detector.helpers import chat as detector_chat
from tests.policies.detector.helpers import harvest_prompt, send
from tests.policies.detector.test_account_share import _requests_to_high
from tests.policies.detector.test_door_share import _flag_after
from tests.policies.detector.test_sync import _exercise
from tests.policies.quota.helpers import chat, ended, harness
from tests.policy_harness import PolicyHarness
from tests.redis_topologies import RedisClusterProcesses


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterProcesses]:
    processes = RedisClusterProcesses().start()
    yield processes
    processes.stop()


def _store(url: str, prefix: str | None = None, timeout: float = 0.5) -> RedisStore:
    config = StateConfig(
        backend="redis",
        mode="cluster",
        url=url,
        key_prefix=prefix or f"t{uuid.uuid4().hex[:10]}",
        timeout_seconds=timeout,
    )
    store = create_store(config)
    assert isinstance(store, RedisStore)
    return store


@pytest.fixture
async def store(cluster: RedisClusterProcesses) -> AsyncIterator[RedisStore]:
    store = _store(cluster.url)
    yield store
    await store.close()


async def test_quota_decisions_on_a_cluster(store: RedisStore, cluster: RedisClusterProcesses) -> None:
    """Each account's windows, slot and distinct prompts are one script on one node; accounts spread."""
    h = await harness(store, {"requests_per_minute": 2, "max_concurrent": 1, "tokens_per_day": 100_000})
    accounts = [f"acct-{n}" for n in range(12)]
    for account in accounts:
        for attempt in range(3):
            exchange = h.exchange("chat.completions", chat(max_tokens=50), account=account)
            if attempt < 2:
                await h.request(exchange)
                ended(exchange)
                await h.after(exchange)
            else:
                with pytest.raises(RateLimitError):
                    await h.request(exchange)
    nodes = {cluster.port_of_slot(store.slot(store.key("quota", "{" + a + "}", "rpm"))) for a in accounts}
    assert len(nodes) == 3, "the accounts' keys live on every master"
    # A concurrency slot is held on the account's node and released there.
    held = h.exchange("chat.completions", chat(), account="acct-slot")
    await h.request(held)
    with pytest.raises(RateLimitError):
        await h.request(h.exchange("chat.completions", chat(), account="acct-slot"))
    ended(held)
    await h.after(held)
    await h.request(h.exchange("chat.completions", chat(), account="acct-slot"))


async def test_detector_index_levels_pins_and_allowlist_on_a_cluster(store: RedisStore) -> None:
    await _exercise(store)


async def test_detector_account_state_on_a_cluster(cluster: RedisClusterProcesses) -> None:
    """Three replicas on the cluster raise a round-robin harvester as fast as one (account_share.py)."""
    alone, together = _store(cluster.url), _store(cluster.url)
    try:
        one, singles = await _requests_to_high(1, alone)
        three, replicas = await _requests_to_high(3, together)
        assert three <= one * 1.1 + 3, (one, three)
        for harness_ in (*singles, *replicas):
            await core_for(harness_.services).stop()
    finally:
        await alone.close()
        await together.close()


async def test_detector_shared_doorkeeper_on_a_cluster(store: RedisStore) -> None:
    """First sightings meet in the doorkeeper entries of their groups' shards (door_share.py): spread
    over three replicas, a five-account campaign flags at its fifth account, as on one replica."""
    assert await _flag_after(3, store) == 5


async def test_evidence_on_a_cluster(store: RedisStore) -> None:
    """The audit trail and timeline lists, the watermark record and the pins, read back from the cluster."""
    h = PolicyHarness([("detector", {"shared": {"sync": "on"}})], store=store)
    await h.start()
    core = core_for(h.services)
    rng = random.Random(4)
    for _ in range(40):
        await send(h, "evidence-acct", detector_chat(harvest_prompt(rng)))
    await core.drain()
    await sync_once(core, SyncState())
    key = store.key("evidence", "watermark", "evidence-acct")
    await store.run_script(RECORD_SCRIPT, [key], script_args("k1", 1000.0, None, 3600))
    pins = SharedPins(h.services.risk, lambda: store)
    await pins.set("evidence-acct", "critical", reason="review")
    bundle = await account_bundle(core, "evidence-acct")
    stored = await store.run_script(READ_LIST, [store.key("det", "audit", "evidence-acct")], [])
    assert stored and bundle["audit_trail"], "the trail was written to and read from the cluster"
    assert bundle["features_over_time"]
    assert bundle["watermark"]["key_ids"] == ["k1"]
    assert bundle["pinned"] is not None
    await core.stop()


@pytest.mark.parametrize("mode", ["fail_open", "fail_closed"])
async def test_losing_a_master(mode: str) -> None:
    """Accounts whose slots the lost master owned get the documented fail mode; the others are
    served and limited exactly as before."""
    cluster = RedisClusterProcesses().start()
    store = _store(cluster.url, timeout=0.3)
    try:
        h = await harness(store, {"requests_per_minute": 2, "on_backend_error": mode})
        by_node: dict[int, list[str]] = {}
        for n in range(30):
            account = f"acct-{n}"
            slot = store.slot(store.key("quota", "{" + account + "}", "rpm"))
            by_node.setdefault(cluster.port_of_slot(slot), []).append(account)
        lost_port = next(iter(by_node))
        lost, kept = by_node[lost_port][0], next(a for p, a in by_node.items() if p != lost_port)[0]
        await h.request(h.exchange("chat.completions", chat(), account=lost))
        cluster.kill(lost_port)
        cluster.wait_failed(lost_port)
        for _ in range(3):
            exchange = h.exchange("chat.completions", chat(), account=lost)
            if mode == "fail_open":
                await h.request(exchange)
                assert [a.action for a in exchange.actions] == ["backend_fail_open"]
            else:
                with pytest.raises(ServiceUnavailableError) as caught:
                    await h.request(exchange)
                assert caught.value.status == 503
        # The surviving masters' accounts keep their exact limits (no fail-open for them).
        await h.request(h.exchange("chat.completions", chat(), account=kept))
        await h.request(h.exchange("chat.completions", chat(), account=kept))
        with pytest.raises(RateLimitError):
            await h.request(h.exchange("chat.completions", chat(), account=kept))
        # Ready while a master answers: the lost master's accounts get the fail mode, the others
        # are served (an unready gateway would refuse them all).
        assert await store.ping()
    finally:
        await store.close()
        cluster.stop()


async def test_detector_sync_survives_a_lost_master() -> None:
    """With one master gone, a sync round still merges the accounts and shards on the others and
    shares the levels; the lost accounts keep their deltas (nothing raises out of the round)."""
    cluster = RedisClusterProcesses().start()
    store = _store(cluster.url, timeout=0.3)
    try:
        keep = {cluster.port_of_slot(store.slot(store.tagged(t, "x"))) for t in ("det-levels", "pins")}
        lost_port = next(p for p in cluster.ports if p not in keep)
        # Each replica analyses what reaches it (owners off): this is the per-account merge's test.
        merging = {"shared": {"sync": "on", "owners": False}}
        pair = [PolicyHarness([("detector", merging)], store=store) for _ in range(2)]
        for h in pair:
            await h.start()
        cores = [core_for(h.services) for h in pair]
        states = [SyncState(), SyncState()]
        accounts = [f"acct-{n}" for n in range(12)]
        on_lost = [a for a in accounts if cluster.port_of_slot(store.slot(store.tagged(a, "x"))) == lost_port]
        alive = [a for a in accounts if a not in on_lost]
        assert on_lost and alive
        assert await store.ping()  # the client learns the whole topology when it first connects
        cluster.kill(lost_port)
        cluster.wait_failed(lost_port)
        rng = random.Random(6)
        for _ in range(2):
            for account in accounts:
                for h in pair:
                    await send(h, account, detector_chat(harvest_prompt(rng)))
            for core, state in zip(cores, states, strict=True):
                await core.drain()
                await sync_once(core, state)  # must not raise
        for account in alive:  # 4 requests; a replica may not yet have the other's last one
            # (which of the two lags depends on when the cores' own 0.1-s account rounds ran)
            counts = (cores[0].accounts[account].requests, cores[1].accounts[account].requests)
            assert set(counts) <= {3, 4} and max(counts) == 4, counts
        for account in on_lost:  # the local count only; the deltas wait for the next round
            assert cores[0].accounts[account].requests == 2
            assert account in cores[0].share.pending
        for core in cores:
            await core.stop()
    finally:
        await store.close()
        cluster.stop()

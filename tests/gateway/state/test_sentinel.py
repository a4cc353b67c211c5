"""The state store behind Redis Sentinel: a real master, replica and sentinel, and a failover."""

from __future__ import annotations

import asyncio
import random
import struct
import time
import uuid

import pytest

from gateway.config.schema import StateConfig
from gateway.errors import RateLimitError, ServiceUnavailableError
from gateway.state.factory import create_store
from gateway.state.redis import RedisStore
from policies.detector.core import core_for
from policies.detector.sync import SyncState, sync_once
from tests.policies.detector.helpers import chat as detector_chat
from tests.policies.detector.helpers import harvest_prompt, send
from tests.policies.quota.helpers import chat, ended, harness
from tests.policy_harness import PolicyHarness
from tests.redis_topologies import SentinelProcesses


async def test_quota_and_detector_follow_a_failover() -> None:
    """Before: exact limits through the master the sentinel names. While no master answers: the
    documented fail mode (fail_closed: 503). After the replica is promoted: served again, with the
    counters it had replicated, without restarting anything."""
    topology = SentinelProcesses().start()
    config = StateConfig(
        backend="redis",
        mode="sentinel",
        sentinels=topology.sentinels,
        service_name=topology.service,
        key_prefix=f"t{uuid.uuid4().hex[:10]}",
        timeout_seconds=0.3,
    )
    store = create_store(config)
    assert isinstance(store, RedisStore)
    try:
        h = await harness(store, {"requests_per_minute": 3, "on_backend_error": "fail_closed"})
        for _ in range(2):
            exchange = h.exchange("chat.completions", chat())
            await h.request(exchange)
            ended(exchange)
            await h.after(exchange)
        detector = PolicyHarness([("detector", {"shared": {"sync": "on"}})], store=store)
        await detector.start()
        core = core_for(detector.services)
        rng = random.Random(2)
        for _ in range(10):
            await send(detector, "acct-s", detector_chat(harvest_prompt(rng)))
        await core.drain()
        await sync_once(core, SyncState())
        await asyncio.sleep(0.2)  # let the replica take the writes (replication is asynchronous)

        old = topology.kill_master()
        with pytest.raises(ServiceUnavailableError):
            await h.request(h.exchange("chat.completions", chat()))
        topology.wait_promoted(old)
        deadline = time.monotonic() + 15
        while True:  # the first calls may still find no master while the sentinel reconfigures
            try:
                await h.request(h.exchange("chat.completions", chat()))
                break
            except ServiceUnavailableError:
                assert time.monotonic() < deadline, "the store never reached the promoted master"
                await asyncio.sleep(0.2)
        # Two requests before the failover plus this one: the limit of 3 holds across it.
        with pytest.raises(RateLimitError):
            await h.request(h.exchange("chat.completions", chat()))
        for _ in range(5):
            await send(detector, "acct-s", detector_chat(harvest_prompt(rng)))
        await core.drain()
        await sync_once(core, SyncState())
        raw = await store.client.get(store.key("det", "acct", "acct-s"))
        assert struct.unpack_from("<d", raw)[0] == 15, "the account's shared state survived the failover"
        await core.stop()
    finally:
        await store.close()
        topology.stop()

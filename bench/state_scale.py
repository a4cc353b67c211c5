"""Redis load per request with shared detector state, and what one node and a 3-master cluster sustain.

    python -m bench.state_scale [--requests 6000] [--per-round 600] [--seconds 5]

Part 1, operations per request. Three detector cores (three replicas) share one
Redis; the simulator's persona mix (0.2 scale) is fed to them round-robin, and
every ``--per-round`` requests (one sync round, 1 s at ``per-round`` requests/s
across the replicas) each core runs its sync round, with the per-account rounds
(every 0.1 s) in between. Redis's own counters (INFO
commandstats: calls and server CPU microseconds) give, per request:

* round trips (script calls), commands (those scripts run included) and Redis
  server CPU, each against the baseline, measured in the same run: the quota
  decision and settlement
  of a six-window quota (what every request costs today with a Redis quota);
* the detector without per-account sharing (``share_accounts: false``: index,
  levels, audit lists), with it (``share_accounts: true``), and with account
  owners as well (``owners: true``: each account analysed on one replica, the
  others' observations pushed to its inbox and read every 5 ms of the round's
  time), on one node and on a 3-master cluster (where per-account calls cannot
  be batched).

Part 2, capacity. The same quota decisions for 1,000 accounts from
``--concurrency`` clients for ``--seconds`` against one node and against the
cluster: throughput seen by the client and server CPU per decision; a node
sustains about ``1e6 / (server µs per call)`` calls/s (Redis runs commands on
one core), a cluster that times the share of slots its busiest master owns.
Figures are ratios to the one-node baseline of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.detector import build_exchanges
from gateway.config.schema import StateConfig
from gateway.metrics import GatewayMetrics
from gateway.plugins.services import PolicyServices, SharedObjects
from gateway.risk import RiskBoard
from gateway.state.factory import create_store
from gateway.state.redis import RedisStore
from policies.detector.config import DetectorConfig
from policies.detector.core import DetectorCore
from policies.detector.request import observe
from policies.detector.sync import SyncState, account_round, sync_once
from policies.quota.limiter import (
    DECIDE,
    SETTLE,
    GcraAdjust,
    GcraOp,
    SlotOp,
    SlotRelease,
    encode_decide,
    encode_settle,
)
from tests.redis_topologies import RedisClusterProcesses
from tests.support import RedisProcess

MINUTE_US, DAY_US = 60e6, 86_400e6
_ACCOUNT_ROUNDS = 10  # per-account rounds per full round (account_sync_seconds 0.1 / sync_interval 1)
_INBOX_ROUNDS = 200  # owners' inbox reads (and pushes) per full round (inbox_poll_seconds 0.005 / 1)


def _quota_ops(request: int) -> list[Any]:
    return [
        GcraOp(10**9, MINUTE_US, 1),
        GcraOp(10**11, MINUTE_US, 500),
        GcraOp(10**12, DAY_US, 500),
        GcraOp(10**11, DAY_US, 100, capped=True),
        SlotOp(10**6, f"s{request}", 60e6),
        GcraOp(10**9, DAY_US, 1),
    ]


def _quota_keys(store: RedisStore, account: str) -> list[str]:
    tag = "{" + account + "}"
    return [store.key("quota", tag, s) for s in ("rpm", "tpm", "tpd", "rsn", "slots", "rpd")]


async def _commands(stores: list[RedisStore]) -> tuple[int, float, int]:
    """(commands, server µs, round trips) over every node of the stores' Redis.

    Commands include those a script runs (Redis counts them in commandstats); round trips are the
    script calls (EVALSHA/EVAL), the only commands these paths send, and the server time is theirs
    (a script's time includes its commands', which commandstats lists again). INFO is left out.
    """
    calls, usec, trips = 0, 0.0, 0
    for store in stores:
        client = store.client
        if store.clustered:
            infos = (await client.info("commandstats", target_nodes=client.get_primaries())).values()
        else:
            infos = [await client.info("commandstats")]
        for info in infos:
            for name, entry in info.items():
                if name in ("cmdstat_info", "cmdstat_cluster", "cmdstat_command"):
                    continue
                calls += int(entry["calls"])
                if name in ("cmdstat_evalsha", "cmdstat_eval"):
                    trips += int(entry["calls"])
                    usec += float(entry["usec"])
    return calls, usec, trips


async def quota_cost(store: RedisStore, requests: int) -> tuple[float, float, float]:
    """Commands, server µs and round trips per request of a six-window quota decision and settlement."""
    before = await _commands([store])
    for request in range(requests):
        account = f"acct-{request % 200}"
        keys = _quota_keys(store, account)
        await store.run_script(DECIDE, keys, encode_decide(_quota_ops(request)))
        settle = [GcraAdjust(10**11, MINUTE_US, -10), SlotRelease(f"s{request}")]
        await store.run_script(SETTLE, [keys[1], keys[4]], encode_settle(settle))
    after = await _commands([store])
    return tuple((a - b) / requests for a, b in zip(after, before, strict=True))  # type: ignore[return-value]


def _cores(
    store: RedisStore, share_accounts: bool, replicas: int, owners: bool
) -> tuple[list[DetectorCore], Any]:
    shared = {"sync": "on", "share_accounts": share_accounts, "owners": owners}
    settings = DetectorConfig.model_validate({"shared": shared, "text": {"max_chars": 1000}})
    cores = []
    for _ in range(replicas):
        services = PolicyServices(store, GatewayMetrics(), RiskBoard(), SharedObjects())
        core = DetectorCore()
        core.attach(settings, services)
        cores.append(core)
    return cores, settings


async def detector_cost(
    store: RedisStore,
    exchanges: list[Any],
    per_round: int,
    share_accounts: bool,
    replicas: int = 3,
    owners: bool = False,
) -> tuple[float, float, float, float]:
    """Commands, server µs and round trips per request of the detector's sync rounds (and, with
    ``owners``, of forwarding each account's observations to its owner: pushes and inbox reads
    every 5 ms of the round's time); the replicas' sync CPU per request (µs)."""
    cores, settings = _cores(store, share_accounts, replicas, owners)
    states = [SyncState() for _ in cores]
    before = await _commands([store])
    if owners:
        for core_ in cores + cores:  # every one a member, and knows the others
            await core_.router.round(core_, beat=True)
    sync_cpu = 0.0
    for position, exchange in enumerate(exchanges):
        core = cores[position % replicas]
        observation = observe(exchange, settings)
        if not core.router.forward(observation):
            core.process(observation)
        if owners and (position + 1) % max(1, per_round // _INBOX_ROUNDS) == 0:
            started = time.process_time()
            for core_ in cores:  # what was forwarded is analysed by its owner (no queue: at once)
                await core_.router.round(core_, beat=False)
            sync_cpu += time.process_time() - started
        if (position + 1) % per_round == 0 or position + 1 == len(exchanges):
            started = time.process_time()
            for core_, state in zip(cores, states, strict=True):
                while core_.run_sweeps():
                    pass
                await sync_once(core_, state)
            sync_cpu += time.process_time() - started
        elif share_accounts and (position + 1) % max(1, per_round // _ACCOUNT_ROUNDS) == 0:
            started = time.process_time()
            for core_, state in zip(cores, states, strict=True):  # the rounds between full ones
                await account_round(core_, state)
            sync_cpu += time.process_time() - started
    after = await _commands([store])
    n = len(exchanges)
    commands, usec, trips = ((a - b) / n for a, b in zip(after, before, strict=True))
    return commands, usec, trips, sync_cpu / n * 1e6


async def capacity(store: RedisStore, seconds: float, concurrency: int) -> tuple[float, float]:
    """Quota decisions per second from ``concurrency`` clients, and server µs per decision."""
    done = 0
    deadline = time.monotonic() + seconds
    before = await _commands([store])

    async def client(number: int) -> None:
        nonlocal done
        request = number
        while time.monotonic() < deadline:
            account = f"cap-{request % 1000}"
            await store.run_script(DECIDE, _quota_keys(store, account), encode_decide(_quota_ops(request)))
            request += concurrency
            done += 1

    started = time.monotonic()
    await asyncio.gather(*(client(n) for n in range(concurrency)))
    elapsed = time.monotonic() - started
    after = await _commands([store])
    return done / elapsed, (after[1] - before[1]) / max(1, after[2] - before[2])


def _store(url: str, mode: str, prefix: str) -> RedisStore:
    store = create_store(StateConfig(backend="redis", mode=mode, url=url, key_prefix=prefix))  # type: ignore[arg-type]
    assert isinstance(store, RedisStore)
    return store


async def main_async(args: argparse.Namespace) -> None:
    single = RedisProcess().start()
    cluster = RedisClusterProcesses().start()
    try:
        one = _store(single.url, "standalone", "b1")
        many = _store(cluster.url, "cluster", "b3")
        exchanges = build_exchanges(args.requests, 7)
        accounts = len({e.account.id for e in exchanges})
        print(
            f"part 1: Redis operations per request, 3 replicas round-robin, {args.requests} requests of "
            f"{accounts} accounts, a sync round every {args.per_round} requests"
        )
        q_calls, q_usec, q_trips = await quota_cost(one, 2000)
        print(
            f"  {'variant':<52} {'trips/req':>9} {'ratio':>6} {'cmds/req':>8} {'ratio':>6} "
            f"{'server µs/req':>13} {'ratio':>6}"
        )
        print(
            f"  {'baseline: quota decide + settle (one node)':<52} {q_trips:9.3f} {1:6.2f} {q_calls:8.2f} "
            f"{1:6.2f} {q_usec:13.2f} {1:6.2f}"
        )
        rows = [
            ("detector, share_accounts off, node", one, False, False),
            ("detector, share_accounts on, node", one, True, False),
            ("detector, share_accounts and owners on, node", one, True, True),
            ("detector, share_accounts off, 3-master cluster", many, False, False),
            ("detector, share_accounts on, 3-master cluster", many, True, False),
            ("detector, share_accounts, owners, 3-master cluster", many, True, True),
        ]
        for name, store, share, owners in rows:
            await store.client.flushall()
            calls, usec, trips, cpu = await detector_cost(
                store, exchanges, args.per_round, share, owners=owners
            )
            print(
                f"  {name:<52} {trips:9.3f} {trips / q_trips:6.2f} {calls:8.2f} {calls / q_calls:6.2f} "
                f"{usec:13.2f} {usec / q_usec:6.2f}  (replicas' sync CPU {cpu:.0f} µs/req)"
            )
            if share and not owners and not store.clustered:
                keys = [
                    k async for k in store.client.scan_iter(match=store.key("det", "acct", "*"), count=500)
                ]
                sizes = [await store.client.memory_usage(k) or 0 for k in keys]
                print(
                    f"    shared account state in Redis: {sum(sizes) / max(1, len(sizes)):.0f} bytes "
                    "per account"
                )
        print(
            f"part 2: quota decisions (six windows) for 1,000 accounts, {args.concurrency} clients, "
            f"{args.seconds} s"
        )
        base_rate, base_usec = await capacity(one, args.seconds, args.concurrency)
        rate, usec = await capacity(many, args.seconds, args.concurrency)
        print(
            f"  {'topology':<20} {'decisions/s':>11} {'ratio':>6} {'server µs/call':>14} "
            f"{'sustains ~/s':>13} {'ratio':>6}"
        )
        node_capacity = 1e6 / base_usec
        print(
            f"  {'one node':<20} {base_rate:11.0f} {1:6.2f} {base_usec:14.2f} {node_capacity:13.0f} {1:6.2f}"
        )
        slots = [0, 0, 0]
        ports = cluster.ports
        for number in range(1000):
            port = cluster.port_of_slot(many.slot(_quota_keys(many, f"cap-{number}")[0]))
            slots[ports.index(port)] += 1
        cluster_capacity = 1e6 / usec * 1000 / max(slots)
        print(
            f"  {'3-master cluster':<20} {rate:11.0f} {rate / base_rate:6.2f} {usec:14.2f} "
            f"{cluster_capacity:13.0f} {cluster_capacity / node_capacity:6.2f}  (accounts per master {slots})"
        )
        print(
            "  (client-side decisions/s is bound by this one client process; 'sustains' is the server's limit"
            " from its own CPU per call, one core per master)"
        )
        await one.close()
        await many.close()
    finally:
        single.stop()
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--per-round", type=int, default=600)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()

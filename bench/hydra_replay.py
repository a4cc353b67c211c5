"""Replay of the simulator's schedule through one detector core, in virtual time (no HTTP).

    python -m bench.hydra_replay                       # full mix, seed 7
    python -m bench.hydra_replay --scale 0.5 --seed 3
    python -m bench.hydra_replay --detector '{"cluster": {"infra_pooling": false}}'   # a variant
    python -m bench.hydra_replay --baseline '{"cluster": {"infra_pooling": false}}'   # both, with ratios

Each account's requests get the times ``distillguard simulate`` gives them (the same start and
jittered intervals over ``--duration`` virtual seconds); the requests are analysed in that order by
one :class:`DetectorCore`, sweeps run after each request, the semantic queue is embedded every
``--embed-every`` requests (the background task's batches) and level changes are read from the
engine's risk board. What the simulator measures over real sockets with the timing noise of a
shared machine, this measures deterministically: per persona, the share of accounts at ``high``
within the budget (200 own requests; 10 cluster requests per hydra member), cluster requests to
``high`` for the hydras, and the highest level of each benign persona.
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
import time
import types
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.metrics import GatewayMetrics
from gateway.plugins import RISK_LEVELS
from gateway.plugins.base import Account as GatewayAccount
from gateway.plugins.base import Exchange
from gateway.plugins.services import PolicyServices, SharedObjects
from gateway.protocols import OPERATIONS
from gateway.risk import RiskBoard
from gateway.state.memory import MemoryStore
from policies.detector import analysis as analysis_module
from policies.detector import core as core_module
from policies.detector import semantic as semantic_module
from policies.detector.config import DetectorConfig
from policies.detector.core import DetectorCore
from policies.detector.request import observe
from policies.detector.sim.personas import personas
from policies.detector.sim.report import ATTACK_BUDGET, CLUSTER_BUDGET_PER_MEMBER
from policies.detector.sim.runner import _headers, make_accounts

CHAT = OPERATIONS["/v1/chat/completions"]
RANK = {level: rank for rank, level in enumerate(RISK_LEVELS)}


class VirtualClock:
    """time.time / time.monotonic / time.thread_time for the detector modules: the replay's clock."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def module(self) -> types.SimpleNamespace:
        return types.SimpleNamespace(
            time=lambda: self.now,
            monotonic=lambda: self.now,
            thread_time=time.thread_time,
            perf_counter=time.perf_counter,
        )


def schedule(accounts: list[Any], duration: float) -> list[tuple[float, int, int]]:
    """(time, order, account index) of every request, as the simulator's runner spaces them."""
    events: list[tuple[float, int, int]] = []
    order = 0
    for index, account in enumerate(accounts):
        persona = account.persona
        rng = random.Random(account.rng.getrandbits(64))  # the account's own rng stays for its prompts
        span = duration * persona.spread
        at = rng.uniform(0, max(0.0, duration - span) + 0.05 * duration)
        interval = span / max(1, persona.requests)
        regular = persona.style == "batch"
        for _ in range(persona.requests):
            events.append((at, order, index))
            order += 1
            at += interval if regular else interval * rng.uniform(0.3, 1.7)
    heapq.heapify(events)
    return [heapq.heappop(events) for _ in range(len(events))]


def replay(scale: float, seed: int, duration: float, detector: dict[str, Any], embed_every: int) -> dict:
    clock = VirtualClock()
    fake = clock.module()
    for module in (core_module, semantic_module, analysis_module):
        module.time = fake  # type: ignore[attr-defined]
    import policies.detector.request as request_module

    request_module.time = fake  # type: ignore[attr-defined]
    mix = personas(scale)
    accounts = make_accounts(mix, seed)
    board = RiskBoard()
    services = PolicyServices(MemoryStore("replay"), GatewayMetrics(), board, SharedObjects())
    settings = DetectorConfig.model_validate(detector)
    core = DetectorCore()
    core.clock = fake.time
    core.attach(settings, services)
    semantic = core.analysis.semantic
    reached: dict[str, dict[str, float]] = {}
    sent: dict[str, list[float]] = {a.name: [] for a in accounts}
    cluster_times: dict[str, list[float]] = {}
    events = schedule(accounts, duration)
    started = time.process_time()

    def on_change(change: Any) -> None:
        mark = reached.setdefault(change.account, {})
        for name in RISK_LEVELS[1 : RANK[change.level] + 1]:
            mark.setdefault(name, clock.now)

    board.subscribe(on_change)
    for at, _, index in events:
        clock.now = at
        account = accounts[index]
        request = account.persona.next_request(account, at / duration)
        exchange = Exchange(
            request_id="replay",
            operation=CHAT,
            account=GatewayAccount(account.name, "free"),
            body=orjson.loads(orjson.dumps(request.body)),
            headers=_headers(account),
            client_ip=account.ip,
        )
        sent[account.name].append(at)
        if account.persona.cluster:
            cluster_times.setdefault(account.persona.name, []).append(at)
        account.sent += 1
        core.process(observe(exchange, settings))
        while core.run_sweeps():
            pass
        if account.persona.multi_turn and account.history:
            account.history.append({"role": "assistant", "content": "Here is a reply of moderate length."})
        if semantic.active and len(semantic.pending) >= embed_every:
            semantic.run_now(core.analysis)
            while core.run_sweeps():
                pass
    semantic.run_now(core.analysis) if semantic.active else None
    while core.run_sweeps():
        pass
    return {
        "mix": mix,
        "accounts": accounts,
        "reached": reached,
        "sent": sent,
        "cluster_times": cluster_times,
        "cpu": time.process_time() - started,
        "requests": len(events),
    }


def results(run: dict) -> list[dict[str, Any]]:
    import bisect

    out = []
    for persona in run["mix"]:
        members = [a for a in run["accounts"] if a.persona is persona]
        row: dict[str, Any] = {"persona": persona.name, "kind": persona.kind, "accounts": len(members)}
        top = dict.fromkeys(RISK_LEVELS[1:], 0)
        within, to_high = 0, []
        cluster_times = sorted(run["cluster_times"].get(persona.name, []))
        for account in members:
            reached = run["reached"].get(account.name, {})
            for level in top:
                top[level] += level in reached
            if "high" not in reached:
                continue
            if persona.cluster:
                index = bisect.bisect_right(cluster_times, reached["high"])
                within += index <= CLUSTER_BUDGET_PER_MEMBER * len(members)
            else:
                index = max(1, bisect.bisect_right(run["sent"][account.name], reached["high"]))
                within += index <= ATTACK_BUDGET
            to_high.append(index)
        row["levels"] = top
        if persona.kind == "attack":
            row["recall_within_budget"] = round(within / len(members), 4)
            to_high.sort()
            row["to_high_median"] = to_high[len(to_high) // 2] if to_high else None
            row["to_high_max"] = to_high[-1] if to_high else None
        out.append(row)
    return out


def _print(title: str, run: dict) -> list[dict[str, Any]]:
    rows = results(run)
    print(f"{title}: {run['requests']} requests, {len(run['accounts'])} accounts, {run['cpu']:.0f} s CPU")
    for row in rows:
        if row["kind"] == "attack":
            print(
                f"  {row['persona']:<18} {row['accounts']:>4}  recall {row['recall_within_budget']:.3f}  "
                f"to high median {row['to_high_median']}  max {row['to_high_max']}  levels {row['levels']}"
            )
        else:
            print(f"  {row['persona']:<18} {row['accounts']:>4}  benign  levels {row['levels']}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--duration", type=float, default=240.0, help="virtual seconds of the run")
    parser.add_argument("--embed-every", type=int, default=32)
    parser.add_argument("--detector", default="{}", help="detector config (JSON) for this run")
    parser.add_argument("--baseline", help="detector config (JSON) of a baseline run first, then ratios")
    args = parser.parse_args()
    config = orjson.loads(args.detector)
    if args.baseline is None:
        _print("replay", replay(args.scale, args.seed, args.duration, config, args.embed_every))
        return
    base = _print(
        "baseline",
        replay(args.scale, args.seed, args.duration, orjson.loads(args.baseline), args.embed_every),
    )
    rows = _print("this config", replay(args.scale, args.seed, args.duration, config, args.embed_every))
    print("ratios (this config / baseline): recall within budget, median requests to high")
    for before, after in zip(base, rows, strict=True):
        if after["kind"] == "attack" and before["to_high_median"] and after["to_high_median"]:
            was, now = before["recall_within_budget"], after["recall_within_budget"]
            ratio = f"x{now / was:.2f}" if was else "-"
            median = after["to_high_median"] / before["to_high_median"]
            print(f"  {after['persona']:<18} recall {was:.3f} -> {now:.3f} ({ratio})  median x{median:.2f}")


if __name__ == "__main__":
    main()

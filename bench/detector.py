"""Detector micro-benchmark: per-request cost (inline and analysis) and memory per tracked account.

    python -m bench.detector            # or: python bench/detector.py [--requests N] [--accounts N]
    python -m bench.detector --repeat 5 # also each request's least CPU time over 5 runs (shared machines)
    python -m bench.detector --semantic off   # without the semantic signals (the baseline for them)
    python -m bench.detector --paced 400      # 400 requests/s through the core's background worker
                                              # (and the same requests' inline cost back to back)

Requests come from the simulator's personas (benign and attack mix, realistic
prompt lengths). Figures are quantiles of the per-request cost, printed also
as a ratio against a baseline measured in the same run: serialising the same
request body with orjson, which the engine does for every request anyway.
Memory is measured with tracemalloc over the detector core's structures.

The semantic signals (sentence embeddings) run in the background in batches: here every 32 queued
prompts are sent to the embedding process and waited for, and their CPU time (the embedding
process's included) is added to the background cost, spread over all requests (the target is the
mean: under 2 ms of background CPU per request). The resident memory of this process and of the
embedding process is printed after the run.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.metrics import GatewayMetrics
from gateway.plugins.base import Account, Exchange
from gateway.plugins.services import PolicyServices, SharedObjects
from gateway.protocols import OPERATIONS
from gateway.risk import RiskBoard
from gateway.state.memory import MemoryStore
from policies.detector.config import DetectorConfig
from policies.detector.core import DetectorCore
from policies.detector.request import observe
from policies.detector.sim.personas import personas
from policies.detector.sim.runner import _headers, make_accounts

CHAT = OPERATIONS["/v1/chat/completions"]


def build_exchanges(count: int, seed: int) -> list[Exchange]:
    accounts = make_accounts(personas(0.2), seed)
    weights = [a.persona.requests for a in accounts]
    import random

    rng = random.Random(seed)
    out = []
    for _ in range(count):
        account = rng.choices(accounts, weights)[0]
        request = account.persona.next_request(account, rng.random())
        out.append(
            Exchange(
                request_id="bench",
                operation=CHAT,
                account=Account(account.name, "free"),
                body=request.body,
                headers=_headers(account),
                client_ip=account.ip,
            )
        )
        if account.persona.multi_turn and account.history:
            account.history.append({"role": "assistant", "content": "Here is a reply of moderate length."})
    return out


def quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    n = len(ordered)
    return {
        "p50": ordered[n // 2],
        "p90": ordered[int(n * 0.9)],
        "p99": ordered[int(n * 0.99)],
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


MAX_CHARS = 1000
SEMANTIC = "auto"
_EMBED_BATCH = 32


def new_core() -> tuple[DetectorCore, DetectorConfig]:
    services = PolicyServices(MemoryStore("bench"), GatewayMetrics(), RiskBoard(), SharedObjects())
    settings = DetectorConfig.model_validate(
        {"text": {"max_chars": MAX_CHARS}, "shared": {"semantic": {"enabled": SEMANTIC}}}
    )
    core = DetectorCore()
    core.attach(settings, services)
    if core.analysis.semantic.active:
        core.analysis.semantic.compute([])  # load the model and embed the anchors: not a request's cost
    return core, settings


def embed_queued(core: DetectorCore, at_least: int = _EMBED_BATCH) -> float:
    """Embed the queued prompts once ``at_least`` wait (as the background task does); the CPU time,
    the embedding process's included (the semantic signals count it)."""
    semantic = core.analysis.semantic
    if len(semantic.pending) < at_least:
        return 0.0
    spent = semantic.seconds
    semantic.run_now(core.analysis)
    return semantic.seconds - spent


def resident_mb() -> float:
    """This process's resident set size in MB (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def bench_cost(requests: int, seed: int, repeat: int = 1) -> None:
    exchanges = build_exchanges(requests, seed)
    core, settings = new_core()
    baseline, inline, analysis, total, cpu_total = [], [], [], [], []
    embedding_cpu = 0.0
    gc.collect()
    for exchange in exchanges:
        started = time.perf_counter()
        orjson.dumps(exchange.body)
        baseline.append(time.perf_counter() - started)
        _ = exchange.request  # the engine builds the view when it admits a request, before any policy
        started = time.perf_counter()
        observation = observe(exchange, settings)
        observation.inline_seconds = time.perf_counter() - started
        inline.append(observation.inline_seconds)
        started = time.perf_counter()
        cpu = time.thread_time()
        core.process(observation)
        while core.run_sweeps():
            pass
        spent = time.perf_counter() - started
        cpu_total.append(time.thread_time() - cpu + observation.inline_seconds)
        analysis.append(spent)
        total.append(spent + observation.inline_seconds)
        embedding_cpu += embed_queued(core)
    embedding_cpu += embed_queued(core, 1)
    base = quantiles(baseline)
    print(
        f"detector cost per request over {requests} requests ({len(core.accounts)} accounts, "
        f"{len(core.index)} shared groups, {sum(g.flagged for g in core.index.groups.values())} flagged)"
    )
    print(
        f"  baseline (orjson.dumps of the request body): p50 {base['p50'] * 1e6:.1f} µs, "
        f"p99 {base['p99'] * 1e6:.1f} µs"
    )
    for name, values in (
        ("inline (request path)", inline),
        ("analysis (background)", analysis),
        ("total (wall)", total),
        ("total (CPU time)", cpu_total),
    ):
        q = quantiles(values)
        print(
            f"  {name:<22} p50 {q['p50'] * 1e6:7.1f} µs  p90 {q['p90'] * 1e6:7.1f}  "
            f"p99 {q['p99'] * 1e6:7.1f}  "
            f"max {q['max'] * 1e6:8.1f}  (p50 = {q['p50'] / base['p50']:.1f}x baseline, "
            f"p99 = {q['p99'] / base['p99']:.1f}x baseline)"
        )
    semantic = core.analysis.semantic
    lexical = statistics.fmean(cpu_total) - statistics.fmean(inline)
    background = lexical + embedding_cpu / requests
    print(
        f"  semantic signals: {'on' if semantic.active else 'off'}; {semantic.embedded} prompts embedded "
        f"({semantic.embedded / requests:.1%} of requests, {semantic.skipped} skipped), "
        f"{embedding_cpu / max(1, semantic.embedded) * 1e3:.2f} ms CPU per embedded prompt"
    )
    print(
        f"  background CPU per request, mean: {background * 1e3:.3f} ms (analysis {lexical * 1e3:.3f} ms "
        f"+ embeddings {embedding_cpu / requests * 1e3:.3f} ms) -> target <= 2 ms "
        f"{'meets' if background <= 2e-3 else 'MISSES'}"
    )
    embedder_rss = getattr(semantic._embedder, "rss", 0) / 2**20  # an embedding process's, if any
    print(
        f"  resident memory: this process {resident_mb():.0f} MB"
        + (f", the embedding process {embedder_rss:.0f} MB" if embedder_rss else "")
    )
    inline_p99 = quantiles(inline)["p99"]
    print(
        f"  target: inline p99 <= 50 µs -> {'meets' if inline_p99 <= 50e-6 else 'MISSES'} "
        f"({inline_p99 * 1e6:.1f} µs)"
    )
    measures = [("wall", total), ("CPU time", cpu_total)]
    if repeat > 1:
        # The same requests again on fresh cores: each request's least CPU time over the runs
        # leaves out what other jobs on a shared machine added (preemptions, cache thrash).
        least = cpu_total[:]
        for _ in range(repeat - 1):
            core, settings = new_core()
            gc.collect()
            for number, exchange in enumerate(exchanges):
                cpu = time.thread_time()
                observation = observe(exchange, settings)
                observation.inline_seconds = time.thread_time() - cpu
                core.process(observation)
                while core.run_sweeps():
                    pass
                least[number] = min(least[number], time.thread_time() - cpu)
        q = quantiles(least)
        print(
            f"  {'total (CPU, least of ' + str(repeat) + ')':<22} p50 {q['p50'] * 1e6:7.1f} µs  "
            f"p90 {q['p90'] * 1e6:7.1f}  p99 {q['p99'] * 1e6:7.1f}  max {q['max'] * 1e6:8.1f}"
        )
        measures.append((f"CPU time, least of {repeat} runs", least))
    for name, values in measures:
        verdict = "meets" if quantiles(values)["p99"] <= 200e-6 else "MISSES"
        print(f"  target: total p99 <= 200 µs ({name}) -> {verdict}")
    print(f"  machine load average while measuring: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


def bench_memory(accounts: int, per_account: int, seed: int) -> None:
    """Memory of the detector core after ``accounts`` accounts sent ``per_account`` fresh prompts each."""
    import random

    simulated = make_accounts(personas(1.0), seed)
    rng = random.Random(seed)
    core, settings = new_core()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for number in range(accounts):
        account = rng.choice(simulated)
        for _ in range(per_account):
            request = account.persona.next_request(account, rng.random())
            exchange = Exchange(
                request_id="bench",
                operation=CHAT,
                account=Account(f"acct-{number}", "free"),
                body=request.body,
                headers=_headers(account),
                client_ip=f"10.{number % 250}.{number // 250 % 250}.9",
            )
            core.process(observe(exchange, settings))
            embed_queued(core)
        account.history.clear()
        core.outbox.take_lists()  # the sync task writes these to the store every second
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    used = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    groups, door = len(core.index.groups), len(core.index._door)
    print(
        f"memory: {accounts} accounts x {per_account} fresh prompts -> {used / 1e6:.1f} MB "
        f"for the whole core "
        f"({used / accounts:.0f} bytes per account including its share of the index: {groups} groups, "
        f"{door} doorkeeper keys)"
    )
    tracemalloc.start()
    first = tracemalloc.take_snapshot()
    from policies.detector.features import AccountState

    states = []
    for number, state in enumerate(core.accounts.values()):
        clone = AccountState(f"clone-{number}", 0.0)
        clone.values = state.values[:]
        clone.templates = {k: list(v) for k, v in state.templates.items()}
        clone.infra = list(state.infra)
        states.append(clone)
    second = tracemalloc.take_snapshot()
    tracemalloc.stop()
    per_state = sum(stat.size_diff for stat in second.compare_to(first, "filename")) / max(1, len(states))
    print(
        f"memory per tracked account (AccountState alone): {per_state:.0f} bytes; the index is bounded "
        f"separately by shared.max_templates"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--accounts", type=int, default=2_000)
    parser.add_argument("--per-account", type=int, default=20)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--repeat", type=int, default=1, help="run the requests N times; also report each least CPU time"
    )
    parser.add_argument("--max-chars", type=int, default=1000, help="the detector's text.max_chars")
    parser.add_argument(
        "--semantic", choices=("auto", "on", "off"), default="auto", help="the semantic signals"
    )
    parser.add_argument("--no-memory", action="store_true", help="measure the per-request cost only")
    parser.add_argument(
        "--paced",
        type=float,
        metavar="RATE",
        help="instead: RATE requests/s through the core's own background worker (as in a gateway), "
        "the inline cost while the analysis and the embeddings run beside it",
    )
    args = parser.parse_args()
    global MAX_CHARS, SEMANTIC
    MAX_CHARS, SEMANTIC = args.max_chars, args.semantic
    if args.paced:
        from bench.detector_paced import bench_paced  # it imports this module's helpers

        # new_core passed in: it reads this module's settings above (this may run as __main__)
        bench_paced(args.requests, args.seed, args.paced, new_core)
        return
    bench_cost(args.requests, args.seed, args.repeat)
    if not args.no_memory:
        bench_memory(args.accounts, args.per_account, args.seed)


if __name__ == "__main__":
    main()

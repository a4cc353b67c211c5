"""Gateway CPU and added latency per non-streamed request, code before against code after, alternated.

    python -m bench.ab_request --base /tmp/base [--config policies/default.yaml | --engine]
        [--rounds 10] [--requests 300]

The request path's twin of ``bench.ab_gateway`` (which measures streamed answers): one mock
upstream and two gateways, one run from each tree (``--base`` is a checkout of the code before,
``git worktree add /tmp/base <commit>``) with the same policy (the bench account's quota raised,
as ``bench.gateway`` does; ``--engine``: every policy removed), stay up together and are driven
alternately at concurrency 1 in bursts of ``--requests`` chat completions, the order flipping
every round, each burst preceded by one of the mock directly; load from elsewhere on this shared
machine then falls on both alike. Prints each gateway's CPU time per request (``/proc``, user +
system, with its live children: the detector's embedding process) and its p50 latency less the
direct p50 of the same rounds (the added p50 of the performance issue), and the ratios after /
before.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import time
from pathlib import Path

import uvloop

from bench.ab_gateway import add_pair_arguments, chat_request, prepare_pair, start_gateway
from bench.gateway import (
    KEY,
    _one,
    semantic_active,
    wait_semantic_ready,
)
from bench.processes import cpu_seconds

ROOT = Path(__file__).resolve().parent.parent


async def burst(port: int, request: bytes, requests: int) -> list[float]:
    """``requests`` requests one after the other on one kept-alive connection; their latencies."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    latencies = []
    try:
        for _ in range(requests):
            latency, _, ok = await _one(reader, writer, request, False)
            if not ok:
                raise SystemExit(f"port {port} answered an error")
            latencies.append(latency)
    finally:
        writer.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_pair_arguments(parser, rounds=10)
    parser.add_argument("--requests", type=int, default=300, help="requests per burst")
    args = parser.parse_args()
    setup = prepare_pair(args)
    trees, work, policies, keys = setup.trees, setup.work, setup.policies, setup.keys
    mock_port, mock = setup.mock_port, setup.mock
    gateways: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    headers = {"authorization": f"Bearer {KEY}", "x-mock-reasoning": "none"}
    request = chat_request(headers, stream=False)
    try:
        upstream = f"http://127.0.0.1:{mock_port}"
        for label, tree in trees.items():
            log = work / f"{label}.log"
            gateways[label] = start_gateway(tree, policies[label], keys, upstream, log)
            # The model loads on the first prompts: not in a measured burst (code from before the
            # semantic signals has no embedding process to wait for).
            embeds = (tree / "policies" / "detector" / "embedding.py").exists()
            if embeds and semantic_active(policies[label]):
                wait_semantic_ready(gateways[label][1], log, gateways[label][0])
        for _, port in gateways.values():  # warm-up: lazily built tables, the first connections
            uvloop.run(burst(port, request, args.requests // 2))
        cpu = dict.fromkeys(gateways, 0.0)
        latencies: dict[str, list[float]] = {label: [] for label in [*gateways, "direct"]}
        loads: list[float] = []
        for round_ in range(args.rounds):
            latencies["direct"] += uvloop.run(burst(mock_port, request, args.requests // 4))
            order = list(gateways) if round_ % 2 == 0 else list(reversed(gateways))
            for label in order:
                process, port = gateways[label]
                before = cpu_seconds(process.pid)
                latencies[label] += uvloop.run(burst(port, request, args.requests))
                cpu[label] += cpu_seconds(process.pid) - before
            loads.append(os.getloadavg()[0])
            time.sleep(0.05)
    finally:
        for process, _ in gateways.values():
            process.terminate()
        mock.terminate()
    print(
        f"{'engine alone' if args.engine else args.config}; {args.rounds} alternated rounds x "
        f"{args.requests} requests, concurrency 1, non-streamed; "
        f"load average {min(loads):.1f}-{max(loads):.1f}"
    )
    direct = statistics.median(latencies["direct"])
    per_request = {label: cpu[label] / len(latencies[label]) * 1e6 for label in gateways}
    added = {label: (statistics.median(latencies[label]) - direct) * 1e3 for label in gateways}
    print(f"  direct p50 {direct * 1e3:.3f} ms")
    for label, tree in trees.items():
        print(
            f"  {label:<7} {tree}: {per_request[label]:7.0f} us CPU per request, "
            f"added p50 {added[label]:.3f} ms"
        )
    print(
        f"  after / before: CPU {per_request['after'] / per_request['before']:.3f}, "
        f"added p50 {added['after'] / added['before']:.3f}"
    )


if __name__ == "__main__":
    main()

"""The upstream client alone: the gateway's HTTP/1.1 client against aiohttp's, in one run.

    python -m bench.upstream_client [--requests 3000] [--rounds 5] [--held 1000]

Both clients send the benchmark's chat completion to the mock upstream (a child process) over
keep-alive connections, one request at a time, and read the whole JSON answer; then each holds
``--held`` streams open after their first event (the mock streaming one token per minute). Prints,
per client, the CPU time of this process per request (best of ``--rounds`` interleaved rounds) and
the Python memory held per open stream (tracemalloc, the client's own objects and their sockets'),
with aiohttp's figure as the baseline. The gateway around the client is left out: ``bench.gateway``
and ``bench.idle_streams`` measure it whole.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable

import aiohttp
import orjson
import uvloop

from bench.gateway import BODY, ROOT
from bench.processes import bench_env, wait_ready
from gateway.config.schema import UpstreamConfig
from gateway.metrics import GatewayMetrics
from gateway.upstream import UpstreamPool

PAYLOAD = orjson.dumps({**BODY, "stream": False})
STREAM_PAYLOAD = orjson.dumps({**BODY, "stream": True})
HEADERS = {"content-type": "application/json", "x-mock-reasoning": "none"}
STREAM_HEADERS = {**HEADERS, "x-mock-delay-ms": "60000"}  # the first event, then a minute per token


async def aiohttp_client(url: str, count: int) -> Callable[[], Awaitable[None]]:
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=count + 64, limit_per_host=0),
        timeout=aiohttp.ClientTimeout(total=None),
        skip_auto_headers=("User-Agent",),
    )
    held: list[aiohttp.ClientResponse] = []

    async def one() -> None:
        async with session.post(url + "/v1/chat/completions", data=PAYLOAD, headers=HEADERS) as response:
            await response.read()

    async def hold() -> None:
        response = await session.post(
            url + "/v1/chat/completions", data=STREAM_PAYLOAD, headers=STREAM_HEADERS
        )
        await response.content.readany()
        held.append(response)

    async def close() -> None:
        for response in held:
            response.close()
        await session.close()

    one.hold = hold  # type: ignore[attr-defined]
    one.close = close  # type: ignore[attr-defined]
    return one


async def lean_client(url: str, count: int) -> Callable[[], Awaitable[None]]:
    config = UpstreamConfig(
        name="mock",
        url=url,
        max_connections=count + 64,
        timeouts={"connect": 10, "first_byte": 120, "idle": 120, "total": 600},
    )
    pool = UpstreamPool([config], GatewayMetrics())
    upstream = pool.upstreams[0]
    held: list[object] = []

    async def one() -> None:
        response = await pool.open(upstream, "POST", "/v1/chat/completions", dict(HEADERS), PAYLOAD)
        try:
            await response.read_all()
        finally:
            response.close()

    async def hold() -> None:
        response = await pool.open(
            upstream, "POST", "/v1/chat/completions", dict(STREAM_HEADERS), STREAM_PAYLOAD
        )
        await response.read_chunk()
        held.append(response)

    async def close() -> None:
        for response in held:
            response.close()  # type: ignore[attr-defined]
        await pool.close()

    one.hold = hold  # type: ignore[attr-defined]
    one.close = close  # type: ignore[attr-defined]
    return one


async def cpu_per_request(one: Callable[[], Awaitable[None]], requests: int) -> float:
    started = time.process_time()
    for _ in range(requests):
        await one()
    return (time.process_time() - started) / requests


async def memory_per_stream(hold: Callable[[], Awaitable[None]], count: int) -> float:
    for _ in range(20):
        await hold()  # warm: the code paths, the pools
    tracemalloc.start(1)
    try:
        before = tracemalloc.get_traced_memory()[0]
        for start in range(0, count, 100):
            await asyncio.gather(*(hold() for _ in range(min(100, count - start))))
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return (after - before) / count


async def run(url: str, requests: int, rounds: int, held: int) -> None:
    makers = {"aiohttp": aiohttp_client, "gateway.http_client": lean_client}
    cpu: dict[str, list[float]] = {name: [] for name in makers}
    clients = {name: await make(url, held) for name, make in makers.items()}
    for one in clients.values():
        await cpu_per_request(one, 200)
    for _ in range(rounds):
        for name, one in clients.items():
            cpu[name].append(await cpu_per_request(one, requests))
    memory = {}
    for name, one in clients.items():
        memory[name] = await memory_per_stream(one.hold, held)  # type: ignore[attr-defined]
        await one.close()  # type: ignore[attr-defined]
    base_cpu, base_memory = min(cpu["aiohttp"]), memory["aiohttp"]
    print(f"{requests} requests x {rounds} rounds (best), {held} held streams; aiohttp is the baseline")
    print(f"{'client':<22}{'cpu us/req':>11}{'x aiohttp':>10}{'bytes/stream':>14}{'x aiohttp':>10}")
    for name in makers:
        best = min(cpu[name])
        print(
            f"{name:<22}{best * 1e6:>11.1f}{best / base_cpu:>10.2f}"
            f"{memory[name]:>14.0f}{memory[name] / base_memory:>10.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--held", type=int, default=1000)
    args = parser.parse_args()
    from tests.support import free_port

    port = free_port()
    env = bench_env()
    mock = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "mock-upstream", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/healthz", mock)
        uvloop.run(run(f"http://127.0.0.1:{port}", args.requests, args.rounds, args.held))
    finally:
        mock.terminate()
        mock.wait()


if __name__ == "__main__":
    main()

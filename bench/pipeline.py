"""What each policy of a preset costs per request, in process, against an empty pipeline in the same run.

    python -m bench.pipeline [--config policies/default.yaml] [--requests 2000] [--rounds 5]

Takes the default tier of the preset and runs a non-streaming chat exchange
through the policy phases the engine calls (request, response, after response,
and for the detector its background analysis) for: an empty pipeline (the
baseline), each policy alone with its preset config, and all of them in the
preset's order. The request is the one ``bench.gateway`` sends; the response is
the mock upstream's real answer to it (fetched once, copied per request, as the
engine parses a fresh body per request). Figures are process CPU time per
request, the best of ``--rounds`` interleaved rounds (the machine is shared),
with the cost each adds over the baseline. Quota limits are raised so that it
decides every request without refusing one.

This isolates the policies from HTTP and the event loop; ``bench.gateway``
measures the whole gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from bench.gateway import BODY, UNLIMITED_QUOTA
from gateway.mock.server import create_mock_app
from tests.policy_harness import PolicyHarness

ROOT = Path(__file__).resolve().parent.parent
SECRETS = ("DISTILLGUARD_WATERMARK_KEY", "DISTILLGUARD_SEAL_KEY", "DISTILLGUARD_LOGPROB_NOISE_KEY")


def preset_policies(config: Path) -> list[tuple[str, dict[str, Any]]]:
    """(name, config) of the preset's default tier, in order; quota limits raised so nothing is refused."""
    data = yaml.safe_load(config.read_text())
    tier = data["tiers"][data.get("default_tier", "default")]
    out = []
    for entry in tier["policies"]:
        settings = dict(entry.get("config") or {})
        if entry["name"] == "quota":
            settings |= UNLIMITED_QUOTA
        out.append((entry["name"], settings))
    return out


async def upstream_body() -> dict[str, Any]:
    """The mock upstream's answer to the benchmark request, over its ASGI app."""
    transport = httpx.ASGITransport(app=create_mock_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://mock") as client:
        reply = await client.post(
            "/v1/chat/completions", json={**BODY, "stream": False}, headers={"x-mock-reasoning": "none"}
        )
        reply.raise_for_status()
        return reply.json()


async def run_round(harness: PolicyHarness, requests: int, response: bytes) -> float:
    """CPU seconds per request for ``requests`` exchanges (distinct accounts, as real traffic has)."""
    started = time.process_time()
    for index in range(requests):
        exchange = harness.exchange("chat.completions", copy.deepcopy(BODY), account=f"acct-{index % 500}")
        await harness.request(exchange)
        await harness.response(exchange, orjson.loads(response))
        await harness.after(exchange)
        if index % 64 == 63:
            await asyncio.sleep(0)  # let background tasks (the detector's analysis) run, as the loop would
    for policy in harness.pipeline.policies:
        if policy.name == "detector":
            await policy.core.drain()  # type: ignore[attr-defined]  # count its queued analysis too
    return (time.process_time() - started) / requests


async def main_async(config: Path, requests: int, rounds: int) -> None:
    response = orjson.dumps(await upstream_body())
    policies = preset_policies(config)
    variants: dict[str, list[tuple[str, dict[str, Any]]]] = {"(empty pipeline)": []}
    variants |= {name: [(name, settings)] for name, settings in policies}
    variants["all, in preset order"] = policies
    harnesses = {}
    for label, entries in variants.items():
        harness = PolicyHarness(entries)
        await harness.start()
        await run_round(harness, 200, response)  # warm-up: caches, lazily built tables
        harnesses[label] = harness
    best = {label: float("inf") for label in variants}
    for _ in range(rounds):
        for label, harness in harnesses.items():
            best[label] = min(best[label], await run_round(harness, requests, response))
    words = len(orjson.loads(response)["choices"][0]["message"]["content"].split())
    print(f"preset {config}, default tier; {requests} requests x best of {rounds} rounds")
    print(f"answer: {words} words (the mock's reply to bench.gateway's request)")
    print(f"{'variant':<24}{'us/request':>11}{'added us':>10}{'x baseline':>11}")
    base = best["(empty pipeline)"]
    for label, seconds in best.items():
        print(f"{label:<24}{seconds * 1e6:>11.1f}{(seconds - base) * 1e6:>10.1f}{seconds / base:>11.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "policies" / "default.yaml"))
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for name in SECRETS:
        os.environ.setdefault(name, "bench-secret-" + name.lower())
    asyncio.run(main_async(Path(args.config), args.requests, args.rounds))


if __name__ == "__main__":
    main()

"""The stream path's CPU per event, in process: parse, the preset's stream filters, renumber, encode.

    python -m bench.stream_events [--config policies/default.yaml] [--answers 300] [--rounds 7]
        [--profile out.prof]

The mock upstream's streamed answer to ``bench.gateway``'s request (66 events, no reasoning) is
fetched once, after the preset's request phase rewrote the request as it does in the gateway. Each
answer is then parsed from its bytes (``SSEParser``), run through the stream phase the relay runs
(usage observation, the stream chain of each policy with a stream filter, the adapter's
renumbering) and written out (the wire text where no filter ran, else re-encoded), for: the engine
alone (no policy), each stream policy of the preset alone, and the preset's default tier whole.
Figures are process CPU time per upstream event, the best of ``--rounds`` interleaved rounds (the
machine is shared), with the ratio against the engine alone in the same run. The per-request part
of the gateway (HTTP, the request phase) is not in these figures: ``bench.gateway`` and
``bench.compare`` measure the whole gateway.

``--profile FILE`` writes a cProfile of the preset's rounds to FILE and prints its top frames by
own time.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import cProfile
import io
import os
import pstats
import time
from pathlib import Path
from typing import Any

import httpx

from bench.gateway import BODY
from bench.pipeline import SECRETS, preset_policies
from gateway.mock.server import create_mock_app
from gateway.plugins.base import Exchange
from gateway.sse import SSEParser
from tests.policy_harness import PolicyHarness

ROOT = Path(__file__).resolve().parent.parent
STREAM_POLICIES = ("reasoning", "logprobs", "watermark")
HEADERS = {"x-mock-reasoning": "none"}  # bench.gateway's answer: 58 words, 66 events


async def upstream_stream(body: dict[str, Any]) -> bytes:
    """The mock upstream's streamed answer to ``body``, as bytes."""
    transport = httpx.ASGITransport(app=create_mock_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://mock") as client:
        reply = await client.post("/v1/chat/completions", json=body, headers=HEADERS)
        reply.raise_for_status()
        return reply.content


class Variant:
    """One configuration: its harness, and the request body its request phase produced."""

    def __init__(self, harness: PolicyHarness, body: dict[str, Any], upstream: bytes) -> None:
        self.harness = harness
        self.body = body
        self.upstream = upstream
        self.filters = 0  # stream filters the last answer ran through

    def answer(self, exchange: Exchange, chunks: list[bytes]) -> int:
        """Relay one answer, chunk by chunk as the network delivers it; returns the bytes written."""
        chain = self.harness.pipeline.open_stream(exchange)
        self.filters = chain.filters
        adapter = exchange.operation.adapter
        name = exchange.operation.name
        usage = exchange.usage
        parser = SSEParser()
        written = 0
        for chunk in chunks:
            out = []
            for event in parser.feed(chunk):
                adapter.observe_usage(name, event, usage)
                if adapter.is_terminal(event, name):
                    out.extend(chain.end(event))
                elif chain.empty:
                    out.append(event)
                else:
                    out.extend(chain.process(event))
            if chain.empty:
                written += len(b"".join(event.wire or event.encode() for event in out))
            else:
                written += len(b"".join(event.encode() for event in out))
        if not chain.ended:
            written += len(b"".join(event.encode() for event in chain.end()))
        return written

    async def round(
        self, answers: int, chunks: list[bytes], profiler: cProfile.Profile | None = None
    ) -> float:
        """CPU seconds of the stream phase of ``answers`` answers (each after its own request phase,
        which the stream filters depend on and which is not counted)."""
        spent = 0.0
        harness = self.harness
        for index in range(answers):
            exchange = harness.exchange(
                "chat.completions", copy.deepcopy(self.body), account=f"a{index % 50}"
            )
            await harness.request(exchange)
            if profiler is not None:
                profiler.enable()
            started = time.process_time()
            self.answer(exchange, chunks)
            spent += time.process_time() - started
            if profiler is not None:
                profiler.disable()
            await harness.after(exchange)
        return spent


def split_events(upstream: bytes) -> list[bytes]:
    """The answer as the mock writes it: one network chunk per event."""
    return [part + b"\n\n" for part in upstream.split(b"\n\n") if part]


async def build(config: Path) -> dict[str, Variant]:
    policies = preset_policies(config)
    variants: dict[str, list[tuple[str, dict[str, Any]]]] = {"engine alone": []}
    variants |= {name: [(name, s)] for name, s in policies if name in STREAM_POLICIES}
    variants["preset, default tier"] = policies
    built = {}
    for label, entries in variants.items():
        harness = PolicyHarness(entries)
        await harness.start()
        body = {**copy.deepcopy(BODY), "stream": True}
        exchange = harness.exchange("chat.completions", copy.deepcopy(body))
        await harness.request(exchange)
        await harness.after(exchange)
        built[label] = Variant(harness, body, await upstream_stream(exchange.body))
    return built


async def measure(args: argparse.Namespace) -> None:
    variants = await build(Path(args.config))
    chunks = {label: split_events(v.upstream) for label, v in variants.items()}
    for label, variant in variants.items():
        await variant.round(20, chunks[label])  # warm-up: lazily built tables
    best = {label: float("inf") for label in variants}
    for _ in range(args.rounds):
        for label, variant in variants.items():
            best[label] = min(best[label], await variant.round(args.answers, chunks[label]))
    events = {label: len(c) for label, c in chunks.items()}
    print(f"preset {args.config}, default tier; {args.answers} answers x best of {args.rounds} rounds")
    print(f"answer: {events['engine alone']} upstream events (the mock's reply to bench.gateway's request)")
    print(f"{'variant':<22}{'filters':>8}{'us/event':>9}{'added us':>10}{'x engine':>9}")
    base = best["engine alone"] / args.answers / events["engine alone"]
    for label, seconds in best.items():
        per_event = seconds / args.answers / events[label]
        print(
            f"{label:<22}{variants[label].filters:>8}{per_event * 1e6:>9.2f}{(per_event - base) * 1e6:>10.2f}"
            f"{per_event / base:>9.2f}"
        )
    if args.profile:
        profiler = cProfile.Profile()
        await variants["preset, default tier"].round(args.answers, chunks["preset, default tier"], profiler)
        profiler.dump_stats(args.profile)
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(30)
        print(text.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "policies" / "default.yaml"))
    parser.add_argument("--answers", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", help="write a cProfile of the preset's rounds to this file")
    args = parser.parse_args()
    for name in SECRETS:
        os.environ.setdefault(name, "bench-secret-" + name.lower())
    asyncio.run(measure(args))


if __name__ == "__main__":
    main()

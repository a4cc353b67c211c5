"""``python -m bench.logprobs``: added cost per streamed token carrying top-20 logprobs.

The upstream bytes are the mock's real chat (and Responses) streams, one token
per event, each with 20 alternatives. Each configuration relays them as the
engine does (SSE parse, the policies' stream chain, re-encode) in this process;
the baseline is the same relay with no policy, measured in the same run.
Figures are the best of several rounds (the machine is shared), in microseconds
per token, with the ratio to the baseline and the cost the policy adds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

from gateway.mock import openai_shapes
from gateway.mock.generation import generate
from gateway.sse import SSEParser
from tests.policy_harness import PolicyHarness, encode_events

CONFIGS: dict[str, dict[str, Any] | None] = {
    "passthrough (no policy)": None,
    "top_k 20 (nothing to cut)": {"top_k": 20},
    "top_k 5": {"top_k": 5},
    "top_k 5 + grid 0.5": {"top_k": 5, "grid": 0.5},
    "top_k 5 + grid 0.5 + keyed noise": {"top_k": 5, "grid": 0.5, "noise": {"scale": 0.5}},
    "top_k 20 + grid 0.5 + keyed noise": {"top_k": 20, "grid": 0.5, "noise": {"scale": 0.5}},
    "drop logprobs": {"logprobs": False, "on_excess": "clamp"},
}


def upstream(operation: str, tokens: int) -> tuple[bytes, int]:
    body = {"messages": [{"role": "user", "content": "Explain caches in depth, please."}]}
    gen = generate(body, max_tokens=None, with_reasoning=False, top_logprobs=20)
    while len(gen.tokens) < tokens:  # longer answers: repeat the generated steps
        gen.tokens += gen.tokens
        gen.logprobs += gen.logprobs
    gen.tokens, gen.logprobs = gen.tokens[:tokens], gen.logprobs[:tokens]
    if operation == "chat.completions":
        events = openai_shapes.chat_stream(gen, "mock-small", "none", False, 1)
    else:
        events = openai_shapes.response_stream(gen, "mock-small", False, 1)
    return encode_events(events), tokens


def relay_seconds(
    harness: PolicyHarness | None, operation: str, data: bytes, request: dict[str, Any]
) -> float:
    """One relay of ``data``: parse in 4 KiB reads, filter, encode (what gateway/relay.py does per event)."""
    chain = None
    if harness is not None:
        exchange = harness.exchange(operation, dict(request))
        asyncio.run(harness.request(exchange))
    started = time.perf_counter()
    if harness is not None:
        chain = harness.pipeline.open_stream(exchange)
    parser = SSEParser()
    out = 0
    for offset in range(0, len(data), 4096):
        for event in parser.feed(data[offset : offset + 4096]):
            for sent in chain.process(event) if chain is not None else [event]:
                out += len(sent.encode())
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.logprobs", description=__doc__)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("DISTILLGUARD_LOGPROB_NOISE_KEY", "bench-logprob-noise-key-0123456789")
    requests = {
        "chat.completions": {
            "model": "m",
            "messages": [],
            "stream": True,
            "logprobs": True,
            "top_logprobs": 20,
        },
        "responses": {"model": "m", "input": "x", "stream": True, "top_logprobs": 20},
    }
    for operation, request in requests.items():
        data, tokens = upstream(operation, args.tokens)
        size = len(data) / tokens
        print(f"# {operation}: {tokens} streamed tokens, 20 alternatives each, {size:.0f} bytes/token")
        harnesses = {
            name: None if config is None else PolicyHarness([("logprobs", {"on_excess": "clamp", **config})])
            for name, config in CONFIGS.items()
        }
        best = {name: float("inf") for name in CONFIGS}
        for _ in range(args.rounds):  # interleaved, so that load changes hit every configuration alike
            for name, harness in harnesses.items():
                best[name] = min(best[name], relay_seconds(harness, operation, data, request))
        base = best["passthrough (no policy)"]
        for name in CONFIGS:
            per_token = best[name] / tokens * 1e6
            added = (best[name] - base) / tokens * 1e6
            ratio = best[name] / base
            print(f"{name:<38} {per_token:8.1f} us/token  x{ratio:5.2f}  added {added:+7.1f} us/token")


if __name__ == "__main__":
    main()

"""Reconciliation equals the reported usage however the upstream stream is chunked, and equals the
non-streamed result; the quota never changes a streamed byte."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.mock import anthropic_shapes, gemini_shapes, openai_shapes
from gateway.mock.generation import Generation, generate
from gateway.state.memory import MemoryStore
from tests.policies.quota.helpers import DAY_US, ended, harness, remaining, sample
from tests.policy_harness import encode_events

DAILY = 8640  # refills a token every 10 s
REASONING = 5000
PROMPT = "Explain how a cache decides what to evict, step by step."


def _gen(body: dict[str, Any], reasoning: bool) -> Generation:
    return generate(
        body, max_tokens=body.get("max_tokens") or 400, with_reasoning=reasoning, top_logprobs=None
    )


def _chat() -> tuple[str, dict[str, Any], bytes, dict[str, Any], int, int]:
    body = {"model": "mock-reasoner", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 400}
    gen = _gen(body, True)
    stream = encode_events(openai_shapes.chat_stream(gen, "mock-reasoner", "reasoning_content", True, 1))
    whole = openai_shapes.chat_completion(gen, "mock-reasoner", "reasoning_content", 1, [gen])
    return (
        "chat.completions",
        body,
        stream,
        whole,
        gen.prompt_tokens + gen.completion_tokens,
        gen.reasoning_tokens,
    )


def _responses() -> tuple[str, dict[str, Any], bytes, dict[str, Any], int, int]:
    body = {"model": "mock-reasoner", "input": PROMPT, "max_output_tokens": 400, "reasoning": {}}
    gen = generate(body, max_tokens=400, with_reasoning=True, top_logprobs=None)
    stream = encode_events(openai_shapes.response_stream(gen, "mock-reasoner", False, 2))
    whole = openai_shapes.response_object(gen, "mock-reasoner", False)
    return "responses", body, stream, whole, gen.prompt_tokens + gen.completion_tokens, gen.reasoning_tokens


def _messages() -> tuple[str, dict[str, Any], bytes, dict[str, Any], int, int]:
    body = {"model": "claude-mock", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 400}
    gen = _gen(body, False)
    stream = encode_events(anthropic_shapes.message_stream(gen, "claude-mock", False, False, 3))
    whole = anthropic_shapes.message(gen, "claude-mock", False, False)
    return "messages", body, stream, whole, gen.prompt_tokens + gen.completion_tokens, 0


def _gemini() -> tuple[str, dict[str, Any], bytes, dict[str, Any], int, int]:
    body = {
        "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
        "generationConfig": {"maxOutputTokens": 400, "thinkingConfig": {"includeThoughts": True}},
    }
    gen = generate(gemini_shapes.generation_body(body), max_tokens=400, with_reasoning=True, top_logprobs=0)
    stream = encode_events(gemini_shapes.stream([gen], "gemini-mock", True, False, 0, 2))
    whole = gemini_shapes.response([gen], "gemini-mock", True, False, 0)
    return (
        "streamGenerateContent",
        body,
        stream,
        whole,
        gen.prompt_tokens + gen.completion_tokens,
        gen.reasoning_tokens,
    )


SHAPES: list[Callable[[], tuple[str, dict[str, Any], bytes, dict[str, Any], int, int]]] = [
    _chat,
    _responses,
    _messages,
    _gemini,
]
CONFIG = {"tokens_per_day": DAILY, "reasoning_tokens_per_day": REASONING}


async def _settle_stream(operation: str, body: dict[str, Any], upstream: bytes, chunks: list[int]) -> Any:
    store = MemoryStore("s")
    h = await harness(store, CONFIG, tier="pro")
    exchange = h.exchange(operation, {**body, "stream": True})
    await h.request(exchange)
    out = h.stream(exchange, upstream, chunks=chunks)
    ended(exchange, streamed=True)
    await h.after(exchange)
    tokens = await remaining(store, "acct-1", "tpd", DAILY, DAY_US)
    reasoning = await remaining(store, "acct-1", "reasoning", REASONING, DAY_US)
    return out, tokens, reasoning


async def _settle_whole(operation: str, body: dict[str, Any], whole: dict[str, Any]) -> tuple[int, int]:
    store = MemoryStore("w")
    h = await harness(store, CONFIG, tier="pro")
    exchange = h.exchange(operation, dict(body))
    await h.request(exchange)
    await h.response(exchange, whole)
    ended(exchange)
    await h.after(exchange)
    return (
        await remaining(store, "acct-1", "tpd", DAILY, DAY_US),
        await remaining(store, "acct-1", "reasoning", REASONING, DAY_US),
    )


@settings(max_examples=60, deadline=None)
@given(shape=st.sampled_from(SHAPES), chunks=st.lists(st.integers(1, 64), max_size=80))
def test_reconciliation_is_independent_of_chunking(
    shape: Callable[[], tuple[str, dict[str, Any], bytes, dict[str, Any], int, int]], chunks: list[int]
) -> None:
    operation, body, upstream, whole, total, reasoning_tokens = shape()
    consumed_before = sample("distillguard_quota_tokens_total", tier="pro", kind="consumed")
    out, tokens_left, reasoning_left = asyncio.run(_settle_stream(operation, body, upstream, chunks))
    consumed = sample("distillguard_quota_tokens_total", tier="pro", kind="consumed") - consumed_before
    assert consumed == total
    assert b"".join(event.encode() for event in out) == upstream  # the quota changes no byte
    # The daily budgets refill slowly (a token per 10 s or more): the probe sees what was charged.
    assert DAILY - total <= tokens_left <= DAILY - total + 1
    assert REASONING - reasoning_tokens <= reasoning_left <= REASONING - reasoning_tokens + 1
    whole_tokens, whole_reasoning = asyncio.run(_settle_whole(operation, body, whole))
    assert abs(whole_tokens - tokens_left) <= 1 and abs(whole_reasoning - reasoning_left) <= 1

"""Anthropic thinking blocks in every mode, whole and streamed, accumulated by the anthropic SDK itself."""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

import pytest
from anthropic._models import construct_type
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import RawMessageStreamEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.mock import anthropic_shapes
from gateway.mock.generation import Generation
from gateway.mock.text import tokenize
from gateway.sse import StreamEvent
from policies.reasoning.withhold import estimate_tokens
from tests.policies.reasoning.support import (
    MODES,
    answer_text,
    chunk_sizes,
    leaks,
    reasoning_text,
    unseal_all,
)
from tests.policy_harness import PolicyHarness, encode_events

_FIELDS = {"text": ("text",), "thinking": ("thinking", "signature"), "redacted_thinking": ("data",)}


@cache
def harness(mode: str, keep_provider_encrypted: bool = True) -> PolicyHarness:
    return PolicyHarness([("reasoning", {"mode": mode, "keep_provider_encrypted": keep_provider_encrypted})])


def blocks(content: list[Any]) -> list[dict[str, Any]]:
    out = []
    for block in content:
        data = block if isinstance(block, dict) else block.to_dict()
        out.append({"type": data["type"], **{key: data[key] for key in _FIELDS[data["type"]]}})
    return out


def sdk_content(events: list[StreamEvent]) -> list[dict[str, Any]]:
    """What ``client.messages.stream(...)`` accumulates from these events."""
    snapshot = None
    for event in events:
        parsed = construct_type(type_=RawMessageStreamEvent, value=event.json)  # type: ignore[arg-type]
        snapshot = accumulate_event(event=parsed, current_snapshot=snapshot, json_bufs={})  # type: ignore[arg-type]
    assert snapshot is not None
    return blocks(snapshot.content)


def run(
    h: PolicyHarness, gen: Generation, omitted: bool, redacted: bool, per_chunk: int, chunks: list[int]
) -> tuple[dict[str, Any], list[StreamEvent]]:
    request = {"model": "claude-mock", "max_tokens": 2048, "messages": []}
    exchange = h.exchange("messages", dict(request))
    body = asyncio.run(h.response(exchange, anthropic_shapes.message(gen, "claude-mock", omitted, redacted)))
    exchange = h.exchange("messages", dict(request, stream=True))
    raw = encode_events(anthropic_shapes.message_stream(gen, "claude-mock", omitted, redacted, per_chunk))
    return body, h.stream(exchange, raw, chunks=chunks)


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=30, deadline=None)
@given(
    reasoning=reasoning_text,
    answer=answer_text,
    omitted=st.booleans(),
    redacted=st.booleans(),
    per_chunk=st.integers(1, 5),
    chunks=chunk_sizes,
)
def test_stream_equals_body_and_nothing_leaks(
    mode: str, reasoning: str, answer: str, omitted: bool, redacted: bool, per_chunk: int, chunks: list[int]
) -> None:
    gen = Generation("p", tokenize(answer or "ok"), reasoning, "", 3)
    body, streamed = run(harness(mode), gen, omitted, redacted, per_chunk, chunks)
    assert unseal_all(sdk_content(streamed)) == unseal_all(blocks(body["content"]))
    # Indexes are consecutive from 0 and each stop closes the block that started last.
    starts = [e.json["index"] for e in streamed if e.json and e.json["type"] == "content_block_start"]
    stops = [e.json["index"] for e in streamed if e.json and e.json["type"] == "content_block_stop"]
    assert starts == stops == list(range(len(body["content"])))
    if mode == "allow":
        return
    assert leaks(reasoning, streamed) == [] and leaks(reasoning, body) == []
    kinds = [block["type"] for block in body["content"]]
    thinking = [block for block in body["content"] if block["type"] == "thinking"]
    original = anthropic_shapes.message(gen, "claude-mock", omitted, redacted)["content"]
    if mode == "seal":
        opened = unseal_all(body["content"])
        assert [b.get("signature", b.get("data")) for b in opened[:-1]] == [
            {"sealed": b} for b in original[:-1]
        ]
        assert all(b["thinking"] == "" for b in thinking)
        return
    kept_opaque = [b for b in original if b["type"] == "redacted_thinking" or b.get("thinking") == ""]
    if mode in ("drop", "summary"):
        assert kinds == [b["type"] for b in kept_opaque] + ["text"]
        assert thinking == [b for b in kept_opaque if b["type"] == "thinking"]
    else:  # redact
        if omitted:
            assert thinking == [original[0]]
        else:
            placeholder = f"[reasoning withheld: {estimate_tokens(len(reasoning))} tokens]"
            assert thinking == [{"type": "thinking", "thinking": placeholder, "signature": ""}]
        assert kinds[-1] == "text" and len(kinds) == len(original)


def test_opaque_blocks_can_be_withheld_too() -> None:
    gen = Generation("p", tokenize("ok then"), "αβγδεζηθικλμν", "", 3)
    body, streamed = run(harness("drop", keep_provider_encrypted=False), gen, True, True, 1, [])
    assert [b["type"] for b in body["content"]] == ["text"]
    assert sdk_content(streamed) == [{"type": "text", "text": "ok then"}]


def test_text_block_indexes_are_renumbered() -> None:
    gen = Generation("p", tokenize("ok then"), "αβγδεζηθικλμν", "", 3)
    _, streamed = run(harness("drop", keep_provider_encrypted=False), gen, False, True, 1, [])
    indexes = [e.json.get("index") for e in streamed if e.json and e.json["type"].startswith("content_block")]
    assert set(indexes) == {0}


def test_thinking_tokens_from_usage_feed_the_metric() -> None:
    h = PolicyHarness([("reasoning", {"mode": "drop"})])
    gen = Generation("p", tokenize("ok"), "αβγδεζηθικλμν", "", 3)
    exchange = h.exchange("messages", {"model": "claude-mock", "max_tokens": 2048, "messages": []})
    body = anthropic_shapes.message(gen, "claude-mock", False, False)
    body["usage"]["output_tokens_details"] = {"thinking_tokens": 777}
    before = _withheld("drop", "messages")
    asyncio.run(h.request(exchange))
    asyncio.run(h.response(exchange, body))
    asyncio.run(h.after(exchange))
    assert _withheld("drop", "messages") - before == 777


def _withheld(mode: str, fmt: str) -> float:
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value(
        "distillguard_reasoning_withheld_tokens_total", {"mode": mode, "format": fmt}
    )
    return value or 0.0


def test_signature_only_blocks_count_the_upstream_thinking_tokens() -> None:
    h = PolicyHarness([("reasoning", {"mode": "drop"})])
    gen = Generation("p", tokenize("ok"), "αβγδεζηθικλμν", "", 3)
    exchange = h.exchange("messages", {"model": "claude-mock", "max_tokens": 2048, "messages": []})
    body = anthropic_shapes.message(gen, "claude-mock", True, False)  # display "omitted"
    body["usage"]["output_tokens_details"] = {"thinking_tokens": 55}
    before = _withheld("drop", "messages")
    asyncio.run(h.request(exchange))
    out = asyncio.run(h.response(exchange, body))
    asyncio.run(h.after(exchange))
    original = anthropic_shapes.message(gen, "claude-mock", True, False)["content"][0]
    assert out["content"][0] == original and original["thinking"] == ""  # kept: the next turn needs it
    assert _withheld("drop", "messages") - before == 55

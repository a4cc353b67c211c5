"""Responses API reasoning items in every mode, whole and streamed; the SDK's stream state accepts them."""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai import omit
from openai._models import construct_type
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent

from gateway.mock import openai_shapes
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
    summary_text,
    unseal_all,
)
from tests.policy_harness import PolicyHarness, encode_events


@cache
def harness(mode: str, keep_provider_encrypted: bool = True) -> PolicyHarness:
    return PolicyHarness([("reasoning", {"mode": mode, "keep_provider_encrypted": keep_provider_encrypted})])


def generation(reasoning: str, answer: str, summary: str) -> Generation:
    return Generation("p", tokenize(answer or "ok"), reasoning, summary, 3)


def run(
    h: PolicyHarness, gen: Generation, per_chunk: int, chunks: list[int], encrypted: bool = True
) -> tuple[dict[str, Any], list[StreamEvent]]:
    exchange = h.exchange("responses", {"model": "m", "input": "x", "reasoning": {}})
    body = asyncio.run(h.response(exchange, openai_shapes.response_object(gen, "m", encrypted)))
    exchange = h.exchange("responses", {"model": "m", "input": "x", "reasoning": {}, "stream": True})
    raw = encode_events(openai_shapes.response_stream(gen, "m", encrypted, per_chunk))
    return body, h.stream(exchange, raw, chunks=chunks)


def sdk_final(events: list[StreamEvent]) -> Any:
    """Feed the filtered stream to the openai SDK's own stream state; its final response."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in events:
        state.handle_event(construct_type(type_=ResponseStreamEvent, value=event.json))  # type: ignore[arg-type]
    assert state._completed_response is not None
    return state._completed_response


def check_stream_shape(events: list[StreamEvent]) -> None:
    """Consecutive sequence numbers; every output_index names the item the final output has there."""
    payloads = [event.json for event in events]
    assert all(p is not None for p in payloads)
    sequence = [p["sequence_number"] for p in payloads if p is not None]
    assert sequence == list(range(sequence[0], sequence[0] + len(sequence)))
    final = payloads[-1]["response"]["output"]  # type: ignore[index]
    for p in payloads:
        assert p is not None
        if "output_index" in p:
            item_id = p.get("item_id") or p.get("item", {}).get("id")
            assert final[p["output_index"]]["id"] == item_id
        if p["type"] == "response.reasoning_summary_text.done":
            assert final[p["output_index"]]["summary"][p["summary_index"]]["text"] == p["text"]
    deltas: dict[tuple[int, str], str] = {}
    for p in payloads:
        assert p is not None
        if p["type"].endswith(".delta"):
            key = (p["output_index"], p["type"])
            deltas[key] = deltas.get(key, "") + p["delta"]
    for (index, kind), text in deltas.items():
        item = final[index]
        if kind == "response.output_text.delta":
            assert item["content"][0]["text"] == text
        elif kind == "response.reasoning_summary_text.delta":
            assert "".join(s["text"] for s in item["summary"]) == text
        elif kind == "response.reasoning_text.delta":
            assert "".join(c["text"] for c in item["content"]) == text
        else:
            raise AssertionError(f"unexpected delta kind {kind}")


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=30, deadline=None)
@given(
    reasoning=reasoning_text,
    answer=answer_text,
    summary=summary_text,
    per_chunk=st.integers(1, 5),
    chunks=chunk_sizes,
    encrypted=st.booleans(),
)
def test_stream_equals_body_and_nothing_leaks(
    mode: str, reasoning: str, answer: str, summary: str, per_chunk: int, chunks: list[int], encrypted: bool
) -> None:
    gen = generation(reasoning, answer, summary)
    body, streamed = run(harness(mode), gen, per_chunk, chunks, encrypted)
    final = streamed[-1].json["response"]  # type: ignore[index]
    assert unseal_all(final["output"]) == unseal_all(body["output"])
    check_stream_shape(streamed)
    assert sdk_final(streamed).output_text == gen.text
    if mode == "allow":
        return
    assert leaks(reasoning, streamed) == [] and leaks(reasoning, body) == []
    items = [item for item in body["output"] if item["type"] == "reasoning"]
    if mode == "drop":
        assert items == [] and [i["type"] for i in body["output"]] == ["message"]
        return
    (item,) = items
    assert "content" not in item
    if mode == "redact":
        placeholder = f"[reasoning withheld: {estimate_tokens(len(reasoning))} tokens]"
        assert item["summary"] == [{"type": "summary_text", "text": placeholder}]
    else:
        assert item["summary"] == [{"type": "summary_text", "text": summary}]
    if mode == "seal":
        original = openai_shapes.reasoning_item(gen, encrypted)
        assert unseal_all(item["encrypted_content"]) == {"sealed": original}
    else:
        assert (
            item.get("encrypted_content") == openai_shapes.reasoning_item(gen, encrypted)["encrypted_content"]
        )


def test_provider_encrypted_content_can_be_withheld() -> None:
    gen = generation("αβγδεζηθικλμν", "answer", "սուր")
    body, streamed = run(harness("summary", keep_provider_encrypted=False), gen, 2, [])
    for item in (body["output"][0], streamed[-1].json["response"]["output"][0]):  # type: ignore[index]
        assert item["type"] == "reasoning" and "encrypted_content" not in item


def test_sealed_item_is_the_same_in_done_and_completed() -> None:
    gen = generation("αβγδεζηθικλμν", "answer", "սուր")
    _, streamed = run(harness("seal"), gen, 1, [])
    done = [
        e.json["item"]
        for e in streamed
        if e.json and e.json["type"] == "response.output_item.done" and e.json["item"]["type"] == "reasoning"
    ]
    assert done[0]["encrypted_content"] == streamed[-1].json["response"]["output"][0]["encrypted_content"]  # type: ignore[index]
    added = next(e.json for e in streamed if e.json and e.json["type"] == "response.output_item.added")
    assert added is not None and added["item"]["encrypted_content"] is None


def test_unknown_events_about_a_reasoning_item_are_withheld() -> None:
    events: list[tuple[str | None, dict[str, Any] | str]] = [
        (
            "response.created",
            {"type": "response.created", "sequence_number": 0, "response": {"id": "r", "output": []}},
        ),
        (
            "response.output_item.added",
            {
                "type": "response.output_item.added",
                "sequence_number": 1,
                "output_index": 0,
                "item": {"id": "rs_1", "type": "reasoning", "summary": []},
            },
        ),
        (
            "x",
            {
                "type": "response.future_reasoning.delta",
                "sequence_number": 2,
                "output_index": 0,
                "delta": "αβγ",
            },
        ),
        ("x", {"type": "response.reasoning_text.delta", "sequence_number": 3, "delta": "δεζ"}),
        ("x", {"type": "response.completed", "sequence_number": 4, "response": {"id": "r", "output": []}}),
    ]
    h = harness("summary")
    out = h.stream(
        h.exchange("responses", {"model": "m", "input": "x", "stream": True}), encode_events(events)
    )
    assert [e.json["type"] for e in out if e.json] == [
        "response.created",
        "response.output_item.added",
        "response.completed",
    ]
    assert [e.json["sequence_number"] for e in out if e.json] == [0, 1, 2]

"""The adapters' response view: parts of every family, whole and streamed; renumbering once, in the engine.

A policy that withholds whole blocks through the view (``DropBlocksPolicy``) does no numbering of
its own: the client must still see consecutive Anthropic block indexes and Responses
``sequence_number`` s and ``output_index`` es, in the streamed and the whole response alike.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.mock import anthropic_shapes, openai_shapes
from gateway.mock.generation import Generation
from gateway.mock.text import tokenize
from gateway.protocols import ADAPTERS
from gateway.protocols.response_view import IndexMap
from gateway.sse import StreamEvent
from tests.policy_harness import PolicyHarness, encode_events

GEN = Generation(
    "prompt", tokenize("The river runs to the sea. It is long."), "First I think. Then more.", "", 3
)
chunkings = st.lists(st.integers(1, 64), max_size=30)


def _run_stream(
    kind: str, operation: str, body: dict[str, Any], wire: bytes, sizes: list[int]
) -> list[StreamEvent]:
    harness = PolicyHarness([("tests.sample_policies:DropBlocksPolicy", {"kind": kind})])
    exchange = harness.exchange(operation, {**body, "stream": True})
    return harness.stream(exchange, wire, chunks=sizes)


@settings(max_examples=25, deadline=None)
@given(chunkings, st.integers(1, 3))
def test_anthropic_blocks_withheld_by_a_policy_are_renumbered_by_the_adapter(
    sizes: list[int], per_chunk: int
) -> None:
    wire = encode_events(anthropic_shapes.message_stream(GEN, "claude-mock", False, False, per_chunk))
    events = _run_stream("reasoning", "messages", {"model": "claude-mock"}, wire, sizes)
    indexes = [e.json["index"] for e in events if e.json and e.json.get("type") == "content_block_start"]
    assert indexes == list(range(len(indexes))) and indexes  # the thinking block was 0 upstream
    started = set(indexes)
    for event in events:
        payload = event.json or {}
        if payload.get("type") in ("content_block_delta", "content_block_stop"):
            assert payload["index"] in started
        assert payload.get("type") != "content_block_delta" or payload["delta"]["type"] == "text_delta"
    whole = anthropic_shapes.message(GEN, "claude-mock", False, False)
    harness = PolicyHarness([("tests.sample_policies:DropBlocksPolicy", {"kind": "reasoning"})])
    out = asyncio.run(harness.response(harness.exchange("messages", {"model": "claude-mock"}), whole))
    assert [b["type"] for b in out["content"]] == ["text"] * len(indexes)


@settings(max_examples=25, deadline=None)
@given(chunkings, st.integers(1, 3))
def test_responses_items_withheld_by_a_policy_leave_consecutive_numbers(
    sizes: list[int], per_chunk: int
) -> None:
    wire = encode_events(openai_shapes.response_stream(GEN, "mock-small", False, per_chunk))
    events = _run_stream("reasoning", "responses", {"model": "mock-small", "input": "hi"}, wire, sizes)
    payloads = [e.json for e in events if e.json is not None]
    numbers = [p["sequence_number"] for p in payloads if "sequence_number" in p]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    added = [p["output_index"] for p in payloads if p["type"] == "response.output_item.added"]
    assert added == list(range(len(added))) and added  # the reasoning item was output 0 upstream
    assert all(p["output_index"] in added for p in payloads if "output_index" in p)
    assert not any(p.get("type", "").startswith("response.reasoning") for p in payloads)


def test_index_map_keeps_an_odd_upstream_consistent() -> None:
    blocks = IndexMap()
    assert blocks.start(1) == 0  # block 0 withheld
    assert blocks.get(1) == 0
    assert blocks.get(3) == 2  # a block never started moves down with the others, onto no other block
    assert blocks.start(2) == 1


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("chat.completions", openai_shapes.chat_completion(GEN, "m", "reasoning_content", 1, [GEN])),
        ("completions", openai_shapes.completion(GEN, "m", False, "")),
        ("responses", openai_shapes.response_object(GEN, "m", False)),
        ("messages", anthropic_shapes.message(GEN, "claude-mock", False, False)),
    ],
)
def test_every_family_shows_its_visible_text_and_reasoning_as_parts(
    operation: str, body: dict[str, Any]
) -> None:
    adapter = {"messages": ADAPTERS["anthropic"]}.get(operation, ADAPTERS["openai"])
    view = adapter.response_view(operation, copy.deepcopy(body))  # type: ignore[arg-type]
    assert "".join(p.text for p in view.text_parts()) == GEN.text
    reasoning = [p.text for p in view.text_parts(frozenset({"reasoning"})) if p.detail == "raw"]
    if operation != "completions":  # completions carry reasoning inline only (view.inline_think)
        assert GEN.reasoning in reasoning or "".join(reasoning) == GEN.reasoning
    else:
        assert view.inline_think
    for part in view.text_parts():
        part.set_text("X")
    assert "".join(p.text for p in view.text_parts()) == "X"


def test_malformed_text_deltas_fail_closed_for_a_policy_reading_text() -> None:
    reader = ADAPTERS["anthropic"].stream_view("messages")
    event = StreamEvent.of(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": 5}}
    )
    with pytest.raises(ValueError, match="text_delta"):
        list(reader.event(event).text_parts())


@pytest.mark.parametrize(
    ("operation", "body", "where"),
    [
        ("chat.completions", openai_shapes.chat_completion(GEN, "m", "reasoning_content", 1, [GEN]),
         lambda b: b["choices"][0]["message"]),
        ("responses", openai_shapes.response_object(GEN, "m", False), lambda b: b["output"][0]),
        ("messages", anthropic_shapes.message(GEN, "claude-mock", False, False), lambda b: b["content"][0]),
    ],
)  # fmt: skip
def test_sealing_reasoning_puts_the_blob_where_each_format_keeps_it(
    operation: str, body: dict[str, Any], where: Any
) -> None:
    adapter = {"messages": ADAPTERS["anthropic"]}.get(operation, ADAPTERS["openai"])
    body = copy.deepcopy(body)
    view = adapter.response_view(operation, body)  # type: ignore[arg-type]
    raw = [p for p in view.text_parts(frozenset({"reasoning"})) if p.detail == "raw"]
    assert raw and all(p.sealable for p in raw)
    for part in raw:
        part.seal("dgs1.BLOB")
    holder = where(body)
    placed = {
        "chat.completions": "sealed_reasoning",
        "responses": "encrypted_content",
        "messages": "signature",
    }
    assert holder[placed[operation]] == "dgs1.BLOB"
    assert GEN.reasoning not in str(body)  # the readable text is gone
    assert not [p for p in view.text_parts(frozenset({"reasoning"})) if p.detail == "raw" and p.text]


def test_a_chunk_mixing_reasoning_and_text_shows_both_and_usage_is_the_adapters() -> None:
    reader = ADAPTERS["openai"].stream_view("chat.completions")
    payload = {
        "choices": [
            {"index": 1, "delta": {"reasoning_content": "hm", "content": "Hi"}, "finish_reason": "stop"}
        ]
    }
    view = reader.event(StreamEvent.of(payload))
    parts = view.text_parts(frozenset({"text", "reasoning"}))
    assert [(p.kind, p.key, p.text, p.choice) for p in parts] == [
        ("reasoning", ("reasoning", 1, "reasoning_content"), "hm", 1),
        ("text", ("choice", 1), "Hi", 1),
    ]
    assert view.closes == (("choice", 1),)
    view.add_text(("choice", 1), " there")  # into the chunk that finishes the choice
    assert view.events()[0].json["choices"][0]["delta"]["content"] == "Hi there"  # type: ignore[index]
    whole = {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7}}
    usage = ADAPTERS["openai"].response_view("chat.completions", whole).usage()
    assert usage is not None and (usage.input_tokens, usage.output_tokens) == (5, 7)


_chat_chunk = st.fixed_dictionaries(
    {
        "delta": st.dictionaries(
            st.sampled_from(["content", "role", "reasoning_content", "refusal"]),
            st.one_of(st.none(), st.text(max_size=4)),
            max_size=3,
        ),
        "finish_reason": st.sampled_from([None, "stop"]),
        "logprobs": st.one_of(
            st.none(), st.just({"content": [{"token": "a", "logprob": -0.5, "top_logprobs": []}]})
        ),
    },
    optional={"index": st.sampled_from([0, 2])},
).map(lambda choice: {"choices": [choice]})
_kinds = st.sampled_from(
    [frozenset({"logprobs"}), frozenset({"text"}), frozenset({"text", "annotation", "logprobs"})]
)


def _reading(parts: list[Any], closes: tuple[Any, ...]) -> tuple[list[Any], tuple[Any, ...]]:
    return [(p.kind, p.key, getattr(p, "text", None), p.delta) for p in parts], closes


def test_prompt_logprobs_beside_an_empty_text_delta_are_read() -> None:
    # Regression: the text shortcut took this chunk (one choice, one string delta) and missed the
    # prompt_logprobs beside it, so the logprobs filter never saw them (found by the property below).
    payload = {
        "choices": [{"delta": {"content": ""}, "finish_reason": None, "logprobs": None}],
        "prompt_logprobs": [None, {"1": {"logprob": -1.0}}],
    }
    reader = ADAPTERS["openai"].stream_view("chat.completions")
    parts, _ = reader.read(StreamEvent.of(payload), frozenset({"text", "logprobs"}))
    assert [(p.kind, p.key) for p in parts] == [("logprobs", ("prompt_logprobs", 0)), ("text", ("choice", 0))]


@given(_chat_chunk, _kinds, st.booleans())
def test_the_chat_readers_shortcuts_find_what_the_full_reading_finds(
    payload: dict[str, Any], kinds: frozenset[str], prompt_logprobs: bool
) -> None:
    # read() takes shortcuts for the usual chunk (one choice, one text delta or no logprobs at all);
    # whatever the chunk, it must find the same parts and closes as the general reading.
    if prompt_logprobs:
        payload["prompt_logprobs"] = [None, {"1": {"logprob": -1.0}}]
    event = StreamEvent.of(payload)
    reader = ADAPTERS["openai"].stream_view("chat.completions")
    parts, closes = reader.read(event, kinds)
    full = list(reader.event_parts(event, kinds)), reader.closes(event)
    assert _reading(parts, closes) == _reading(*full)

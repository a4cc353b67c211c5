"""Every response shape, streamed at random chunkings, gives the same text as the non-streamed response."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.mock import anthropic_shapes, gemini_shapes, openai_shapes
from gateway.mock.generation import Generation
from gateway.mock.text import tokenize
from gateway.sse import StreamEvent
from tests.policies.watermark.texts import sample_text
from tests.policy_harness import PolicyHarness, encode_events

texts = st.lists(st.integers(0, 200), min_size=1, max_size=8).map(sample_text)
chunkings = st.lists(st.integers(1, 64), max_size=40)
CONFIG: dict[str, Any] = {"canary": {"enabled": True, "fraction": 0.5}}


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILLGUARD_WATERMARK_KEY", "test-master-key-0123456789")


def _harness() -> PolicyHarness:
    return PolicyHarness([("watermark", CONFIG)])


def _gen(text: str) -> Generation:
    return Generation("prompt", tokenize(text), "", "", 3)


def _run(harness: PolicyHarness, operation: str, body: dict[str, Any], whole: dict[str, Any], wire: bytes,
         sizes: list[int], stream_operation: str | None = None,
         params: dict[str, str] | None = None) -> tuple[dict[str, Any], list[StreamEvent]]:  # fmt: skip
    async def go() -> tuple[dict[str, Any], list[StreamEvent]]:
        exchange = harness.exchange(operation, copy.deepcopy(body), params=params)
        await harness.request(exchange)
        marked = await harness.response(exchange, whole)
        if stream_operation is None:
            streamed = harness.exchange(operation, {**copy.deepcopy(body), "stream": True})
        else:  # Gemini: streaming is another operation, not a body field
            streamed = harness.exchange(stream_operation, copy.deepcopy(body), params=params)
        await harness.request(streamed)
        return marked, harness.stream(streamed, wire, chunks=sizes)

    return asyncio.run(go())


@settings(max_examples=40, deadline=None)
@given(texts, chunkings, st.integers(1, 4))
def test_chat_stream_equals_whole(text: str, sizes: list[int], per_chunk: int) -> None:
    gen = _gen(text)
    body = {"model": "m", "messages": [{"role": "user", "content": text[:20]}]}
    whole, events = _run(
        _harness(), "chat.completions", body, openai_shapes.chat_completion(gen, "m", "none", 1, [gen]),
        encode_events(openai_shapes.chat_stream(gen, "m", "none", False, per_chunk)), sizes,
    )  # fmt: skip
    streamed = "".join(
        e.json["choices"][0]["delta"].get("content") or "" for e in events if e.json and e.json.get("choices")
    )
    assert streamed == whole["choices"][0]["message"]["content"]


@settings(max_examples=40, deadline=None)
@given(texts, chunkings, st.integers(1, 4))
def test_completions_stream_equals_whole(text: str, sizes: list[int], per_chunk: int) -> None:
    gen = _gen(text)
    body = {"model": "m", "prompt": text[:15]}
    whole, events = _run(
        _harness(), "completions", body, openai_shapes.completion(gen, "m", False, ""),
        encode_events(openai_shapes.completion_stream(gen, "m", False, per_chunk)), sizes,
    )  # fmt: skip
    streamed = "".join(e.json["choices"][0]["text"] for e in events if e.json and e.json.get("choices"))
    assert streamed == whole["choices"][0]["text"]


@settings(max_examples=40, deadline=None)
@given(texts, chunkings, st.integers(1, 4))
def test_responses_stream_equals_whole_and_final_objects_agree(
    text: str, sizes: list[int], per_chunk: int
) -> None:
    gen = _gen(text)
    body = {"model": "m", "input": text[:25]}
    whole, events = _run(
        _harness(), "responses", body, openai_shapes.response_object(gen, "m", False),
        encode_events(openai_shapes.response_stream(gen, "m", False, per_chunk)), sizes,
    )  # fmt: skip
    payloads = [e.json for e in events if e.json]
    streamed = "".join(p["delta"] for p in payloads if p["type"] == "response.output_text.delta")
    expected = whole["output"][0]["content"][0]["text"]
    assert streamed == expected
    done = next(p for p in payloads if p["type"] == "response.output_text.done")
    assert done["text"] == expected
    assert payloads[-1]["response"]["output"][0]["content"][0]["text"] == expected
    item = next(p for p in payloads if p["type"] == "response.output_item.done")
    assert item["item"]["content"][0]["text"] == expected
    numbers = [p["sequence_number"] for p in payloads]
    assert numbers == list(range(len(numbers)))


@settings(max_examples=40, deadline=None)
@given(texts, chunkings, st.integers(1, 4))
def test_anthropic_stream_equals_whole(text: str, sizes: list[int], per_chunk: int) -> None:
    gen = _gen(text)
    body = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": text[:20]}]}
    whole, events = _run(
        _harness(), "messages", body, anthropic_shapes.message(gen, "m", False, False),
        encode_events(anthropic_shapes.message_stream(gen, "m", False, False, per_chunk)), sizes,
    )  # fmt: skip
    streamed = "".join(
        e.json["delta"]["text"] for e in events if e.json and e.json.get("type") == "content_block_delta"
    )
    assert streamed == whole["content"][-1]["text"]


@settings(max_examples=40, deadline=None)
@given(texts, chunkings, st.integers(1, 4), st.booleans())
def test_gemini_stream_equals_whole_and_is_marked_as_chat_is(
    text: str, sizes: list[int], per_chunk: int, thoughts: bool
) -> None:
    gen = Generation("prompt", tokenize(text), "", "Some reasoning about it first." if thoughts else "", 3)
    harness = PolicyHarness([("watermark", {})])  # no canary: its choice depends on the request body
    body = {"contents": [{"role": "user", "parts": [{"text": text[:20]}]}]}
    whole, events = _run(
        harness, "generateContent", body, gemini_shapes.response([gen], "m", thoughts, False, 0),
        encode_events(gemini_shapes.stream([gen], "m", thoughts, False, 0, per_chunk)), sizes,
        stream_operation="streamGenerateContent", params={"model": "m"},
    )  # fmt: skip

    def answer(parts: list[dict[str, Any]]) -> str:
        return "".join(p.get("text", "") for p in parts if not p.get("thought"))

    chunks = [c for e in events if e.json for c in e.json["candidates"] if "content" in c]
    streamed = "".join(answer(c["content"]["parts"]) for c in chunks)
    expected = answer(whole["candidates"][0]["content"]["parts"])
    assert streamed == expected
    # The same text is marked the same way in every family (unmarked would be a family left out).
    chat = _gen(text)
    chat_body = {"model": "m", "messages": [{"role": "user", "content": text[:20]}]}
    marked_chat, _ = _run(
        harness, "chat.completions", chat_body, openai_shapes.chat_completion(chat, "m", "none", 1, [chat]),
        encode_events(openai_shapes.chat_stream(chat, "m", "none", False, per_chunk)), [],
    )  # fmt: skip
    assert expected == marked_chat["choices"][0]["message"]["content"]


def _interleaved_chat(texts_by_choice: list[str]) -> tuple[dict[str, Any], bytes]:
    """n choices streamed interleaved (a chunk per token per choice), and the whole body."""
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    tokens = [tokenize(t) for t in texts_by_choice]
    events: list[tuple[str | None, Any]] = []
    for step in range(max(len(t) for t in tokens)):
        for index, toks in enumerate(tokens):
            if step < len(toks):
                events.append((None, {**base, "choices": [{"index": index, "delta": {"content": toks[step]},
                                                          "finish_reason": None}]}))  # fmt: skip
    for index in range(len(tokens)):
        events.append((None, {**base, "choices": [{"index": index, "delta": {}, "finish_reason": "stop"}]}))
    events.append((None, "[DONE]"))
    whole = {
        "id": "c1",
        "object": "chat.completion",
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
            for i, t in enumerate(texts_by_choice)
        ],
    }
    return whole, encode_events(events)


@settings(max_examples=30, deadline=None)
@given(st.lists(texts, min_size=2, max_size=3), chunkings)
def test_several_choices_keep_separate_state(choice_texts: list[str], sizes: list[int]) -> None:
    whole, wire = _interleaved_chat(choice_texts)
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "n": len(choice_texts)}
    marked, events = _run(_harness(), "chat.completions", body, whole, wire, sizes)
    for index in range(len(choice_texts)):
        streamed = "".join(
            c["delta"].get("content") or ""
            for e in events
            if e.json
            for c in e.json.get("choices", [])
            if c["index"] == index
        )
        assert streamed == marked["choices"][index]["message"]["content"]


@settings(max_examples=30, deadline=None)
@given(st.lists(texts, min_size=2, max_size=3), chunkings)
def test_several_anthropic_blocks_keep_separate_state(block_texts: list[str], sizes: list[int]) -> None:
    events: list[tuple[str | None, Any]] = [("message_start", {"type": "message_start", "message": {
        "id": "m", "type": "message", "role": "assistant", "content": [], "model": "m",
        "usage": {"input_tokens": 1, "output_tokens": 1}}})]  # fmt: skip
    for index, text in enumerate(block_texts):
        events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                               "content_block": {"type": "text", "text": ""}}))  # fmt: skip
        for token in tokenize(text):
            delta = {"type": "text_delta", "text": token}
            events.append(
                ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(("message_stop", {"type": "message_stop"}))
    whole = {"type": "message", "content": [{"type": "text", "text": t} for t in block_texts]}
    body = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "x"}]}
    marked, out = _run(_harness(), "messages", body, whole, encode_events(events), sizes)
    for index in range(len(block_texts)):
        streamed = "".join(
            e.json["delta"]["text"]
            for e in out
            if e.json and e.json.get("type") == "content_block_delta" and e.json["index"] == index
        )
        assert streamed == marked["content"][index]["text"]


def test_tool_call_arguments_and_reasoning_are_untouched() -> None:
    harness = _harness()
    arguments = '{"query": "do not organize the behavior toward it"}'
    body = {
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "reasoning_content": "It is not the behavior we organize.",
                    "tool_calls": [
                        {"id": "t", "type": "function", "function": {"name": "f", "arguments": arguments}}
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    request = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    marked, _ = _run(harness, "chat.completions", request, copy.deepcopy(body), b"data: [DONE]\n\n", [])
    assert marked == body


URL = "https://example.com/toward/behavior?color=1"


def _cited(text: str) -> tuple[str, list[dict[str, Any]]]:
    """``text`` with a cited URL in the middle and at the end, and the url_citation annotations."""
    full = f"{text} See {URL} for it, as it is not organized. {URL}"
    first = full.index(URL)
    last = full.rindex(URL)
    notes = [
        {"type": "url_citation", "start_index": s, "end_index": s + len(URL), "url": URL, "title": "t"}
        for s in (first, last)
    ]
    return full, notes


def _responses_events(text: str, notes: list[dict[str, Any]], per_chunk: int) -> tuple[dict[str, Any], bytes]:
    """A Responses stream whose annotation.added events follow the delta that completes their text."""
    tokens = tokenize(text)
    item = {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed"}
    part = {"type": "output_text", "text": text, "annotations": notes, "logprobs": []}
    response = {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "output": [{**item, "content": [part]}],
    }
    payloads: list[dict[str, Any]] = [
        {"type": "response.created", "response": {**response, "status": "in_progress", "output": []}},
        {"type": "response.output_item.added", "output_index": 0, "item": {**item, "content": []}},
        {"type": "response.content_part.added", "item_id": "msg_1", "output_index": 0, "content_index": 0,
         "part": {**part, "text": "", "annotations": []}},
    ]  # fmt: skip
    sent = 0
    pending = list(enumerate(notes))
    for start in range(0, len(tokens), per_chunk):
        delta = "".join(tokens[start : start + per_chunk])
        sent += len(delta)
        payloads.append({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0,
                         "content_index": 0, "delta": delta, "logprobs": []})  # fmt: skip
        while pending and pending[0][1]["end_index"] <= sent:
            index, note = pending.pop(0)
            payloads.append({"type": "response.output_text.annotation.added", "item_id": "msg_1",
                             "output_index": 0, "content_index": 0, "annotation_index": index,
                             "annotation": dict(note)})  # fmt: skip
    payloads += [
        {"type": "response.output_text.done", "item_id": "msg_1", "output_index": 0, "content_index": 0,
         "text": text, "logprobs": []},
        {"type": "response.content_part.done", "item_id": "msg_1", "output_index": 0, "content_index": 0,
         "part": copy.deepcopy(part)},
        {"type": "response.output_item.done", "output_index": 0,
         "item": {**item, "content": [copy.deepcopy(part)]}},
        {"type": "response.completed", "response": copy.deepcopy(response)},
    ]  # fmt: skip
    for number, payload in enumerate(payloads):
        payload["sequence_number"] = number
    return copy.deepcopy(response), encode_events([(p["type"], p) for p in payloads])


@settings(max_examples=40, deadline=None)
@given(texts, chunkings, st.integers(1, 4))
def test_responses_annotations_point_at_the_same_text_after_marking(
    text: str, sizes: list[int], per_chunk: int
) -> None:
    full, notes = _cited(text)
    whole, wire = _responses_events(full, notes, per_chunk)
    body = {"model": "m", "input": "x"}
    marked, events = _run(_harness(), "responses", body, whole, wire, sizes)
    marked_part = marked["output"][0]["content"][0]
    marked_text = marked_part["text"]
    for note in marked_part["annotations"]:
        assert marked_text[note["start_index"] : note["end_index"]] == URL
    payloads = [e.json for e in events if e.json]
    added = [p for p in payloads if p["type"] == "response.output_text.annotation.added"]
    assert [p["annotation"] for p in added] == marked_part["annotations"]
    streamed = "".join(p["delta"] for p in payloads if p["type"] == "response.output_text.delta")
    for p in added:
        # an annotation is sent only once the text it points into has been sent
        position = payloads.index(p)
        sent = "".join(q["delta"] for q in payloads[:position] if q["type"] == "response.output_text.delta")
        assert len(sent) >= p["annotation"]["end_index"]
    assert streamed == marked_text
    for final in (
        next(p["part"] for p in payloads if p["type"] == "response.content_part.done"),
        next(p["item"]["content"][0] for p in payloads if p["type"] == "response.output_item.done"),
        payloads[-1]["response"]["output"][0]["content"][0],
    ):
        assert final["text"] == marked_text and final["annotations"] == marked_part["annotations"]
    numbers = [p["sequence_number"] for p in payloads]
    assert numbers == list(range(len(numbers)))


def test_annotation_indices_move_with_the_text() -> None:
    text = "We do not organize it. It is not organized toward the behavior of users."
    target = text.index("users")
    notes = [
        {"type": "url_citation", "start_index": target, "end_index": target + 5, "url": URL, "title": "t"}
    ]
    harness = _harness()

    async def go(account: int) -> dict[str, Any]:
        exchange = harness.exchange("responses", {"model": "m", "input": "x"}, account=f"a{account}")
        await harness.request(exchange)
        whole, _ = _responses_events(text, copy.deepcopy(notes), 2)
        return await harness.response(exchange, whole)

    shifted = 0
    for account in range(12):
        part = asyncio.run(go(account))["output"][0]["content"][0]
        note = part["annotations"][0]
        assert part["text"][note["start_index"] : note["end_index"]] == "users"
        shifted += note["start_index"] != target
    assert shifted  # some keys changed the length of the text before it


def test_chat_citation_indices_move_with_the_text() -> None:
    """A whole chat answer's ``url_citation`` annotations (OpenAI's search models) point at the same
    words after marking, whatever the mark did to the length of the text before them."""
    text = "We do not organize it. It is not organized toward the behavior of users, however."
    target = text.index("users")
    citation = {"start_index": target, "end_index": target + 5, "url": URL, "title": "t"}
    harness = _harness()

    async def go(account: int) -> dict[str, Any]:
        exchange = harness.exchange("chat.completions", {"model": "m", "messages": []}, account=f"a{account}")
        await harness.request(exchange)
        message = {
            "role": "assistant",
            "content": text,
            "annotations": [{"type": "url_citation", "url_citation": dict(citation)}, {"type": "other"}],
        }
        whole = {"id": "c", "object": "chat.completion", "model": "m",
                 "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}  # fmt: skip
        return await harness.response(exchange, whole)

    shifted = 0
    for account in range(12):
        message = asyncio.run(go(account))["choices"][0]["message"]
        note = message["annotations"][0]["url_citation"]
        assert message["content"][note["start_index"] : note["end_index"]] == "users"
        assert message["annotations"][1] == {"type": "other"}
        shifted += note["start_index"] != target
    assert shifted  # some keys changed the length of the text before it

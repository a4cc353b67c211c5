"""The Gemini response view: parts of bodies and stream chunks, their edits, where added text goes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gateway.mock import gemini_shapes
from gateway.mock.generation import generate
from gateway.protocols import ADAPTERS
from gateway.protocols.gemini_response import GenerateContentStreamView, sealed_blob
from gateway.protocols.response_view import PART_KINDS, Part
from gateway.sse import StreamEvent
from tests.policy_harness import PolicyHarness, encode_events

ADAPTER = ADAPTERS["gemini"]
ALL = frozenset(PART_KINDS)


def _body() -> dict[str, Any]:
    return {
        "candidates": [
            {
                "index": 0,
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "Let me think.", "thought": True},
                        {"text": "The answer", "thoughtSignature": "c2lnbmF0dXJl"},
                        {"functionCall": {"name": "search", "args": {"q": "caches"}}},
                        {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
                        {"text": " is 42."},
                    ],
                },
                "finishReason": "STOP",
                "avgLogprobs": -0.5,
            }
        ],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 5, "thoughtsTokenCount": 4},
    }


def test_body_parts_and_keys() -> None:
    parts = list(ADAPTER.response_view("generateContent", _body()).parts(ALL))
    summary = [(p.kind, p.key, getattr(p, "detail", None), p.delta) for p in parts]
    assert summary == [
        ("reasoning", ("thought", 0), "raw", False),
        ("text", ("candidate", 0), "", False),
        ("reasoning", ("signature", 0, 0), "encrypted", False),
        ("tool_arguments", ("tool", 0, 0), "", False),
        ("tool_arguments", ("code", 0, 0), "", False),
        ("text", ("candidate", 0), "", True),  # continues the candidate's visible text
        ("logprobs", ("avg_logprobs", 0), None, False),
    ]
    texts = [p for p in parts if isinstance(p, Part)]
    assert texts[3].text == '{"q":"caches"}' and texts[4].text == "print(1)"


def test_text_edits_and_drops_in_place() -> None:
    body = _body()
    view = ADAPTER.response_view("generateContent", body)
    for part in view.text_parts():
        part.set_text(part.text.upper())
    thought = next(view.text_parts(frozenset({"reasoning"})))
    thought.drop()
    parts = body["candidates"][0]["content"]["parts"]
    assert [p.get("text") for p in parts] == ["THE ANSWER", None, None, " IS 42."]
    for part in view.text_parts(frozenset({"tool_arguments"})):
        if part.key[0] == "tool":
            part.set_text('{"q": "redacted"}')
    assert parts[1]["functionCall"]["args"] == {"q": "redacted"}


def test_a_dropped_thought_keeps_googles_signature() -> None:
    body = {
        "candidates": [{"content": {"parts": [{"text": "hmm", "thought": True, "thoughtSignature": "c2ln"}]}}]
    }
    next(ADAPTER.response_view("generateContent", body).text_parts(frozenset({"reasoning"}))).drop()
    assert body["candidates"][0]["content"]["parts"] == [{"text": "", "thoughtSignature": "c2ln"}]


def test_sealed_thought_travels_in_the_signature_field() -> None:
    body = _body()
    thought = next(ADAPTER.response_view("generateContent", body).text_parts(frozenset({"reasoning"})))
    assert thought.sealable
    original = copy.deepcopy(thought.raw())
    thought.seal("dgs1.k1.g.tag.Ym9keQ")
    part = body["candidates"][0]["content"]["parts"][0]
    assert part["text"] == "" and part["thought"] is True
    assert sealed_blob(part["thoughtSignature"]) == "dgs1.k1.g.tag.Ym9keQ"
    assert original == {"text": "Let me think.", "thought": True}
    assert sealed_blob("c2lnbmF0dXJl") is None and sealed_blob("not base64!") is None


def test_malformed_content_raises() -> None:
    view = ADAPTER.response_view("generateContent", {"candidates": [{"content": {"parts": "text"}}]})
    with pytest.raises(ValueError, match="parts"):
        list(view.parts(ALL))
    lp = ADAPTER.response_view(
        "generateContent", {"candidates": [{"logprobsResult": {"chosenCandidates": 3}}]}
    )
    with pytest.raises(ValueError, match="logprobsResult"):
        next(lp.logprobs()).positions()


def _chunk(*parts: dict[str, Any], finish: bool = False, index: int = 0) -> StreamEvent:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}, "index": index}
    if finish:
        candidate["finishReason"] = "STOP"
    return StreamEvent.of({"candidates": [candidate], "modelVersion": "g", "responseId": "r1"})


def test_stream_closes_and_added_text() -> None:
    reader = GenerateContentStreamView()
    first = reader.event(_chunk({"text": "hmm", "thought": True}))
    assert first.closes == () and [p.key for p in first.parts(ALL)] == [("thought", 0)]
    answer = reader.event(_chunk({"text": "The"}, {"functionCall": {"name": "f", "args": {}}}))
    assert answer.closes == (("thought", 0),)
    assert [p.key for p in answer.parts(ALL)] == [("candidate", 0), ("tool", 0, 0)]
    last = reader.event(_chunk({"functionCall": {"name": "g", "args": {}}}, finish=True))
    assert last.closes == (("candidate", 0),)
    assert [p.key for p in last.parts(ALL)] == [("tool", 0, 1)]  # numbered across the stream
    last.add_text(("candidate", 0), " held")
    assert last.event.json["candidates"][0]["content"]["parts"][0] == {"text": " held"}
    made = reader.text_event(("candidate", 0), "tail")
    assert made.json == {
        "candidates": [{"content": {"parts": [{"text": "tail"}], "role": "model"}, "index": 0}],
        "modelVersion": "g",
        "responseId": "r1",
    }


def test_emptied_chunks_are_not_forwarded() -> None:
    numbering = ADAPTER.stream_numbering("streamGenerateContent")
    assert numbering is not None
    emptied, kept, finished = _chunk(), _chunk({"text": "a"}), _chunk(finish=True)
    assert numbering.apply([emptied, kept, finished]) == [kept, finished]


def test_reasoning_is_claimed_where_the_adapter_can_rewrite_it() -> None:
    provided = ADAPTER.response_parts("generateContent")
    assert {"text", "reasoning", "logprobs", "tool_arguments", "usage"} <= provided
    assert not ADAPTER.carries("generateContent", "refusal")


@pytest.mark.parametrize("chunks", [[], [1], [5, 9, 2], [64] * 3])
def test_a_text_policy_sees_the_same_text_streamed_or_whole(chunks: list[int]) -> None:
    """Through a real pipeline (logprobs policy, which runs the adapter's chunk pass), any chunking of
    the stream gives the whole body's text, and no chunk is left empty."""
    request = {"contents": [{"role": "user", "parts": [{"text": "Explain caching."}]}]}
    gen = generate(gemini_shapes.generation_body(request), max_tokens=30, with_reasoning=True, top_logprobs=2)
    wire = gemini_shapes.stream([gen], "g", True, True, 2, 2)
    harness = PolicyHarness([("logprobs", {"logprobs": False, "on_excess": "clamp"})])
    exchange = harness.exchange("streamGenerateContent", request, params={"model": "g"})
    events = harness.stream(exchange, encode_events(wire), chunks=chunks)
    texts = [
        p["text"]
        for e in events
        for c in e.json["candidates"]
        for p in c["content"]["parts"]
        if not p.get("thought")
    ]
    assert "".join(texts) == gen.text
    assert all(not any("logprobsResult" in c for c in e.json["candidates"]) for e in events)


def test_body_usage_is_the_adapters_reading() -> None:
    usage = ADAPTER.response_view("generateContent", _body()).usage()
    assert usage is not None and (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens) == (
        3,
        9,
        4,
    )


def test_the_one_pass_read_gives_parts_and_closes() -> None:
    reader = ADAPTER.stream_view("streamGenerateContent")
    reader.read(_chunk({"text": "hmm", "thought": True}), ALL)
    parts, closes = reader.read(_chunk({"text": "Yes"}, finish=True), ALL)
    assert [p.key for p in parts] == [("candidate", 0)] and closes == (("thought", 0), ("candidate", 0))

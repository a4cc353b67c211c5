"""Gemini thought parts and thought signatures in every mode, whole and streamed at any chunking.

A stream is built from the whole body: each text part cut anywhere into chunks (a thought's
signature on its last piece, an answer's on its first, as Gemini streams them), candidates one after
the other, the finish on each candidate's last chunk. What a client reads (consecutive text parts of
the same kind merged) must be the same streamed or not, and no 12-character window of the reasoning
may reach it, except in allow mode.
"""

from __future__ import annotations

import asyncio
import copy
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.protocols.gemini_response import seal_signature, sealed_blob
from gateway.sse import StreamEvent
from policies.reasoning.withhold import estimate_tokens
from tests.policies.reasoning.support import (
    ACCOUNT,
    KEYS,
    MODES,
    answer_text,
    cut,
    leaks,
    reasoning_text,
)
from tests.policy_harness import PolicyHarness

MODEL = {"model": "gemini-mock"}
SIGNATURES = ("Z29vZ2xlLXRob3VnaHQtc2ln", "Z29vZ2xlLWFuc3dlci1zaWc=", "Z29vZ2xlLWNhbGwtc2ln")


@cache
def harness(mode: str, keep_provider_encrypted: bool = True) -> PolicyHarness:
    return PolicyHarness([("reasoning", {"mode": mode, "keep_provider_encrypted": keep_provider_encrypted})])


@st.composite
def candidates(draw: st.DrawFn) -> list[dict[str, Any]]:
    """One or two candidates: an optional thought (signed or not), an answer (signed or not), a call."""
    out = []
    for _ in range(draw(st.integers(1, 2))):
        parts: list[dict[str, Any]] = []
        if draw(st.booleans()):
            thought: dict[str, Any] = {"text": draw(reasoning_text), "thought": True}
            if draw(st.booleans()):
                thought["thoughtSignature"] = SIGNATURES[0]
            parts.append(thought)
        answer: dict[str, Any] = {"text": draw(answer_text) or "ok"}
        if draw(st.booleans()):
            answer["thoughtSignature"] = SIGNATURES[1]
        parts.append(answer)
        if draw(st.booleans()):
            parts.append({"functionCall": {"name": "f", "args": {"q": 1}}, "thoughtSignature": SIGNATURES[2]})
        out.append(parts)
    return out


def body_of(all_parts: list[list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "candidates": [
            {"content": {"parts": copy.deepcopy(parts), "role": "model"}, "finishReason": "STOP", "index": i}
            for i, parts in enumerate(all_parts)
        ],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 5, "thoughtsTokenCount": 7},
        "modelVersion": "gemini-mock",
        "responseId": "r1",
    }


def stream_of(all_parts: list[list[dict[str, Any]]], cuts: list[int]) -> list[StreamEvent]:
    """The chunks of ``body_of(all_parts)`` (see the module docstring)."""
    events = []
    for index, parts in enumerate(all_parts):
        pieces: list[dict[str, Any]] = []
        for part in parts:
            if "text" not in part:
                pieces.append(copy.deepcopy(part))
                continue
            texts = cut(part["text"], cuts) or [""]
            extra = {k: v for k, v in part.items() if k not in ("text", "thoughtSignature")}
            for n, text in enumerate(texts):
                piece = {"text": text, **extra}
                last, first = n == len(texts) - 1, n == 0
                if "thoughtSignature" in part and (last if part.get("thought") else first):
                    piece["thoughtSignature"] = part["thoughtSignature"]
                pieces.append(piece)
        for n, piece in enumerate(pieces):
            candidate: dict[str, Any] = {"content": {"parts": [piece], "role": "model"}, "index": index}
            if n == len(pieces) - 1:
                candidate["finishReason"] = "STOP"
            events.append(StreamEvent.of({"candidates": [candidate], "modelVersion": "gemini-mock"}))
    return events


def opened(value: Any) -> Any:
    """``value`` with each sealed thoughtSignature replaced by ``{"sealed": payload}``."""
    if isinstance(value, dict):
        out = {key: opened(item) for key, item in value.items()}
        blob = sealed_blob(value.get("thoughtSignature"))
        if blob is not None:
            out["thoughtSignature"] = {"sealed": KEYS.unseal(blob, "m", ACCOUNT)}
        return out
    if isinstance(value, list):
        return [opened(item) for item in value]
    return value


def read(candidate_parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a client reads: consecutive text parts of the same kind merged, their signatures listed."""
    out: list[dict[str, Any]] = []
    for part in candidate_parts:
        signatures = [part["thoughtSignature"]] if "thoughtSignature" in part else []
        if "text" in part and set(part) <= {"text", "thought", "thoughtSignature"}:
            kind = part.get("thought") is True
            if out and out[-1].get("kind") == kind:
                out[-1]["text"] += part["text"]
                out[-1]["signatures"] += signatures
                continue
            out.append({"kind": kind, "text": part["text"], "signatures": signatures})
        else:
            out.append(part)
    return out


def client_view(payloads: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    parts: dict[int, list[dict[str, Any]]] = {}
    for payload in payloads:
        for candidate in payload.get("candidates", []):
            parts.setdefault(candidate["index"], []).extend(candidate.get("content", {}).get("parts", []))
    return {index: read(opened(found)) for index, found in parts.items()}


def run(h: PolicyHarness, all_parts: list[list[dict[str, Any]]], cuts: list[int]) -> tuple[Any, Any]:
    request = {"contents": [{"role": "user", "parts": [{"text": "q"}]}]}
    exchange = h.exchange("generateContent", copy.deepcopy(request), params=MODEL)
    body = asyncio.run(h.response(exchange, body_of(all_parts)))
    exchange = h.exchange("streamGenerateContent", copy.deepcopy(request), params=MODEL)
    streamed = h.stream_events(exchange, stream_of(all_parts, cuts))
    return body, streamed


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=30, deadline=None)
@given(all_parts=candidates(), cuts=st.lists(st.integers(1, 120), max_size=12))
def test_stream_equals_body_and_nothing_leaks(
    mode: str, all_parts: list[list[dict[str, Any]]], cuts: list[int]
) -> None:
    body, streamed = run(harness(mode), all_parts, cuts)
    payloads = [e.json for e in streamed if e.json is not None]
    assert all(p.get("candidates") for p in payloads)  # no chunk left empty
    assert client_view(payloads) == client_view([body])
    thoughts = [p["text"] for parts in all_parts for p in parts if p.get("thought")]
    if mode == "allow":
        return
    for thought in thoughts:
        assert leaks(thought, streamed) == [] and leaks(thought, body) == []
    for index, parts in enumerate(all_parts):
        out = opened(body["candidates"][index]["content"]["parts"])
        original_thought = [p for p in parts if p.get("thought")]
        others = [p for p in parts if not p.get("thought")]
        shown = [p for p in out if p.get("thought")]
        if mode == "seal":
            assert shown == [
                {"text": "", "thought": True, "thoughtSignature": {"sealed": p}} for p in original_thought
            ]
            assert out[len(shown) :] == [
                {**p, "thoughtSignature": {"sealed": p["thoughtSignature"]}} if "thoughtSignature" in p else p
                for p in others
            ]
            continue
        kept = [
            {"text": "", "thoughtSignature": p["thoughtSignature"]}
            for p in original_thought
            if "thoughtSignature" in p
        ]
        if mode == "redact":
            kept = [
                {
                    "text": f"[reasoning withheld: {estimate_tokens(len(p['text']))} tokens]",
                    "thought": True,
                    **({"thoughtSignature": p["thoughtSignature"]} if "thoughtSignature" in p else {}),
                }
                for p in original_thought
            ]
        assert out == kept + others  # drop and summary: Gemini's thought summaries are reasoning


@settings(max_examples=30, deadline=None)
@given(all_parts=candidates(), cuts=st.lists(st.integers(1, 120), max_size=12))
def test_what_is_sealed_streamed_comes_back_in_the_next_turn(
    all_parts: list[list[dict[str, Any]]], cuts: list[int]
) -> None:
    h = harness("seal")
    _, streamed = run(h, all_parts, cuts)
    received: list[dict[str, Any]] = [
        p for e in streamed if e.json for c in e.json["candidates"] for p in c["content"]["parts"]
        if c["index"] == 0
    ]  # fmt: skip
    request = {"contents": [{"role": "user", "parts": [{"text": "q"}]}, {"role": "model", "parts": received}]}
    exchange = h.exchange("generateContent", request, params=MODEL)
    asyncio.run(h.request(exchange))
    assert read(exchange.body["contents"][1]["parts"]) == read(all_parts[0])


def test_opaque_signatures_can_be_withheld_too() -> None:
    parts = [
        {"text": "αβγδεζηθικλμνξ", "thought": True, "thoughtSignature": SIGNATURES[0]},
        {"text": "ok", "thoughtSignature": SIGNATURES[1]},
    ]
    body, streamed = run(harness("drop", keep_provider_encrypted=False), [parts], [3])
    assert body["candidates"][0]["content"]["parts"] == [{"text": "ok"}]
    assert client_view([e.json for e in streamed if e.json]) == {
        0: [{"kind": False, "text": "ok", "signatures": []}]
    }


def test_a_stream_that_ends_while_thinking_still_gets_its_placeholder() -> None:
    events = [
        StreamEvent.of({"candidates": [{"content": {"parts": [{"text": t, "thought": True}]}, "index": 0}]})
        for t in ("αβγδεζη", "θικλμνξ")
    ]
    h = harness("redact")
    exchange = h.exchange("streamGenerateContent", {"contents": []}, params=MODEL)
    out = [e.json for e in h.stream_events(exchange, events)]
    assert out == [
        {"candidates": [{"index": 0, "content": {"parts": [
            {"text": "[reasoning withheld: 4 tokens]", "thought": True}], "role": "model"}}]}
    ]  # fmt: skip


def test_forged_or_foreign_blobs_in_the_history_are_a_400() -> None:
    h = harness("seal")
    other = KEYS.seal("m", "someone-else", {"text": "x", "thought": True})
    wrong_shape = KEYS.seal("m", ACCOUNT, "a signature, not a thought")
    for blob, reason in (("not-a-blob", "malformed"), (other, "wrong_account"), (wrong_shape, "malformed")):
        signature = seal_signature(blob)
        request = {
            "contents": [
                {"role": "model", "parts": [{"text": "", "thought": True, "thoughtSignature": signature}]}
            ]
        }
        exchange = h.exchange("generateContent", request, params=MODEL)
        with pytest.raises(Exception) as refused:
            asyncio.run(h.request(exchange))
        assert getattr(refused.value, "status", None) == 400, refused.value
        assert getattr(refused.value, "param", None) == "contents[0].parts[0].thoughtSignature"
        assert f"unseal_failed:{reason}" in [a.action for a in exchange.actions]


def test_thoughts_token_count_feeds_the_metric() -> None:
    from prometheus_client import REGISTRY

    def withheld() -> float:
        labels = {"mode": "drop", "format": "gemini"}
        return REGISTRY.get_sample_value("distillguard_reasoning_withheld_tokens_total", labels) or 0.0

    h = PolicyHarness([("reasoning", {"mode": "drop"})])
    exchange = h.exchange("generateContent", {"contents": []}, params=MODEL)
    before = withheld()
    asyncio.run(h.request(exchange))
    asyncio.run(h.response(exchange, body_of([[{"text": "αβγ", "thought": True}, {"text": "ok"}]])))
    asyncio.run(h.after(exchange))
    assert withheld() - before == 7  # usageMetadata.thoughtsTokenCount

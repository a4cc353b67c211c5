"""Response side, every shape, streaming and not: caps, grid, keyed noise, drops; chunking-independent."""

from __future__ import annotations

import asyncio
import copy
import os
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from gateway.errors import PolicyFailureError
from gateway.mock import gemini_shapes, openai_shapes
from gateway.mock.generation import generate
from gateway.sse import StreamEvent
from tests.policy_harness import PolicyHarness, encode_events

os.environ.setdefault("DISTILLGUARD_LOGPROB_NOISE_KEY", "test-logprob-noise-key-0123456789")

COARSE = {"top_k": 3, "grid": 0.25, "noise": {"scale": 0.4}}
CHUNKS = st.lists(st.integers(1, 64), max_size=40)
PROMPT = "Explain how a cache works, briefly."


def _generation(top: int = 20, **extra: Any) -> Any:
    body = {"messages": [{"role": "user", "content": PROMPT}]}
    return generate(body, max_tokens=12, with_reasoning=False, top_logprobs=top, **extra)


def _harness(config: dict[str, Any]) -> PolicyHarness:
    """Requests are clamped here so that the response side sees what the upstream would send anyway."""
    return PolicyHarness([("logprobs", {"on_excess": "clamp", **config})])


def _exchange(harness: PolicyHarness, operation: str, stream: bool) -> Any:
    body: dict[str, Any] = {"model": "mock-small", "stream": stream}
    if operation == "chat.completions":
        body |= {"messages": [{"role": "user", "content": PROMPT}], "logprobs": True, "top_logprobs": 3}
    elif operation == "completions":
        body |= {"prompt": PROMPT, "logprobs": 3}
    elif operation == "generateContent":  # Gemini: the model is the path's, streaming the verb's
        body = {
            "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
            "generationConfig": {"responseLogprobs": True, "logprobs": 3},
        }
        exchange = harness.exchange(operation, body, params={"model": "gemini-mock"})
        asyncio.run(harness.request(exchange))
        return exchange
    else:
        body |= {"input": PROMPT, "top_logprobs": 3, "include": ["message.output_text.logprobs"]}
    exchange = harness.exchange(operation, body)
    asyncio.run(harness.request(exchange))
    return exchange


def _upstream(operation: str, gen: Any) -> tuple[dict[str, Any], bytes]:
    """The mock's whole body and its stream bytes for the same generation."""
    if operation == "chat.completions":
        body = openai_shapes.chat_completion(gen, "mock-small", "none", 1, [gen])
        events = openai_shapes.chat_stream(gen, "mock-small", "none", True, 1)
    elif operation == "completions":
        body = openai_shapes.completion(gen, "mock-small", False, PROMPT)
        events = openai_shapes.completion_stream(gen, "mock-small", True, 1)
    elif operation == "generateContent":
        body = gemini_shapes.response([gen], "gemini-mock", False, True, 20)
        events = gemini_shapes.stream([gen], "gemini-mock", False, True, 20, 1)
    else:
        body = openai_shapes.response_object(gen, "mock-small", False)
        events = openai_shapes.response_stream(gen, "mock-small", False, 1)
    return body, encode_events(events)


def _body_logprobs(operation: str, body: dict[str, Any]) -> Any:
    if operation == "chat.completions":
        return body["choices"][0]["logprobs"]["content"]
    if operation == "completions":
        logprobs = body["choices"][0]["logprobs"]
        return list(
            zip(logprobs["tokens"], logprobs["token_logprobs"], logprobs["top_logprobs"], strict=True)
        )
    if operation == "generateContent":
        candidate = body["candidates"][0]
        result = candidate["logprobsResult"]
        steps = list(zip(result["chosenCandidates"], result["topCandidates"], strict=True))
        return [*steps, candidate["avgLogprobs"]]
    return body["output"][-1]["content"][0]["logprobs"]


def _stream_logprobs(operation: str, events: list[StreamEvent]) -> Any:
    out: list[Any] = []
    averages: list[Any] = []  # Gemini: the candidate's avgLogprobs, on its last chunk
    for event in events:
        payload = event.json
        if payload is None:
            continue
        if operation == "responses":
            if payload.get("type") == "response.output_text.delta":
                out.extend(payload["logprobs"])
            continue
        if operation == "generateContent":
            candidate = payload["candidates"][0]
            result = candidate["logprobsResult"]
            out.extend(zip(result["chosenCandidates"], result["topCandidates"], strict=True))
            averages.extend([candidate["avgLogprobs"]] if "avgLogprobs" in candidate else [])
            continue
        for choice in payload.get("choices") or []:
            logprobs = choice.get("logprobs")
            if not logprobs:
                continue
            if operation == "chat.completions":
                out.extend(logprobs["content"])
            else:
                out.extend(
                    zip(logprobs["tokens"], logprobs["token_logprobs"], logprobs["top_logprobs"], strict=True)
                )
    return out + averages


OPERATIONS = ["chat.completions", "completions", "responses", "generateContent"]


@pytest.mark.parametrize("operation", OPERATIONS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=CHUNKS)
def test_stream_equals_whole_body_for_any_chunking(operation: str, chunks: list[int]) -> None:
    harness = _harness(COARSE)
    gen = _generation()
    body, stream_bytes = _upstream(operation, gen)
    whole = asyncio.run(harness.response(_exchange(harness, operation, False), copy.deepcopy(body)))
    streamed = harness.stream(_exchange(harness, operation, True), stream_bytes, chunks=chunks)
    assert _stream_logprobs(operation, streamed) == _body_logprobs(operation, whole)
    average = operation == "generateContent"  # and the candidate's avgLogprobs
    assert len(_body_logprobs(operation, whole)) == len(gen.tokens) + average


@pytest.mark.parametrize("operation", ["chat.completions", "responses"])
def test_alternatives_capped_rounded_and_consistent(operation: str) -> None:
    harness = _harness(COARSE)
    gen = _generation()
    body, _ = _upstream(operation, gen)
    exchange = _exchange(harness, operation, False)
    entries = _body_logprobs(operation, asyncio.run(harness.response(exchange, body)))
    for entry, step in zip(entries, gen.logprobs, strict=True):
        alternatives = entry["top_logprobs"]
        assert [alt["token"] for alt in alternatives] == [token for token, _, _ in step.top[:3]]
        for value in [entry["logprob"], *(alt["logprob"] for alt in alternatives)]:
            assert value <= 0 and value == round(value / 0.25) * 0.25
        same = [alt["logprob"] for alt in alternatives if alt["token"] == entry["token"]]
        assert same in ([], [entry["logprob"]])  # the sampled token gets the same noise as an alternative
    labels = {"route": operation}
    before = REGISTRY.get_sample_value("distillguard_logprobs_alternatives_withheld_total", labels) or 0.0
    asyncio.run(harness.after(exchange))
    assert ("alternatives_withheld", 17 * len(gen.tokens)) in [(a.action, a.count) for a in exchange.actions]
    after = REGISTRY.get_sample_value("distillguard_logprobs_alternatives_withheld_total", labels)
    assert after == before + 17 * len(gen.tokens)


def test_noise_changes_values_but_repeats_are_identical() -> None:
    gen = _generation()
    body, _ = _upstream("chat.completions", gen)
    exact = _harness({"top_k": 3})
    noisy = _harness({"top_k": 3, "noise": {"scale": 0.4}})

    def run(harness: PolicyHarness, account: str = "acct-1") -> list[float]:
        exchange = harness.exchange(
            "chat.completions",
            {"model": "mock-small", "messages": [{"role": "user", "content": PROMPT}], "logprobs": True},
            account=account,
        )
        asyncio.run(harness.request(exchange))
        entries = asyncio.run(harness.response(exchange, copy.deepcopy(body)))["choices"][0]["logprobs"][
            "content"
        ]
        return [entry["logprob"] for entry in entries]

    truth = [step.logprob for step in gen.logprobs]
    assert run(exact) == truth
    first = run(noisy)
    assert first == run(noisy)  # identical on repeats: averaging gains nothing
    assert all(a != b for a, b in zip(first, truth, strict=True))
    assert run(noisy, "acct-2") != first  # keyed per account


def test_legacy_keeps_top_k_plus_the_sampled_token() -> None:
    harness = _harness({"top_k": 1})
    gen = _generation()
    body, _ = _upstream("completions", gen)
    out = asyncio.run(harness.response(_exchange(harness, "completions", False), body))
    logprobs = out["choices"][0]["logprobs"]
    for token, alternatives, step in zip(
        logprobs["tokens"], logprobs["top_logprobs"], gen.logprobs, strict=True
    ):
        best = step.top[0][0]
        assert set(alternatives) == {best, token}
        assert alternatives[token] == step.logprob


@pytest.mark.parametrize("operation", OPERATIONS)
@settings(max_examples=10, deadline=None)
@given(chunks=CHUNKS)
def test_tier_without_logprobs_gets_none_anywhere(operation: str, chunks: list[int]) -> None:
    harness = _harness({"logprobs": False})
    gen = _generation()
    body, stream_bytes = _upstream(operation, gen)
    whole = asyncio.run(harness.response(_exchange(harness, operation, False), body))
    streamed = harness.stream(_exchange(harness, operation, True), stream_bytes, chunks=chunks)
    wire = orjson.dumps(whole) + b"".join(event.encode() for event in streamed)
    assert b'"top_logprobs"' not in wire and b'"token_logprobs"' not in wire
    assert b'"logprob"' not in wire


def test_top_k_zero_keeps_only_the_sampled_token() -> None:
    harness = _harness({"top_k": 0})
    gen = _generation()
    body, _ = _upstream("chat.completions", gen)
    out = asyncio.run(harness.response(_exchange(harness, "chat.completions", False), body))
    entries = out["choices"][0]["logprobs"]["content"]
    assert [e["logprob"] for e in entries] == [s.logprob for s in gen.logprobs]
    assert all(e["top_logprobs"] == [] for e in entries)


def test_refusal_logprobs_are_coarsened_too() -> None:
    harness = _harness({"top_k": 1, "grid": 1.0})
    body = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "refusal": "No."},
                "logprobs": {
                    "content": None,
                    "refusal": [
                        {
                            "token": "No",
                            "logprob": -0.3,
                            "top_logprobs": [
                                {"token": "No", "logprob": -0.3},
                                {"token": "Sorry", "logprob": -1.7},
                            ],
                        }
                    ],
                },
            }
        ]
    }
    out = asyncio.run(harness.response(_exchange(harness, "chat.completions", False), body))
    assert out["choices"][0]["logprobs"]["refusal"] == [
        {"token": "No", "logprob": 0.0, "top_logprobs": [{"token": "No", "logprob": 0.0}]}
    ]


def test_responses_lifecycle_events_carry_the_same_coarse_values() -> None:
    harness = _harness(COARSE)
    _, stream_bytes = _upstream("responses", _generation())
    events = harness.stream(_exchange(harness, "responses", True), stream_bytes, chunks=[7] * 500)
    by_type: dict[str, Any] = {}
    for event in events:
        payload = event.json or {}
        by_type.setdefault(payload.get("type"), []).append(payload)
    deltas = [lp for payload in by_type["response.output_text.delta"] for lp in payload["logprobs"]]
    done = by_type["response.output_text.done"][0]["logprobs"]
    part = by_type["response.content_part.done"][0]["part"]["logprobs"]
    item = by_type["response.output_item.done"][-1]["item"]["content"][0]["logprobs"]
    final = by_type["response.completed"][0]["response"]["output"][-1]["content"][0]["logprobs"]
    assert deltas == done == part == item == final
    assert all(len(entry["top_logprobs"]) == 3 for entry in final)


def test_vllm_prompt_logprobs_dropped_or_capped() -> None:
    gen = _generation(prompt_logprobs=6)
    body, _ = _upstream("chat.completions", gen)
    assert body["prompt_logprobs"][1] is not None and len(body["prompt_logprobs"][1]) >= 6
    dropped = _harness({})
    out = asyncio.run(dropped.response(_exchange(dropped, "chat.completions", False), copy.deepcopy(body)))
    assert out["prompt_logprobs"] is None
    capped = _harness({"prompt_logprobs": True, "top_k": 2, "grid": 0.5})
    out = asyncio.run(capped.response(_exchange(capped, "chat.completions", False), copy.deepcopy(body)))
    for entry in out["prompt_logprobs"][1:]:
        assert 1 <= len(entry) <= 3
        assert all(info["logprob"] == round(info["logprob"] * 2) / 2 for info in entry.values())


@pytest.mark.parametrize(
    ("operation", "payload"),
    [
        ("chat.completions", {"choices": [{"index": 0, "delta": {}, "logprobs": {"content": "oops"}}]}),
        ("chat.completions", {"choices": [{"index": 0, "delta": {}, "logprobs": [1, 2]}]}),
        ("completions", {"choices": [{"index": 0, "text": "a", "logprobs": {"tokens": "a"}}]}),
        ("responses", {"type": "response.output_text.delta", "logprobs": [{"token": "a", "logprob": "x"}]}),
    ],
)
def test_malformed_logprobs_fail_closed(operation: str, payload: dict[str, Any]) -> None:
    harness = _harness(COARSE)
    with pytest.raises(PolicyFailureError):
        harness.stream_events(_exchange(harness, operation, True), [StreamEvent.of(payload)])

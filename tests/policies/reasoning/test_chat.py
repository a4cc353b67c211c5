"""Chat Completions and Completions: every reasoning format in every mode, whole and streamed."""

from __future__ import annotations

import asyncio
import copy
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.sse import StreamEvent
from policies.reasoning.withhold import estimate_tokens
from tests.policies.reasoning.chatkit import accumulate, chat_body, chat_stream, message_view, normalise
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

FORMATS = ("reasoning_content", "reasoning", "both", "openrouter", "think", "think-open")


@cache
def harness(mode: str, assume_open: bool = False, **extra: Any) -> PolicyHarness:
    config = {"mode": mode, "assume_open_think": assume_open, **extra}
    if mode == "seal":  # these tests pin the inline delivery; test_chat_delivery.py the others
        config.setdefault("seal", {"chat": "inline"})
    return PolicyHarness([("reasoning", config)])


def build_message(fmt: str, reasoning: str, answer: str, summary: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer}
    if fmt in ("reasoning_content", "reasoning"):
        message[fmt] = reasoning
    elif fmt == "both":
        message["reasoning_content"] = message["reasoning"] = reasoning
    elif fmt == "openrouter":
        message["reasoning"] = reasoning
        message["reasoning_details"] = [
            {"type": "reasoning.text", "text": reasoning},
            {"type": "reasoning.summary", "summary": summary},
            {"type": "reasoning.encrypted", "data": "opaque-provider-data"},
        ]
    elif fmt == "think":
        message["content"] = f"<think>{reasoning}</think>\n\n{answer}"
    else:  # think-open: the template pre-filled <think>
        message["content"] = f"{reasoning}</think>\n\n{answer}"
    return message


def run_body(h: PolicyHarness, body: dict[str, Any], operation: str = "chat.completions") -> dict[str, Any]:
    exchange = h.exchange(operation, {"model": "m", "messages": []})
    return asyncio.run(h.response(exchange, body))


def run_stream(
    h: PolicyHarness, raw: bytes, chunks: list[int], operation: str = "chat.completions", model: str = "m"
) -> list[StreamEvent]:
    exchange = h.exchange(operation, {"model": model, "messages": [], "stream": True})
    return h.stream(exchange, raw, chunks=chunks)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=25, deadline=None)
@given(
    reasoning=reasoning_text,
    answer=answer_text,
    summary=summary_text,
    points=st.lists(st.integers(0, 200), max_size=12),
    chunks=chunk_sizes,
)
def test_stream_equals_body_and_nothing_leaks(
    mode: str, fmt: str, reasoning: str, answer: str, summary: str, points: list[int], chunks: list[int]
) -> None:
    h = harness(mode, assume_open=fmt == "think-open")
    message = build_message(fmt, reasoning, answer, summary)
    body = run_body(h, chat_body(copy.deepcopy(message)))
    streamed = run_stream(h, chat_stream(message, points), chunks)
    assert normalise(unseal_all(accumulate(streamed))) == normalise(unseal_all(message_view(body)))
    if mode == "allow":
        assert body["choices"][0]["message"] == message
        return
    assert leaks(reasoning, streamed) == []
    assert leaks(reasoning, body) == []
    view = message_view(body)[0]
    visible = view["content"]
    if fmt.startswith("think"):
        assert visible.endswith(f"\n\n{answer}")
    else:
        assert visible == answer
    fields = {key: value for key, value in view.items() if key.startswith("reasoning")}
    details = [item["type"] for item in fields.pop("reasoning_details", [])]
    if fmt == "openrouter" and mode != "seal":
        assert details == (["reasoning.summary"] if mode == "summary" else []) + ["reasoning.encrypted"]
    else:
        assert details == []
    if mode in ("drop", "summary"):
        assert "<think>" not in visible
        assert fields == {}
    elif mode == "redact":
        placeholder = f"[reasoning withheld: {estimate_tokens(len(reasoning))} tokens]"
        if fmt.startswith("think"):
            assert visible == f"<think>{placeholder}</think>\n\n{answer}"
        else:
            assert set(fields.values()) == {placeholder}
    else:  # seal: the blob holds exactly what the upstream sent
        opened = unseal_all(view)
        if fmt == "think":
            assert (
                opened["content"] == f'<think>{{"sealed":"<think>{reasoning}</think>"}}</think>\n\n{answer}'
            )
        elif fmt == "think-open":
            assert opened["content"] == f'<think>{{"sealed":"{reasoning}</think>"}}</think>\n\n{answer}'
        else:
            sealed = next(value for key, value in opened.items() if key.startswith("reasoning"))["sealed"]
            original = {k: v for k, v in message.items() if k in ("reasoning_content", "reasoning")}
            assert sealed["fields"] == original
            assert sealed["details"] == message.get("reasoning_details", [])


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=25, deadline=None)
@given(reasoning=reasoning_text, answer=answer_text, points=st.lists(st.integers(0, 200), max_size=12))
def test_completions_text(mode: str, reasoning: str, answer: str, points: list[int]) -> None:
    h = harness(mode)
    text = f"<think>{reasoning}</think>{answer}"
    body = {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}],
    }
    whole = run_body(h, body, "completions")
    base = {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m"}
    events: list[tuple[str | None, dict[str, Any] | str]] = [
        (None, {**base, "choices": [{"index": 0, "text": piece, "logprobs": None, "finish_reason": None}]})
        for piece in [
            text[a:b] for a, b in zip([0, *sorted(points)], [*sorted(points), len(text)], strict=True)
        ]
        if piece
    ]
    events.append(
        (None, {**base, "choices": [{"index": 0, "text": "", "logprobs": None, "finish_reason": "stop"}]})
    )
    events.append((None, "[DONE]"))
    streamed = run_stream(h, encode_events(events), [], "completions")
    joined = "".join(c["text"] for e in streamed if e.json for c in e.json["choices"])
    assert unseal_all(joined) == unseal_all(whole["choices"][0]["text"])
    if mode == "allow":
        assert joined == text
        return
    assert leaks(reasoning, streamed) == [] and leaks(reasoning, whole) == []
    assert all(c["text"] or c["finish_reason"] for e in streamed if e.json for c in e.json["choices"])


def test_chunks_that_carry_only_reasoning_are_dropped() -> None:
    message = build_message("reasoning_content", "αβγδεζηθικλμνξ", "answer", "")
    streamed = run_stream(harness("drop"), chat_stream(message, [2, 4, 6]), [])
    deltas = [c["delta"] for e in streamed if e.json for c in e.json["choices"]]
    assert deltas == [{"role": "assistant", "content": ""}, {"content": "answer"}, {}]


def test_redact_placeholder_is_configurable() -> None:
    h = harness("redact", redact_text="(hidden, ~{tokens} tok)")
    body = run_body(h, chat_body(build_message("reasoning_content", "ω" * 41, "ok", "")))
    assert body["choices"][0]["message"]["reasoning_content"] == "(hidden, ~11 tok)"


def test_models_matching_open_think_models_start_inside_a_block() -> None:
    h = PolicyHarness([("reasoning", {"mode": "drop"})])  # assume_open_think: auto
    raw = chat_stream({"role": "assistant", "content": "plan</think>answer"}, [3, 9])
    for model, expected in (("DeepSeek-R1-Distill-Qwen-7B", "answer"), ("mock-small", "plan</think>answer")):
        out = run_stream(h, raw, [], model=model)
        assert accumulate(out)[0]["content"] == expected


def test_reasoning_field_cancels_the_implicit_block() -> None:
    # A server with a reasoning parser puts the reasoning in a field and leaves content clean.
    h = harness("drop", assume_open=True)
    message = build_message("reasoning_content", "αβγδεζηθικλμνξ", "plain answer", "")
    assert accumulate(run_stream(h, chat_stream(message, [5]), []))[0]["content"] == "plain answer"
    body = run_body(h, chat_body(copy.deepcopy(message)))
    assert body["choices"][0]["message"]["content"] == "plain answer"


def test_unterminated_think_block_at_end_of_stream() -> None:
    events: list[tuple[str | None, dict[str, Any] | str]] = [
        (
            None,
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "m",
                "choices": [
                    {"index": 0, "delta": {"content": "hi <think>αβγδεζηθικλμν"}, "finish_reason": None}
                ],
            },
        ),
        (None, "[DONE]"),
    ]
    out = run_stream(harness("redact"), encode_events(events), [])
    assert accumulate(out)[0]["content"] == "hi <think>[reasoning withheld: 4 tokens]</think>"


def test_a_text_delta_withheld_whole_keeps_the_usage_its_chunk_carries() -> None:
    # The usual chunk (one choice, one text delta) has a shortcut; when all of its text is
    # reasoning the choice goes, and the chunk stays for the usage it carries (nothing of the text).
    def chunk(delta: dict[str, Any], **extra: Any) -> tuple[None, dict[str, Any]]:
        choice = {"index": 0, "delta": delta, "finish_reason": None}
        return None, {"id": "c", "object": "chat.completion.chunk", "choices": [choice], **extra}

    usage = {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    events: list[tuple[str | None, dict[str, Any] | str]] = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "<think>plan"}),
        chunk({"content": " secretly"}, usage=usage),
        chunk({"content": " more"}),
        chunk({"content": "</think>Hello"}),
        (None, "[DONE]"),
    ]
    out = run_stream(harness("drop"), encode_events(events), [])
    payloads = [e.json for e in out if e.json is not None]
    assert {"choices": [], "usage": usage, "id": "c", "object": "chat.completion.chunk"} in payloads
    assert "secretly" not in str(payloads) and "more" not in str(payloads)
    assert accumulate(out)[0]["content"] == "Hello"


def _logprob(token: str) -> dict[str, Any]:
    return {"token": token, "bytes": list(token.encode()), "logprob": -0.1, "top_logprobs": []}


def test_logprobs_of_withheld_tokens_are_removed() -> None:
    tokens = ["Hi", " <think>", "αβγ", "δεζ", "</think>", " there"]
    body = chat_body({"role": "assistant", "content": "".join(tokens)})
    body["choices"][0]["logprobs"] = {"content": [_logprob(t) for t in tokens], "refusal": None}
    out = run_body(harness("drop"), body)
    assert out["choices"][0]["message"]["content"] == "Hi  there"  # " <think>" straddles: its logprob goes
    assert [e["token"] for e in out["choices"][0]["logprobs"]["content"]] == ["Hi", " there"]
    # A server with a reasoning parser may report logprobs of the reasoning tokens too.
    body = chat_body({"role": "assistant", "content": " there", "reasoning_content": "αβγδεζ"})
    body["choices"][0]["logprobs"] = {"content": [_logprob(t) for t in ("αβγ", "δεζ", " there")]}
    out = run_body(harness("seal"), body)
    assert [e["token"] for e in out["choices"][0]["logprobs"]["content"]] == [" there"]
    # Streamed, per chunk; a chunk whose logprobs cannot be aligned loses them all.
    chunks = [
        {"delta": {"content": "Hi <thi"}, "logprobs": {"content": [_logprob("Hi"), _logprob(" <thi")]}},
        {
            "delta": {"content": "nk>αβγ</think> ok"},
            "logprobs": {"content": [_logprob("nk>αβγ</think>"), _logprob(" ok")]},
        },
        {"delta": {"content": "<think>αβγ</think>!"}, "logprobs": {"content": [_logprob("?")]}},
    ]
    events: list[tuple[str | None, dict[str, Any] | str]] = [
        (
            None,
            {
                **{"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"},
                "choices": [{"index": 0, "finish_reason": None, **chunk}],
            },
        )
        for chunk in chunks
    ]
    events.append((None, "[DONE]"))
    out = run_stream(harness("drop"), encode_events(events), [])
    kept = [
        e["token"]
        for ev in out
        if ev.json
        for c in ev.json["choices"]
        for e in (c.get("logprobs") or {}).get("content") or []
    ]
    assert kept == ["Hi", " ok"]
    assert leaks("αβγ", out, window=3) == []


def test_malformed_reasoning_field_fails_closed() -> None:
    from gateway.errors import PolicyFailureError

    body = chat_body({"role": "assistant", "content": "x", "reasoning_content": {"text": "αβγ"}})
    with pytest.raises(PolicyFailureError):
        run_body(harness("drop"), body)


def test_n_choices_are_separate() -> None:
    body = chat_body(build_message("think", "αβγδεζηθικλμνξ", "one", ""))
    second = {
        "index": 1,
        "message": build_message("reasoning", "ψωψωψωψωψωψωψω", "two", ""),
        "finish_reason": "stop",
    }
    body["choices"].append(second)
    out = run_body(harness("redact"), body)
    assert [c["message"]["content"] for c in out["choices"]] == [
        "<think>[reasoning withheld: 4 tokens]</think>\n\none",
        "two",
    ]
    assert out["choices"][1]["message"]["reasoning"] == "[reasoning withheld: 4 tokens]"

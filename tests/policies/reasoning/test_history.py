"""On the way in: sealed reasoning in the history is restored; bad blobs are refused with a 400."""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

import pytest

from gateway.errors import PolicyViolationError
from policies.reasoning.seal import is_blob
from tests.policies.reasoning.support import KEYS
from tests.policy_harness import PolicyHarness


@cache
def harness(mode: str = "seal") -> PolicyHarness:
    # blobs where seal.chat: inline puts them (the field delivery: test_chat_delivery.py)
    return PolicyHarness([("reasoning", {"mode": mode, "seal": {"chat": "inline"}})])


def request(
    operation: str, body: dict[str, Any], account: str = "acct-1", mode: str = "seal"
) -> dict[str, Any]:
    h = harness(mode)
    exchange = h.exchange(operation, body, account=account)
    asyncio.run(h.request(exchange))
    return exchange.body


def rejected(operation: str, body: dict[str, Any], account: str = "acct-1") -> PolicyViolationError:
    with pytest.raises(PolicyViolationError) as info:
        request(operation, body, account)
    assert info.value.status == 400 and info.value.code == "invalid_sealed_reasoning"
    return info.value


def chat_history(assistant: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": "m",
        "messages": [{"role": "user", "content": "q"}, assistant, {"role": "user", "content": "more"}],
    }


def test_chat_fields_restored() -> None:
    payload = {
        "fields": {"reasoning_content": "plan A", "reasoning": "plan A"},
        "details": [{"type": "reasoning.text", "text": "plan A"}],
    }
    blob = KEYS.seal("c", "acct-1", payload)
    body = request(
        "chat.completions",
        chat_history({"role": "assistant", "content": "ok", "reasoning_content": blob, "reasoning": blob}),
    )
    assert body["messages"][1] == {
        "role": "assistant",
        "content": "ok",
        "reasoning_content": "plan A",
        "reasoning": "plan A",
        "reasoning_details": [{"type": "reasoning.text", "text": "plan A"}],
    }


def test_think_spans_restored_in_text_and_parts() -> None:
    blob = KEYS.seal("t", "acct-1", "<think>plan B</think>")
    body = request(
        "chat.completions", chat_history({"role": "assistant", "content": f"<think>{blob}</think>\n\nok"})
    )
    assert body["messages"][1]["content"] == "<think>plan B</think>\n\nok"
    parts = [{"type": "text", "text": f"<think>{blob}</think>ok"}]
    body = request("chat.completions", chat_history({"role": "assistant", "content": parts}))
    assert body["messages"][1]["content"][0]["text"] == "<think>plan B</think>ok"


def test_responses_item_restored() -> None:
    original = {
        "id": "rs_1",
        "type": "reasoning",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": "plan C"}],
        "encrypted_content": "gAAAA-upstream",
    }
    blob = KEYS.seal("r", "acct-1", original)
    sent = {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": blob}
    body = request(
        "responses",
        {
            "model": "m",
            "input": [
                {"role": "user", "content": "q"},
                sent,
                {"type": "message", "role": "assistant", "content": "ok"},
            ],
        },
    )
    assert body["input"][1] == original


def test_anthropic_blocks_restored_and_placeholders_removed() -> None:
    thinking = {"type": "thinking", "thinking": "plan D", "signature": "upstream-sig"}
    redacted = {"type": "redacted_thinking", "data": "upstream-data"}
    content = [
        {"type": "thinking", "thinking": "", "signature": KEYS.seal("m", "acct-1", thinking)},
        {"type": "redacted_thinking", "data": KEYS.seal("m", "acct-1", redacted)},
        {"type": "thinking", "thinking": "[reasoning withheld: 3 tokens]", "signature": ""},
        {"type": "text", "text": "ok"},
    ]
    body = request(
        "messages",
        {
            "model": "c",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": content}],
        },
    )
    assert body["messages"][1]["content"] == [thinking, redacted, {"type": "text", "text": "ok"}]


def test_unsealing_works_in_other_modes_when_keys_exist() -> None:
    blob = KEYS.seal("c", "acct-1", {"fields": {"reasoning": "plan"}, "details": []})
    body = request(
        "chat.completions",
        chat_history({"role": "assistant", "content": "ok", "reasoning": blob}),
        mode="drop",
    )
    assert body["messages"][1]["reasoning"] == "plan"


def test_tampered_blob_is_refused() -> None:
    blob = KEYS.seal("m", "acct-1", {"type": "thinking", "thinking": "x", "signature": "s"})
    tampered = blob[:-6] + ("AAAAAA" if not blob.endswith("AAAAAA") else "BBBBBB")
    content = [{"type": "thinking", "thinking": "", "signature": tampered}, {"type": "text", "text": "ok"}]
    error = rejected(
        "messages", {"model": "c", "max_tokens": 10, "messages": [{"role": "assistant", "content": content}]}
    )
    assert error.param == "messages[0].content[0].signature"
    assert "failed authentication" in error.message and "exactly as the gateway returned it" in error.message


def test_another_accounts_blob_is_refused() -> None:
    blob = KEYS.seal("c", "acct-1", {"fields": {"reasoning": "plan"}, "details": []})
    error = rejected(
        "chat.completions",
        chat_history({"role": "assistant", "content": "ok", "reasoning": blob}),
        account="acct-2",
    )
    assert error.param == "messages[1].reasoning" and "different account" in error.message


def test_blob_of_another_format_is_refused() -> None:
    blob = KEYS.seal("c", "acct-1", {"fields": {"reasoning": "plan"}, "details": []})
    item = {"type": "reasoning", "summary": [], "encrypted_content": blob}
    error = rejected("responses", {"model": "m", "input": [item]})
    assert "chat completions reasoning" in error.message and error.param == "input[0].encrypted_content"


def test_blobs_outside_assistant_reasoning_are_left_alone() -> None:
    blob = KEYS.seal("c", "acct-1", {"fields": {"reasoning": "plan"}, "details": []})
    body = request(
        "chat.completions", {"model": "m", "messages": [{"role": "user", "content": blob, "reasoning": blob}]}
    )
    assert is_blob(body["messages"][0]["content"]) and is_blob(body["messages"][0]["reasoning"])


def test_blob_that_opens_to_the_wrong_shape_is_refused() -> None:
    blob = KEYS.seal("r", "acct-1", {"type": "message", "content": "not a reasoning item"})
    item = {"type": "reasoning", "summary": [], "encrypted_content": blob}
    error = rejected("responses", {"model": "m", "input": [item]})
    assert "malformed" in error.message and error.param == "input[0].encrypted_content"

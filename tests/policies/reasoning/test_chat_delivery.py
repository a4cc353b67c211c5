"""Seal mode's chat delivery (``seal.chat``): the blob never lands where chat UIs render reasoning.

Open WebUI, LibreChat, Chatbox and others show ``reasoning_content`` / ``reasoning`` and
``<think>`` spans of ``content`` as the model's thinking, so a blob there is gibberish on an end
user's screen. ``field`` (the default) puts it in ``sealed_reasoning``, which no UI renders and
which opens again when sent back; ``omit`` delivers none.
"""

from __future__ import annotations

import asyncio
import copy
import re
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings

from tests.policies.reasoning.chatkit import accumulate, chat_body, chat_stream
from tests.policies.reasoning.support import ACCOUNT, answer_text, chunk_sizes, reasoning_text, unseal_all
from tests.policy_harness import PolicyHarness

BLOB = re.compile(r"dgs1\.[A-Za-z0-9_-]+\.[a-z]\.")
THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.S)


@cache
def harness(delivery: str | None) -> PolicyHarness:
    config: dict[str, Any] = {"mode": "seal", "assume_open_think": False}
    if delivery is not None:
        config["seal"] = {"chat": delivery}
    return PolicyHarness([("reasoning", config)])


def ui_view(message: dict[str, Any]) -> list[str]:
    """The strings a chat UI renders as text: content, <think> spans in it, the reasoning fields."""
    content = str(message.get("content") or "")
    fields = [str(message.get(name) or "") for name in ("reasoning_content", "reasoning")]
    return [content, *THINK.findall(content), *fields]


def run_body(h: PolicyHarness, body: dict[str, Any]) -> dict[str, Any]:
    exchange = h.exchange("chat.completions", {"model": "m", "messages": []})
    return asyncio.run(h.response(exchange, body))


def run_stream(h: PolicyHarness, raw: bytes, chunks: list[int]) -> dict[str, Any]:
    exchange = h.exchange("chat.completions", {"model": "m", "messages": [], "stream": True})
    return accumulate(h.stream(exchange, raw, chunks=chunks))[0]


@pytest.mark.parametrize("fmt", ["reasoning_content", "think"])
@settings(max_examples=25, deadline=None)
@given(reasoning=reasoning_text, answer=answer_text, points=chunk_sizes, chunks=chunk_sizes)
def test_default_field_delivery_keeps_blobs_out_of_what_uis_render(
    fmt: str, reasoning: str, answer: str, points: list[int], chunks: list[int]
) -> None:
    if fmt == "think":
        message = {"role": "assistant", "content": f"<think>{reasoning}</think>\n\n{answer}"}
    else:
        message = {"role": "assistant", "content": answer, fmt: reasoning}
    h = harness(None)  # the schema default
    whole = run_body(h, chat_body(dict(message)))["choices"][0]["message"]
    streamed = run_stream(h, chat_stream(message, points), chunks)
    for out in (whole, streamed):
        assert not any(BLOB.search(text) for text in ui_view(out))
        assert "reasoning_content" not in out or not out["reasoning_content"]
        assert reasoning.strip() not in str(out)
    if fmt == "reasoning_content":  # the field holds exactly what was withheld
        assert unseal_all(whole["sealed_reasoning"])["sealed"]["fields"] == {fmt: reasoning}
        assert unseal_all(streamed["sealed_reasoning"])["sealed"]["fields"] == {fmt: reasoning}
    else:  # an inline span has no field of its own: it is withheld, not delivered
        assert "sealed_reasoning" not in whole and whole["content"].strip() == answer.strip()


def test_omit_delivers_no_blob_anywhere() -> None:
    message = {"role": "assistant", "content": "Paris.", "reasoning_content": "αβγδεζηθικλμ"}
    out = run_body(harness("omit"), chat_body(message))["choices"][0]["message"]
    assert "dgs1." not in str(out) and out["content"] == "Paris."


def test_sealed_field_round_trips_and_never_reaches_the_upstream() -> None:
    h = harness(None)
    out = run_body(h, chat_body({"role": "assistant", "content": "Paris.", "reasoning_content": "αβγδεζηθ"}))
    blob = out["choices"][0]["message"]["sealed_reasoning"]
    history = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris.", "sealed_reasoning": blob},
            {"role": "user", "content": "Sure?"},
        ],
    }
    exchange = h.exchange("chat.completions", copy.deepcopy(history), account=ACCOUNT)
    asyncio.run(h.request(exchange))
    assistant = exchange.body["messages"][1]
    assert assistant == {"role": "assistant", "content": "Paris.", "reasoning_content": "αβγδεζηθ"}
    # Another account's blob, or a stray value in the gateway's own field, never goes upstream as sent.
    stranger = h.exchange("chat.completions", history, account="someone-else")
    with pytest.raises(Exception, match="sealed"):
        asyncio.run(h.request(stranger))
    stray = {"role": "assistant", "content": "x", "sealed_reasoning": "not a blob"}
    junk = {"model": "m", "messages": [stray]}
    exchange = h.exchange("chat.completions", junk, account=ACCOUNT)
    asyncio.run(h.request(exchange))
    assert "sealed_reasoning" not in exchange.body["messages"][0]

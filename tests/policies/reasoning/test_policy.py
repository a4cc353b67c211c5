"""The policy's own phases: startup checks, Anthropic display, metrics, shadow mode, allow."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import REGISTRY

from gateway.mock import openai_shapes
from gateway.mock.generation import Generation
from gateway.mock.text import tokenize
from tests.policies.reasoning.chatkit import chat_body, chat_stream
from tests.policy_harness import PolicyHarness


def withheld(mode: str, fmt: str) -> float:
    labels = {"mode": mode, "format": fmt}
    return REGISTRY.get_sample_value("distillguard_reasoning_withheld_tokens_total", labels) or 0.0


def test_seal_mode_refuses_to_start_without_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOME_MISSING_KEY", raising=False)
    with pytest.raises(ValueError, match="SOME_MISSING_KEY is not set"):
        PolicyHarness([("reasoning", {"mode": "seal", "seal": {"key_env": "SOME_MISSING_KEY"}})])
    PolicyHarness([("reasoning", {"mode": "drop", "seal": {"key_env": "SOME_MISSING_KEY"}})])


@pytest.mark.parametrize(
    ("mode", "setting", "display"),
    [
        ("drop", "auto", "omitted"),
        ("summary", "auto", "omitted"),
        ("seal", "auto", None),
        ("redact", "always", "omitted"),
        ("drop", "never", None),
    ],
)
def test_anthropic_display_omitted(mode: str, setting: str, display: str | None) -> None:
    h = PolicyHarness([("reasoning", {"mode": mode, "omit_upstream_thinking": setting})])
    body: dict[str, Any] = {"max_tokens": 5000, "thinking": {"type": "enabled", "budget_tokens": 2000}}
    exchange = h.exchange("messages", body)
    asyncio.run(h.request(exchange))
    assert exchange.body["thinking"].get("display") == display


def test_withheld_tokens_use_the_upstream_count_else_an_estimate() -> None:
    h = PolicyHarness([("reasoning", {"mode": "redact"})])
    gen = Generation("p", tokenize("answer"), "αβγδεζηθικλμνξοπ", "summary", 3)
    exchange = h.exchange("responses", {"model": "m", "input": "x"})
    before = withheld("redact", "responses")
    asyncio.run(h.request(exchange))
    asyncio.run(h.response(exchange, openai_shapes.response_object(gen, "m", False)))
    asyncio.run(h.after(exchange))
    assert withheld("redact", "responses") - before == gen.reasoning_tokens  # usage's reasoning_tokens
    # Inline think spans with no upstream count: the estimate (16 characters -> 4 tokens).
    exchange = h.exchange("chat.completions", {"model": "m", "messages": [], "stream": True})
    before = withheld("redact", "think")
    asyncio.run(h.request(exchange))
    h.stream(
        exchange, chat_stream({"role": "assistant", "content": "<think>αβγδεζηθικλμνξοπ</think>ok"}, [3])
    )
    asyncio.run(h.after(exchange))
    assert withheld("redact", "think") - before == 4


def test_shadow_mode_changes_nothing_but_counts() -> None:
    h = PolicyHarness([("reasoning", {"mode": "drop"}, "shadow")])
    body = chat_body({"role": "assistant", "content": "ok", "reasoning_content": "αβγδεζηθικλμν"})
    exchange = h.exchange("chat.completions", {"model": "m", "messages": []})
    asyncio.run(h.request(exchange))
    out = asyncio.run(h.response(exchange, body))
    assert out["choices"][0]["message"]["reasoning_content"] == "αβγδεζηθικλμν"
    asyncio.run(h.after(exchange))
    assert [(a.action, a.mode) for a in exchange.actions] == [("withheld_drop", "shadow")]


def test_allow_mode_has_no_stream_filter() -> None:
    h = PolicyHarness([("reasoning", {"mode": "allow"})])
    exchange = h.exchange("chat.completions", {"model": "m", "messages": [], "stream": True})
    assert h.pipeline.open_stream(exchange).empty

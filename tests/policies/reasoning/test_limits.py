"""Request-side limits: reasoning effort, thinking budgets, encrypted reasoning; clamp or reject."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.errors import PolicyViolationError
from tests.policy_harness import PolicyHarness

LIMITS = {"max_reasoning_effort": "medium", "max_budget_tokens": 4000, "allow_encrypted_include": False}


def run(operation: str, body: dict[str, Any], on_limit: str = "clamp", **limits: Any) -> dict[str, Any]:
    h = PolicyHarness(
        [("reasoning", {"mode": "redact", "limits": {**LIMITS, **limits, "on_limit": on_limit}})]
    )
    exchange = h.exchange(operation, body)
    asyncio.run(h.request(exchange))
    return exchange.body


def reject(operation: str, body: dict[str, Any], **limits: Any) -> PolicyViolationError:
    with pytest.raises(PolicyViolationError) as info:
        run(operation, body, "reject", **limits)
    assert info.value.status == 400 and info.value.code == "reasoning_limit"
    assert "tier 'free'" in info.value.message
    return info.value


def test_effort_clamped_and_rejected() -> None:
    assert run("chat.completions", {"reasoning_effort": "high"})["reasoning_effort"] == "medium"
    assert run("chat.completions", {"reasoning_effort": "low"})["reasoning_effort"] == "low"
    assert run("chat.completions", {"reasoning": {"effort": "xhigh"}})["reasoning"]["effort"] == "medium"
    assert run("responses", {"reasoning": {"effort": "max", "summary": "auto"}})["reasoning"] == {
        "effort": "medium",
        "summary": "auto",
    }
    error = reject("responses", {"reasoning": {"effort": "high"}})
    assert error.param == "reasoning.effort" and "at most 'medium'" in error.message
    assert reject("chat.completions", {"reasoning_effort": "turbo"}).param == "reasoning_effort"
    # Anthropic's lowest effort is "low": a tier capped below it gets "low".
    body = run("messages", {"output_config": {"effort": "high"}}, max_reasoning_effort="minimal")
    assert body["output_config"]["effort"] == "low"


def test_anthropic_budget() -> None:
    body = run("messages", {"max_tokens": 9000, "thinking": {"type": "enabled", "budget_tokens": 8000}})
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 4000}
    body = run("messages", {"max_tokens": 9000, "thinking": {"type": "enabled", "budget_tokens": 2000}})
    assert body["thinking"]["budget_tokens"] == 2000
    body = run("messages", {"max_tokens": 3000, "thinking": {"type": "adaptive", "display": "summarized"}})
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2999, "display": "summarized"}
    body = run(
        "messages",
        {"max_tokens": 9000, "thinking": {"type": "enabled", "budget_tokens": 2000}},
        max_budget_tokens=0,
    )
    assert body["thinking"] == {"type": "disabled"}
    error = reject("messages", {"max_tokens": 9000, "thinking": {"type": "enabled", "budget_tokens": 8000}})
    assert error.param == "thinking.budget_tokens" and "at most 4000" in error.message
    assert reject("messages", {"max_tokens": 9000, "thinking": {"type": "adaptive"}}).param == "thinking.type"
    assert run("chat.completions", {"reasoning": {"max_tokens": 10000}})["reasoning"]["max_tokens"] == 4000


def test_encrypted_include() -> None:
    body = run("responses", {"include": ["reasoning.encrypted_content", "message.output_text.logprobs"]})
    assert body["include"] == ["message.output_text.logprobs"]
    assert reject("responses", {"include": ["reasoning.encrypted_content"]}).param == "include"
    body = run("responses", {"include": ["reasoning.encrypted_content"]}, allow_encrypted_include=True)
    assert body["include"] == ["reasoning.encrypted_content"]


def test_no_limits_change_nothing() -> None:
    h = PolicyHarness([("reasoning", {"mode": "allow"})])
    body = {"reasoning_effort": "max", "thinking": {"type": "enabled", "budget_tokens": 10**6}}
    exchange = h.exchange("chat.completions", dict(body))
    asyncio.run(h.request(exchange))
    assert exchange.body == body

"""Request side: every logprob-bearing parameter clamped or rejected; messages name it and the limit."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import PolicyViolationError
from tests.policy_harness import PolicyHarness

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
COMPLETION = {"model": "m", "prompt": "Once upon a time"}
RESPONSES = {"model": "m", "input": "hi"}
LOGPROBS_INCLUDE = "message.output_text.logprobs"

# (operation, request extras, config, rejected param, words the message must contain, body after a clamp)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], str, list[str], dict[str, Any]]] = [
    ("chat.completions", {"logprobs": True, "top_logprobs": 20}, {"top_k": 5},
     "top_logprobs", ["top_logprobs=20", "limit of 5", "'free'"], {"logprobs": True, "top_logprobs": 5}),
    ("chat.completions", {"logprobs": True, "top_logprobs": 2}, {"logprobs": False},
     "logprobs", ["logprobs", "not allowed", "'free'"], {}),
    ("chat.completions", {"n": 16}, {"max_n": 4}, "n", ["n=16", "limit of 4"], {"n": 4}),
    ("chat.completions", {"prompt_logprobs": 3}, {},
     "prompt_logprobs", ["prompt_logprobs", "not allowed"], {}),
    ("chat.completions", {"prompt_logprobs": 9}, {"prompt_logprobs": True, "top_k": 2},
     "prompt_logprobs", ["prompt_logprobs=9", "limit of 2"], {"prompt_logprobs": 2}),
    ("chat.completions", {"logprobs": True, "logprob_token_ids": [1, 2]}, {},
     "logprob_token_ids", ["logprob_token_ids", "not allowed"], {"logprobs": True}),
    ("chat.completions", {"logprobs": True, "logit_bias": {"12": 100}}, {},
     "logit_bias", ["logit_bias", "cannot be combined with logprobs"], {"logit_bias": {"12": 100}}),
    ("chat.completions", {"logit_bias": {"12": 5}}, {"logit_bias": {"mode": "refuse"}},
     "logit_bias", ["logit_bias", "not allowed"], {}),
    ("chat.completions", {"logit_bias": {str(i): 1 for i in range(30)}},
     {"logit_bias": {"mode": "allow", "max_entries": 10}},
     "logit_bias", ["30 entries", "limit of 10"], {"logit_bias": {str(i): 1 for i in range(10)}}),
    ("chat.completions", {"logit_bias": {"1": 100, "2": -50, "3": 3}},
     {"logit_bias": {"mode": "allow", "max_magnitude": 20}},
     "logit_bias", ["reach 100", "limit of 20"], {"logit_bias": {"1": 20, "2": -20, "3": 3}}),
    ("completions", {"logprobs": 5}, {"top_k": 2}, "logprobs", ["logprobs=5", "limit of 2"], {"logprobs": 2}),
    ("completions", {"logprobs": 0}, {"logprobs": False}, "logprobs", ["not allowed"], {}),
    ("completions", {"logprobs": 1, "echo": True}, {},
     "echo", ["echo together with logprobs"], {"logprobs": 1}),
    ("completions", {"best_of": 20, "n": 2}, {"max_n": 8}, "best_of", ["best_of=20", "limit of 8"],
     {"best_of": 8, "n": 2}),
    ("completions", {"logprobs": 1, "logit_bias": {"7": -100}}, {},
     "logit_bias", ["cannot be combined"], {"logit_bias": {"7": -100}}),
    ("responses", {"top_logprobs": 10, "include": [LOGPROBS_INCLUDE]}, {"top_k": 3},
     "top_logprobs", ["top_logprobs=10", "limit of 3"], {"top_logprobs": 3, "include": [LOGPROBS_INCLUDE]}),
    ("responses", {"include": [LOGPROBS_INCLUDE, "reasoning.encrypted_content"]}, {"logprobs": False},
     "include", ["logprobs", "not allowed"], {"include": ["reasoning.encrypted_content"]}),
]  # fmt: skip

BASES = {"chat.completions": CHAT, "completions": COMPLETION, "responses": RESPONSES}


@pytest.mark.parametrize(("operation", "extra", "config", "param", "words", "_"), CASES)
async def test_rejects_naming_the_parameter_and_limit(
    operation: str, extra: dict[str, Any], config: dict[str, Any], param: str, words: list[str], _: Any
) -> None:
    harness = PolicyHarness([("logprobs", {**config, "on_excess": "reject"})])
    await harness.start()
    exchange = harness.exchange(operation, {**BASES[operation], **extra})
    with pytest.raises(PolicyViolationError) as caught:
        await harness.request(exchange)
    assert caught.value.param == param and caught.value.status == 400
    for word in words:
        assert word in caught.value.message
    assert [a.action for a in exchange.actions] == [f"rejected:{param}"]


@pytest.mark.parametrize(("operation", "extra", "config", "param", "_", "clamped"), CASES)
async def test_clamps_to_the_limit(
    operation: str, extra: dict[str, Any], config: dict[str, Any], param: str, _: Any, clamped: dict[str, Any]
) -> None:
    harness = PolicyHarness([("logprobs", {**config, "on_excess": "clamp"})])
    await harness.start()
    exchange = harness.exchange(operation, {**BASES[operation], **extra})
    await harness.request(exchange)
    assert exchange.body == {**BASES[operation], **clamped}
    assert f"clamped:{param}" in [a.action for a in exchange.actions]


@pytest.mark.parametrize(
    ("operation", "extra"),
    [
        ("chat.completions", {"logprobs": True, "top_logprobs": 5, "n": 8}),
        ("chat.completions", {"logit_bias": {"50256": -100}}),  # bias without logprobs: exclusive allows it
        ("completions", {"logprobs": 5, "echo": False}),
        ("completions", {"echo": True}),
        ("responses", {"top_logprobs": 5, "include": [LOGPROBS_INCLUDE]}),
        ("messages", {"max_tokens": 10}),
    ],
)
async def test_within_limits_passes_untouched(operation: str, extra: dict[str, Any]) -> None:
    harness = PolicyHarness([("logprobs", {})])
    await harness.start()
    base = BASES.get(operation, {"model": "claude", "messages": []})
    exchange = harness.exchange(operation, {**base, **extra})
    await harness.request(exchange)
    assert exchange.body == {**base, **extra} and not exchange.actions


async def test_clamping_logprobs_first_lets_logit_bias_through() -> None:
    """Clamped away logprobs no longer conflict with logit_bias (the order of checks matters)."""
    harness = PolicyHarness([("logprobs", {"logprobs": False, "on_excess": "clamp"})])
    await harness.start()
    exchange = harness.exchange("chat.completions", {**CHAT, "logprobs": True, "logit_bias": {"3": 4}})
    await harness.request(exchange)
    assert exchange.body == {**CHAT, "logit_bias": {"3": 4}}


async def test_shadow_mode_records_but_changes_nothing() -> None:
    harness = PolicyHarness([("logprobs", {"top_k": 1}, "shadow")])
    await harness.start()
    body = {**CHAT, "logprobs": True, "top_logprobs": 20}
    exchange = harness.exchange("chat.completions", dict(body))
    await harness.request(exchange)
    assert exchange.body == body
    assert [a.action for a in exchange.actions] == ["rejected:top_logprobs", "would_reject:invalid_request"]

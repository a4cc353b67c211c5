"""The watermark policy: config schema, keys, evidence in the store (memory and Redis), metrics, canaries."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from gateway.errors import ConfigError
from gateway.state.redis import RedisStore
from policies.watermark.config import WatermarkConfig
from tests.policy_harness import PolicyHarness
from tests.support import RedisProcess

TEXT = "It is not clear why we don't organize the behavior toward users. For example, it is based on data."


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILLGUARD_WATERMARK_KEY", "test-master-key-0123456789")


def test_schema_defaults_and_bounds() -> None:
    config = WatermarkConfig()
    assert config.lexical.enabled and config.lexical.density == 1.0 and not config.canary.enabled
    for bad in (
        {"lexical": {"density": 0}},
        {"lexical": {"strength": 1.5}},
        {"lexical": {"strength": "loose"}},
        {"lexical": {"enforce": -0.1}},
        {"lexical": {"classes": ["synonyms"]}},
        {"think_tags": ["<think>"]},
        {"canary": {"fraction": -0.1}},
        {"unicode": {"mode": "homoglyph"}},
        {"keys": [{"id": "a", "env": "X"}, {"id": "a", "env": "Y"}]},
        {"key_env": "not a name"},
        {"colour": True},
    ):
        with pytest.raises(ValidationError):
            WatermarkConfig.model_validate(bad)


def test_every_operation_is_marked_unless_excluded_by_a_known_name() -> None:
    assert WatermarkConfig().exclude_operations == []
    config = WatermarkConfig.model_validate({"exclude_operations": ["generateContent", "completions"]})
    assert config.exclude_operations == ["generateContent", "completions"]
    with pytest.raises(ValidationError, match="unknown operation"):
        WatermarkConfig.model_validate({"exclude_operations": ["generate_content"]})
    # The allow-list it replaces would leave every operation added later unmarked: refused, not ignored.
    with pytest.raises(ValidationError, match="replaced by exclude_operations"):
        WatermarkConfig.model_validate({"operations": ["chat.completions"]})


async def test_an_excluded_operation_is_not_marked_and_the_others_are() -> None:
    gemini = {"candidates": [{"content": {"parts": [{"text": TEXT}], "role": "model"}, "index": 0}]}
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    for exclude, marked in (([], True), (["generateContent"], False), (["streamGenerateContent"], True)):
        harness = PolicyHarness([("watermark", {"exclude_operations": exclude})])
        await harness.start()
        exchange = harness.exchange("generateContent", body, params={"model": "m"})
        await harness.request(exchange)
        out = await harness.response(exchange, orjson.loads(orjson.dumps(gemini)))
        assert (out["candidates"][0]["content"]["parts"][0]["text"] != TEXT) is marked, exclude


def test_strength_levels_and_the_first_versions_numeric_strength() -> None:
    assert WatermarkConfig().lexical.strength == "exact"
    near = WatermarkConfig.model_validate({"lexical": {"strength": "near", "enforce": 0.5}}).lexical
    assert (near.strength, near.enforce) == ("near", 0.5)
    legacy = WatermarkConfig.model_validate({"lexical": {"strength": 0.75}}).lexical
    assert (legacy.strength, legacy.enforce) == ("exact", 0.75)


async def test_near_strength_marks_more_positions() -> None:
    text = "We usually make sure the result is correct, but it often fails. " * 4
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    exact, near = (
        PolicyHarness([("watermark", {})]),
        PolicyHarness([("watermark", {"lexical": {"strength": "near"}})]),
    )
    await exact.start()
    await near.start()
    assert (await _serve(exact, body, _chat(text)))["choices"][0]["message"]["content"] == text
    assert (await _serve(near, body, _chat(text)))["choices"][0]["message"]["content"] != text


async def test_inline_think_spans_are_not_marked() -> None:
    harness = PolicyHarness([("watermark", {})])
    await harness.start()
    reasoning = "It is not organized toward the behavior; we do not analyze it."
    for model, content in (
        ("m", f"<think>{reasoning}</think>\n\n{TEXT * 2}"),
        # the template of these models pre-fills <think>: the text starts inside the span
        ("deepseek-r1-distill-qwen-7b", f"{reasoning}\n</think>\n\n{TEXT * 2}"),
    ):
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        outs = {
            (await _serve(harness, body, _chat(content), account=a))["choices"][0]["message"]["content"]
            for a in ("alice", "bob", "carol", "dave")
        }
        prefix = content[: content.index("</think>") + len("</think>")]
        assert all(out.startswith(prefix) for out in outs)
        assert len(outs) > 1  # the answer after the span is marked
    off = PolicyHarness([("watermark", {"think_tags": []})])
    await off.start()
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    outs = {
        (await _serve(off, body, _chat(f"<think>{reasoning * 3}</think>"), account=a))["choices"][0][
            "message"
        ]["content"]
        for a in ("alice", "bob", "carol", "dave")
    }
    assert len(outs) > 1  # with think_tags: [] the span is ordinary text


def test_missing_or_short_secret_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISTILLGUARD_WATERMARK_KEY")
    with pytest.raises(ConfigError, match="DISTILLGUARD_WATERMARK_KEY is not set"):
        PolicyHarness([("watermark", {})])
    monkeypatch.setenv("DISTILLGUARD_WATERMARK_KEY", "short")
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        PolicyHarness([("watermark", {})])


def _chat(content: str, logprobs: bool = False) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": content},
        "finish_reason": "stop",
    }
    if logprobs:
        choice["logprobs"] = {
            "content": [{"token": "It", "logprob": -0.1, "bytes": [73, 116], "top_logprobs": []}]
        }
    return {"id": "x", "object": "chat.completion", "choices": [choice]}


async def _serve(
    harness: PolicyHarness,
    body: dict[str, Any],
    response: dict[str, Any],
    account: str = "acct-1",
    operation: str = "chat.completions",
) -> dict[str, Any]:
    exchange = harness.exchange(operation, body, account=account)
    await harness.request(exchange)
    out = await harness.response(exchange, response)
    await harness.after(exchange)
    return out


async def test_marks_records_evidence_and_counts() -> None:
    harness = PolicyHarness([("watermark", {"keys": [{"id": "k2026", "env": "DISTILLGUARD_WATERMARK_KEY"}]})])
    await harness.start()
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    first = await _serve(harness, body, _chat(TEXT, logprobs=True))
    assert first["choices"][0]["message"]["content"] != TEXT
    assert first["choices"][0]["logprobs"] is None
    await _serve(harness, body, _chat(TEXT))
    store = harness.services.store
    record = orjson.loads(await store.get(store.key("evidence", "watermark", "acct-1")))  # type: ignore[arg-type]
    assert record["key_ids"] == ["k2026"] and record["responses"] == 2 and record["canaries"] == []
    assert record["first_served"] <= record["last_served"]
    metrics = harness.services.metrics
    assert metrics.counter("watermark_responses_total", "", ("scheme",)).labels("lexical")._value.get() >= 2


async def test_accounts_get_different_marks() -> None:
    harness = PolicyHarness([("watermark", {})])
    await harness.start()
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    texts = {
        (await _serve(harness, body, _chat(TEXT * 3), account=a))["choices"][0]["message"]["content"]
        for a in ("alice", "bob", "carol")
    }
    assert len(texts) == 3


async def test_canary_planted_and_recorded_but_not_in_json_answers() -> None:
    harness = PolicyHarness([("watermark", {"canary": {"enabled": True, "fraction": 1.0}})])
    await harness.start()
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    out = (await _serve(harness, body, _chat(TEXT)))["choices"][0]["message"]["content"]
    store = harness.services.store
    record = orjson.loads(await store.get(store.key("evidence", "watermark", "acct-1")))  # type: ignore[arg-type]
    (canary,) = record["canaries"]
    assert out.endswith(f"{canary['trigger']} {canary['response']}.")
    json_body = {**body, "response_format": {"type": "json_object"}}
    out = (await _serve(harness, json_body, _chat('{"a": 1}')))["choices"][0]["message"]["content"]
    assert out == '{"a": 1}'
    out = (await _serve(harness, {**body, "seed": 2}, _chat("```\ncode\n```")))["choices"][0]["message"][
        "content"
    ]
    assert out == "```\ncode\n```"


async def test_completions_echo_prefix_is_kept() -> None:
    harness = PolicyHarness([("watermark", {})])
    await harness.start()
    prompt = "It is not the behavior toward it. "
    response = {"choices": [{"index": 0, "text": prompt + TEXT, "finish_reason": "stop"}]}
    out = await _serve(
        harness, {"model": "m", "prompt": prompt, "echo": True}, response, operation="completions"
    )
    assert out["choices"][0]["text"].startswith(prompt)


def test_evidence_on_redis_is_atomic_and_bounded(redis_server: RedisProcess) -> None:
    async def go() -> dict[str, Any]:
        store = RedisStore(redis_server.url, "wmtest", 2.0)
        await store.start()
        try:
            await store.delete(store.key("evidence", "watermark", "acct-1"))
            harness = PolicyHarness(
                [("watermark", {"canary": {"enabled": True, "fraction": 1.0}})], store=store
            )
            await harness.start()
            body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            await asyncio.gather(*(_serve(harness, {**body, "seed": i}, _chat(TEXT)) for i in range(20)))
            raw = await store.get(store.key("evidence", "watermark", "acct-1"))
            return orjson.loads(raw)  # type: ignore[arg-type,no-any-return]
        finally:
            await store.close()

    record = asyncio.run(go())
    assert record["responses"] == 20 and record["key_ids"] == ["default"]
    assert 1 <= len(record["canaries"]) <= 4
    assert all(set(c) == {"key_id", "index", "trigger", "response"} for c in record["canaries"])

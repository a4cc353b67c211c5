"""The green-list scheme: keyed lists, the bias merged into requests, what the client can and cannot do.

The end-to-end mark and detection on a real model are in tests/llamacpp/test_green_list.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.protocols import ADAPTERS
from gateway.protocols.request_view import raise_to_floor
from policies.watermark.green_list import (
    BiasCache,
    GreenLayout,
    build_bias,
    green_mask,
    provider_key,
)
from policies.watermark.keys import MasterKey
from tests.policy_harness import PolicyHarness

VOCAB = 49152
GREEN = {"enabled": True, "gamma": 0.25, "delta": 2.0, "models": [{"match": "smollm*", "vocab_size": VOCAB}]}
MASTER = MasterKey("2026-01", b"test-master-key-0123456789")


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILLGUARD_WATERMARK_KEY", MASTER.secret.decode())


def harness(**extra: Any) -> PolicyHarness:
    return PolicyHarness([("watermark", {"green_list": {**GREEN, **extra}})])


def forwarded(h: PolicyHarness, body: dict[str, Any], operation: str = "chat.completions") -> dict[str, Any]:
    """What the upstream receives: the body as the engine serialises it (orjson.dumps)."""
    exchange = h.exchange(operation, body, account="acct-1")
    asyncio.run(h.request(exchange))
    return orjson.loads(orjson.dumps(exchange.body))


def test_lists_are_keyed_of_fraction_gamma_and_independent() -> None:
    account = MASTER.account_key("acct-1")
    a, b = green_mask(account, VOCAB, 0.25), green_mask(MASTER.account_key("acct-2"), VOCAB, 0.25)
    p = green_mask(provider_key(MASTER), VOCAB, 0.25)
    assert np.array_equal(a, green_mask(account, VOCAB, 0.25))  # deterministic
    for mask in (a, b, p):
        assert abs(mask.mean() - 0.25) < 0.01
    # independent keys: the overlap is gamma^2 of the vocabulary, as for independent draws
    assert abs((a & b).mean() - 0.0625) < 0.006 and abs((a & p).mean() - 0.0625) < 0.006
    assert provider_key(MASTER) not in (MASTER.account_key(x) for x in ("", "provider", "acct-1"))
    assert green_mask(account, 100, 0.25).tolist() == a[:100].tolist()  # a prefix of the same hash
    with pytest.raises(ValueError):
        green_mask(account, VOCAB, 1.0)


def test_the_bias_is_delta_per_list_and_sums_with_the_clients_entries() -> None:
    provider, account = provider_key(MASTER), MASTER.account_key("acct-1")
    made = build_bias(provider, account, VOCAB, 0.25, 2.0)
    bias = made.bias()
    p, a = green_mask(provider, VOCAB, 0.25), green_mask(account, VOCAB, 0.25)
    both = int(np.flatnonzero(p & a)[0])
    only = int(np.flatnonzero(p & ~a)[0])
    red = int(np.flatnonzero(~p & ~a)[0])
    assert bias[str(both)] == 4.0 and bias[str(only)] == 2.0 and str(red) not in bias
    assert orjson.loads(made.fragment) == bias
    merged = spliced(made.merged({str(both): -100, f"00{only}": 5, str(red): 99.5}))
    assert merged[str(both)] == -96.0  # the client may still ban a token: the sum, clamped
    assert merged[str(only)] == 7.0 and f"00{only}" not in merged  # one token, one entry
    assert merged[str(red)] == 99.5
    assert spliced(made.merged({str(red): 150}))[str(red)] == 100.0  # clamped as vLLM clamps
    assert len(merged) == len(bias) + 1  # nothing of ours removed
    assert spliced(made.merged(None)) == bias
    # every cut position: first, last, neighbours, "7" and "007" together
    first, last = int(made.ids[0]), int(made.ids[-1])
    client = {str(first): 1, str(last): -1, str(first + 1): 3, "7": 1, "007": 1}
    for only_last in ({str(last): 2}, {str(int(made.ids[-2])): 2}, {str(last): 1, str(int(made.ids[-2])): 1}):
        assert spliced(made.merged(only_last)) == {k: bias.get(k, 0) + only_last.get(k, 0) for k in bias}
    expected = dict(bias)
    for token, value in client.items():
        key = str(int(token))
        expected[key] = expected.get(key, 0.0) + value
    assert spliced(made.merged(client)) == expected
    for delta in (5.0, 0.5, 12.25):  # entries of weight 1 and 2 of different lengths ("5.0", "10.0")
        other = build_bias(provider, account, VOCAB, 0.25, delta)
        assert orjson.loads(other.fragment) == {k: v / 2.0 * delta for k, v in bias.items()}


def spliced(fragment: orjson.Fragment) -> dict[str, float]:
    return orjson.loads(orjson.dumps({"x": fragment}))["x"]


def test_the_cache_builds_each_map_once_and_stays_bounded() -> None:
    cache = BiasCache(GreenLayout.of(0.25, 2.0), limit=2)
    first = cache.get(b"p" * 32, b"a" * 32, VOCAB)
    assert cache.get(b"p" * 32, b"a" * 32, VOCAB) is first
    cache.get(b"p" * 32, b"b" * 32, VOCAB)
    cache.get(b"p" * 32, b"c" * 32, VOCAB)
    assert cache.get(b"p" * 32, b"a" * 32, VOCAB) is not first  # evicted, rebuilt equal
    assert cache.get(b"p" * 32, b"a" * 32, VOCAB).fragment == first.fragment


def test_requests_for_declared_models_carry_the_bias_and_others_do_not() -> None:
    h = harness()
    expected = build_bias(provider_key(MASTER), MASTER.account_key("acct-1"), VOCAB, 0.25, 2.0).bias()
    chat = forwarded(h, {"model": "SmolLM2-135M", "messages": [{"role": "user", "content": "hi"}]})
    assert chat["logit_bias"] == expected
    completions = forwarded(h, {"model": "smollm2", "prompt": "hi"}, "completions")
    assert completions["logit_bias"] == expected
    other = forwarded(h, {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    assert "logit_bias" not in other
    responses = forwarded(h, {"model": "smollm2", "input": "hi"}, "responses")
    assert "logit_bias" not in responses  # Responses carries no bias: the lexical scheme stays
    off = PolicyHarness([("watermark", {"green_list": {**GREEN, "enabled": False}})])
    assert "logit_bias" not in forwarded(off, {"model": "smollm2", "messages": []})


@settings(max_examples=40, deadline=None)
@given(
    client=st.dictionaries(
        st.integers(0, VOCAB - 1).map(str), st.floats(-100, 100, allow_nan=False), max_size=50
    )
)
def test_a_client_bias_cannot_cancel_the_mark(client: dict[str, float]) -> None:
    # An attacker who knew the green tokens could spend its entries on them; it still only reaches
    # the tokens it names (at most the logprobs policy's max_entries), and our delta is added to them.
    h = harness()
    ours = build_bias(provider_key(MASTER), MASTER.account_key("acct-1"), VOCAB, 0.25, 2.0).bias()
    sent = forwarded(h, {"model": "smollm2", "messages": [], "logit_bias": dict(client)})["logit_bias"]
    for token, value in ours.items():
        if token in client:
            assert sent[token] == pytest.approx(max(-100, min(100, value + client[token])))
        else:
            assert sent[token] == value
    for token, value in client.items():
        assert sent[token] == pytest.approx(max(-100, min(100, value + ours.get(token, 0.0))))


def test_the_lexical_scheme_steps_aside_where_the_green_list_marks() -> None:
    text = "It is not clear why we don't organize the behavior toward users."
    body = {
        "id": "c",
        "object": "chat.completion",
        "created": 1,
        "model": "smollm2",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    }

    def answer(h: PolicyHarness, model: str) -> str:
        exchange = h.exchange("chat.completions", {"model": model, "messages": []})
        asyncio.run(h.request(exchange))
        out = asyncio.run(h.response(exchange, orjson.loads(orjson.dumps({**body, "model": model}))))
        return out["choices"][0]["message"]["content"]

    assert answer(harness(), "smollm2") == text  # no visible rewrite where the bias marks
    assert answer(harness(), "claude-x") != text  # lexical elsewhere (all classes: a rewrite here)
    assert answer(harness(with_lexical=True), "smollm2") != text


def test_a_shadow_policy_after_the_watermark_copies_the_spliced_bias() -> None:
    # Shadow mode runs a policy on a deep copy of the body; the spliced bias must copy (and stay ours).
    h = PolicyHarness(
        [("watermark", {"green_list": GREEN}), ("logprobs", {"logit_bias": {"mode": "refuse"}}, "shadow")]
    )
    sent = forwarded(h, {"model": "smollm2", "messages": [], "logit_bias": {"5": 1}})
    assert sent["logit_bias"]["5"] >= 1 and len(sent["logit_bias"]) > 20_000


@pytest.mark.parametrize(
    ("asked", "forwarded"),
    [(None, 0.5), (0.2, 0.5), (True, 0.5), ("2", 0.5), (float("nan"), 0.5), (0.5, 0.5), (2, 2)],
)
def test_a_penalty_floor_replaces_anything_below_it_or_not_a_number(asked: object, forwarded: float) -> None:
    for field in ("presence_penalty", "frequency_penalty"):
        body: dict[str, object] = {} if asked is None else {field: asked}
        raise_to_floor(body, field, 0.5)
        assert body == {field: forwarded}
        untouched: dict[str, object] = {field: -1.0}
        raise_to_floor(untouched, field, 0.0)  # no floor configured
        assert untouched == {field: -1.0}


def test_the_request_view_raises_both_penalties_where_the_operation_takes_a_bias() -> None:
    chat = ADAPTERS["openai"].request_view(
        "chat.completions", {"model": "m", "messages": [], "presence_penalty": 0.1}
    )
    assert chat.accepts_logit_bias
    chat.raise_repetition_penalties(1.0, 0.5)
    assert chat.body["presence_penalty"] == 1.0 and chat.body["frequency_penalty"] == 0.5
    messages = ADAPTERS["anthropic"].request_view("messages", {"model": "m", "messages": []})
    assert not messages.accepts_logit_bias
    messages.raise_repetition_penalties(1.0, 0.5)
    assert messages.body == {"model": "m", "messages": []}


def test_the_request_view_penalises_repeated_phrases_where_the_server_can() -> None:
    chat = ADAPTERS["openai"].request_view(
        "chat.completions",
        {"model": "m", "messages": [], "dry_multiplier": True, "dry_allowed_length": None, "dry_base": 1.1},
    )
    chat.penalise_repeated_phrases(0.8, 2)
    assert {k: v for k, v in chat.body.items() if k.startswith("dry_")} == {
        "dry_multiplier": 0.8,
        "dry_allowed_length": 2,
    }
    untouched = {"model": "m", "prompt": "x", "dry_multiplier": 0.0, "dry_base": 1.1}
    completions = ADAPTERS["openai"].request_view("completions", dict(untouched))
    completions.penalise_repeated_phrases(0.0, 2)  # not configured: the request as sent
    assert completions.body == untouched
    messages = ADAPTERS["anthropic"].request_view("messages", {"model": "m", "messages": []})
    messages.penalise_repeated_phrases(0.8, 2)
    assert messages.body == {"model": "m", "messages": []}

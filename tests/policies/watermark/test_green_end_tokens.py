"""A model's end tokens (EOS, end-of-turn): neither held back nor pushed by the green list, never scored.

Regressions: with the end-of-turn token outside the account's list (about 75% of keys in the nested
layout), ending lost against going on and marked one-sentence answers ran to the token limit; at the
top level instead, ending won too often (marked SmolLM2 prose ended at a median 140 of 300 tokens).
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.config.loader import load_config_text
from gateway.errors import ConfigError
from policies.watermark.detector import candidates
from policies.watermark.green_detect import GreenListDetector
from policies.watermark.green_list import GreenLayout, build_layout_bias, neutral_bias, provider_key
from policies.watermark.keys import MasterKey
from tests.policy_harness import PolicyHarness

VOCAB = 49152
ENDS = [0, 2]
LAYOUT = GreenLayout.of(0.75, 1.5, 0.33, 3.0, nested=True)
MASTER = MasterKey("2026-01", b"test-master-key-0123456789")
TOP = LAYOUT.delta + LAYOUT.account_delta
NEUTRAL = round(neutral_bias(LAYOUT), 4)


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILLGUARD_WATERMARK_KEY", MASTER.secret.decode())


def test_end_tokens_get_the_neutral_bias_for_every_account() -> None:
    below = 0
    for n in range(40):
        account = MASTER.account_key(f"acct-{n}")
        plain = build_layout_bias(provider_key(MASTER), account, VOCAB, LAYOUT).bias()
        below += any(plain.get(str(t), 0.0) < NEUTRAL for t in ENDS)
        marked = build_layout_bias(provider_key(MASTER), account, VOCAB, LAYOUT, tuple(ENDS)).bias()
        assert all(marked[str(t)] == NEUTRAL for t in ENDS)
        others = {k: v for k, v in plain.items() if int(k) not in ENDS}
        assert {k: v for k, v in marked.items() if int(k) not in ENDS} == others, "nothing else moves"
    assert below > 20, "without the exemption most keys hold an end token below the usual token"
    assert 1.5 < NEUTRAL < TOP - 1, "between the provider level and the top, well below the top"


@pytest.mark.parametrize(
    "layout",
    [
        LAYOUT,
        GreenLayout.of(0.25, 2.0),
        GreenLayout.of(0.5, 2.0, 0.25, 1.0),
        GreenLayout.of(0.5, 1.0, 0.5, 2.0, True),
    ],
)
def test_the_neutral_bias_is_the_mean_factor_the_bias_applies_to_the_vocabulary(layout: GreenLayout) -> None:
    # Measured on real keyed lists: the mean of exp(bias) over every token of the vocabulary (0 for
    # the tokens not sent) is what the normaliser of any next-token distribution grows by on average.
    bias = build_layout_bias(provider_key(MASTER), MASTER.account_key("acct-7"), VOCAB, layout).bias()
    factor = (sum(math.exp(v) for v in bias.values()) + (VOCAB - len(bias))) / VOCAB
    assert math.log(factor) == pytest.approx(neutral_bias(layout), abs=0.02)


def test_the_policy_forwards_the_exempted_end_tokens() -> None:
    green = {
        "enabled": True,
        "gamma": 0.75,
        "delta": 1.5,
        "account_gamma": 0.33,
        "account_delta": 3.0,
        "nested": True,
        "models": [{"match": "smollm*", "vocab_size": VOCAB, "end_tokens": ENDS}],
    }
    harness = PolicyHarness([("watermark", {"green_list": green})])
    body: dict[str, Any] = {"model": "smollm2", "messages": [{"role": "user", "content": "hi"}]}
    exchange = harness.exchange("chat.completions", body, account="acct-1")
    asyncio.run(harness.request(exchange))
    sent = orjson.loads(orjson.dumps(exchange.body))["logit_bias"]
    assert [sent[str(t)] for t in ENDS] == [NEUTRAL, NEUTRAL]


def test_detection_leaves_end_tokens_out() -> None:
    def tokenize(text: str) -> list[int]:
        return [int(t) for t in text.split()]

    detector = GreenListDetector(
        [MASTER],
        candidates([MASTER], ["acct-1"]),
        vocab_size=VOCAB,
        gamma=0.75,
        tokenize=tokenize,
        account_gamma=0.33,
        nested=True,
        end_tokens=ENDS,
    )
    assert detector.distinct("2 7 0 9 7 49151 49152").tolist() == [7, 9, 49151]


@pytest.mark.parametrize("ends", [[49152], [-1]])
def test_an_end_token_outside_the_vocabulary_is_refused(ends: list[int]) -> None:
    text = f"""
upstreams: [{{name: local, url: "http://127.0.0.1:9", protocol: openai}}]
tiers:
  default:
    policies:
      - name: watermark
        config:
          green_list:
            enabled: true
            models: [{{match: "smollm*", vocab_size: {VOCAB}, end_tokens: {ends}}}]
"""
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, source=Path("policy.yaml"))
    assert "end_tokens" in str(caught.value)

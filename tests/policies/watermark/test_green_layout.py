"""The green list's two lists with their own fractions and biases, and the account list nested in the
provider's: the bias sent, and a detector whose null stays exact when the account is tested only on
provider-green tokens (an attacker's or another account's provider-marked text names no one).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from typing import Any

import numpy as np
import orjson
import pytest
import yaml

from gateway.config.loader import load_config
from gateway.errors import ConfigError
from policies.watermark.detector import candidates
from policies.watermark.green_detect import GreenListDetector
from policies.watermark.green_list import build_bias, green_mask, provider_key
from policies.watermark.keys import MasterKey
from policies.watermark.stats import BinomialTest
from tests.policy_harness import PolicyHarness
from tests.support import ROOT

VOCAB = 49152
SMALL = 4096
SECRET = "test-master-key-0123456789"
MASTER = MasterKey("2026-01", SECRET.encode())
NESTED = {"gamma": 0.5, "delta": 1.0, "account_gamma": 0.5, "account_delta": 3.0, "nested": True}


def spliced(fragment: orjson.Fragment) -> dict[str, float]:
    return orjson.loads(orjson.dumps({"x": fragment}))["x"]


def test_a_nested_account_list_is_a_keyed_subset_of_the_provider_list() -> None:
    provider, account = provider_key(MASTER), MASTER.account_key("acct-1")
    made = build_bias(provider, account, VOCAB, 0.5, 1.0, account_gamma=0.5, account_delta=3.0, nested=True)
    bias = made.bias()
    p = green_mask(provider, VOCAB, 0.5)
    own = green_mask(account, VOCAB, 0.5)
    assert set(bias) == {str(t) for t in np.flatnonzero(p)}  # nothing outside the provider list
    assert {v for k, v in bias.items() if own[int(k)]} == {4.0}  # the account's subset: 1 + 3
    assert {v for k, v in bias.items() if not own[int(k)]} == {1.0}
    assert abs((p & own).mean() - 0.25) < 0.01  # account_gamma of the provider list
    other = build_bias(
        provider, MASTER.account_key("acct-2"), VOCAB, 0.5, 1.0, account_delta=3.0, nested=True
    )
    assert other.bias() != bias  # keyed per account
    assert orjson.loads(made.fragment) == bias
    first, last = int(made.ids[0]), int(made.ids[-1])
    client = {str(first): -100, str(last): 2.5, "7": 1}
    expected = dict(bias)
    for token, value in client.items():
        expected[token] = max(-100.0, min(100.0, expected.get(token, 0.0) + value))
    assert spliced(made.merged(client)) == expected


def test_independent_lists_take_their_own_fraction_and_bias() -> None:
    provider, account = provider_key(MASTER), MASTER.account_key("acct-1")
    made = build_bias(provider, account, VOCAB, 0.5, 1.5, account_gamma=0.25, account_delta=3.25)
    bias = made.bias()
    p, a = green_mask(provider, VOCAB, 0.5), green_mask(account, VOCAB, 0.25)
    for mask, value in ((p & ~a, 1.5), (~p & a, 3.25), (p & a, 4.75)):
        assert {bias[str(t)] for t in np.flatnonzero(mask)} == {value}
    assert len(bias) == int((p | a).sum())
    assert orjson.loads(made.fragment) == bias  # three entry lengths gathered from one table
    # the layout with the account's defaults is the symmetric map of before, byte for byte
    assert (
        build_bias(provider, account, VOCAB, 0.25, 2.0).fragment
        == build_bias(provider, account, VOCAB, 0.25, 2.0, account_gamma=0.25, account_delta=2.0).fragment
    )


def test_the_gateway_sends_the_configured_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILLGUARD_WATERMARK_KEY", SECRET)
    green = {"enabled": True, **NESTED, "models": [{"match": "smollm*", "vocab_size": VOCAB}]}
    h = PolicyHarness([("watermark", {"green_list": green})])
    exchange = h.exchange(
        "chat.completions",
        {"model": "smollm2", "messages": [{"role": "user", "content": "hi"}]},
        account="acct-1",
    )
    asyncio.run(h.request(exchange))
    sent = orjson.loads(orjson.dumps(exchange.body))["logit_bias"]
    expected = build_bias(
        provider_key(MASTER), MASTER.account_key("acct-1"), VOCAB, 0.5, 1.0, account_delta=3.0, nested=True
    )
    assert sent == expected.bias()


def nested_detector(accounts: list[str], **kw: Any) -> GreenListDetector:
    return GreenListDetector(
        [MASTER],
        candidates([MASTER], accounts),
        vocab_size=SMALL,
        gamma=0.5,
        account_gamma=0.5,
        nested=True,
        tokenize=lambda text: [int(w[1:]) for w in text.split()],
        **kw,
    )


def nested_text(account: str, tokens: int, seed: int, share: float = 1.0) -> str:
    """Ids as a strongly biased sampler would pick them: the account's subset with ``share``, else
    the rest of the provider list (every token provider-green: the most the provider mark gives)."""
    rng = random.Random(seed)
    p = green_mask(provider_key(MASTER), SMALL, 0.5)
    own = p & green_mask(MASTER.account_key(account), SMALL, 0.5)
    subset, rest = np.flatnonzero(own), np.flatnonzero(p & ~own)
    return " ".join(f"t{int(rng.choice(subset if rng.random() < share else rest))}" for _ in range(tokens))


ACCOUNTS = [f"acct-{i}" for i in range(1000)]


def test_another_accounts_nested_mark_names_no_one_else() -> None:
    # acct-417's text is all provider-green: a test of the account over every token at the
    # unconditional rate (gamma * account_gamma) would name every candidate; tested on the
    # provider-green tokens, the others' subsets are fair coins there and none is named.
    text = nested_text("acct-417", 300, seed=1, share=0.8)
    others = nested_detector([a for a in ACCOUNTS if a != "acct-417"]).detect([text])["corpus"]
    assert others["provider_detected"] and others["attributed"] == []
    ids = np.unique([int(w[1:]) for w in text.split()])
    naive = green_mask(MASTER.account_key("acct-1"), SMALL, 0.5) & green_mask(
        provider_key(MASTER), SMALL, 0.5
    )
    assert BinomialTest(int(naive[ids].sum()), len(ids), 0.25).p_value < 1e-9  # what conditioning avoids
    found = nested_detector(ACCOUNTS).detect([text])["corpus"]
    assert found["attributed"] == ["acct-417@2026-01"]
    best = found["candidates"][0]
    assert best["scored"] == len(ids)  # every token provider-green: all scored for the account


def test_the_nested_null_is_exact_on_provider_marked_text() -> None:
    # 300 documents marked for accounts outside the candidates, 40 candidates each: at every level
    # the share of p-values at or below it stays at or below the level (exact, discrete, conservative).
    detector = nested_detector(ACCOUNTS[:40])
    p_values = []
    for seed in range(300):
        text = nested_text(f"outsider-{seed}", 60, seed, share=0.9)
        ids = np.unique([int(w[1:]) for w in text.split()])
        p_values += [row["p_value"] for row in detector.score(ids)["candidates"]]
    values = np.array(p_values)
    for level in (0.01, 0.05, 0.2, 0.5):
        share = float((values <= level).mean())
        assert share <= level + 3 * np.sqrt(level * (1 - level) / len(values)), (level, share)
    assert float((values <= 0.5).mean()) > 0.35  # and not vacuous: the test does reach its level


def test_the_cli_detects_a_nested_layout(tokenize_url: str, tmp_path: Any) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"text": nested_text("acct-9", 250, seed=4, share=0.75)}) + "\n")
    accounts = tmp_path / "ids.txt"
    accounts.write_text("\n".join(ACCOUNTS[:50]))
    env = {**os.environ, "WM_KEY": SECRET, "PYTHONPATH": str(ROOT)}
    base = [
        sys.executable,
        "-m",
        "gateway.cli",
        "watermark",
        "detect",
        str(corpus),
        "--keys",
        "2026-01=WM_KEY",
    ]
    args = [*base, "--accounts-file", str(accounts), "--scheme", "green_list", "--vocab-size", str(SMALL)]
    args += ["--tokenizer-url", tokenize_url, "--gamma", "0.5", "--json"]
    nested = subprocess.run([*args, "--nested", "--account-gamma", "0.5"], env=env, capture_output=True)
    assert nested.returncode == 0, nested.stderr
    report = json.loads(nested.stdout)
    assert report["nested"] and report["corpus"]["attributed"] == ["acct-9@2026-01"]


def test_a_risk_level_cannot_change_the_layout(tmp_path: Any) -> None:
    # detection must know the layout an answer was marked with: a risk level that switched it
    # would mark some answers with a layout the configured detector does not test
    preset = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text())
    for key, value in (("nested", False), ("account_gamma", 0.5), ("account_delta", 5.0)):
        config = json.loads(json.dumps(preset))
        overrides = config["risk_levels"]["high"].setdefault("overrides", {})
        overrides.setdefault("watermark", {}).setdefault("green_list", {})[key] = value
        path = tmp_path / "policy.yaml"
        path.write_text(yaml.safe_dump(config))
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        assert caught.value.path.endswith(f"watermark.green_list.{key}"), caught.value
        assert "cannot show this override tightens" in str(caught.value)

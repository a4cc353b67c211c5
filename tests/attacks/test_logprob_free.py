"""The logprob-free extraction (bias bisection, Carlini et al. 2024 §6) against the detector, real sockets.

``logit_bias: exclusive`` (the default preset) lets a bias through when no logprobs
are asked for, so the attack runs; what stops it is the detector's bias-probing
signal raising the account to ``high``, where the preset refuses ``logit_bias``.
The attacker needs 58 x 58 x 9 = 30,276 answered queries to recover h here
(docs/logprobs.md); it must be at ``high`` within its first few dozen, having
recovered nothing, while an honest client that bans the same tokens on every
request (and retries a prompt with the same bias) stays at ``none``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import openai
import orjson

from bench.attacks import groundtruth
from bench.attacks.hidden_dimension import hidden_dimension
from bench.attacks.logit_extraction import attack_prompts
from bench.attacks.logprob_free import LogprobFreeExtractor
from bench.attacks.presets import preset_config
from bench.attacks.scenarios import token_subset
from tests.support import TEST_KEYS, GatewayHandle, MockHandle, base_config

PROMPTS, TOKENS, STEPS = 58, 58, 9
NEEDED = PROMPTS * TOKENS * STEPS  # answered queries the attack needs to recover h at this size


def _preset_gateway(
    start_gateway: Callable[..., GatewayHandle], mock: MockHandle, audit: Path
) -> GatewayHandle:
    """The detector and the default preset's logprobs settings (free tier, and per risk level)."""
    policies = [
        {"name": "detector", "config": {"shared": {"audit_log": str(audit)}}},
        {"name": "logprobs", "config": preset_config("default", "free")},
    ]
    # default.yaml's logprobs overrides per level (elevated: bias capped; high: bias refused).
    levels = {
        "elevated": {"logit_bias": {"mode": "exclusive", "max_entries": 20, "max_magnitude": 20}},
        "high": {"logprobs": False, "max_n": 1, "logit_bias": {"mode": "refuse"}},
    }
    config = base_config(
        mock.url,
        tiers={tier: {"policies": policies} for tier in TEST_KEYS},
        risk_levels={level: {"overrides": {"logprobs": value}} for level, value in levels.items()},
    )
    return start_gateway(config)


async def _honest(url: str, vocabulary: list[str]) -> int:
    """A classifier app: every prompt with the same ban list and a one-token answer, some retried."""
    banned = {str(vocabulary.index(token)): -100 for token in vocabulary[:5]}
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=TEST_KEYS["pro"], max_retries=0)
    sent = 0
    try:
        for i in range(40):
            prompt = f"Is review #{i * 37 % 1000} about shipping? Answer yes or no."
            for _ in range(2 if i % 4 == 0 else 1):  # a retry resends the same prompt and bias
                await client.chat.completions.create(
                    model="mock-small",
                    messages=[{"role": "user", "content": prompt}],
                    max_tokens=1,
                    temperature=0,
                    logit_bias=banned,
                )
                sent += 1
    finally:
        await client.close()
    return sent


async def _attack(url: str) -> tuple[Any, LogprobFreeExtractor]:
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=TEST_KEYS["free"], max_retries=0)
    try:
        extractor = LogprobFreeExtractor(
            client, groundtruth.vocabulary(), steps=STEPS, concurrency=4, max_queries=2000
        )  # the budget only makes a regression fail fast: the detector must stop it under 200 answers
        report = await extractor.run(attack_prompts(PROMPTS), token_subset(TOKENS))
    finally:
        await client.close()
    return report, extractor


def test_bias_prober_reaches_high_long_before_recovering_anything_and_a_fixed_bias_stays_none(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    gw = _preset_gateway(start_gateway, mock_upstream, audit)
    sent = asyncio.run(_honest(gw.url, groundtruth.vocabulary()))
    report, extractor = asyncio.run(_attack(gw.url))

    # Stopped: the preset refuses logit_bias at `high`, and the attacker gave up.
    assert extractor.stopped and report.refused >= 32, report
    assert all("logit_bias" in message for message in report.refusal_messages), report.refusal_messages
    assert report.answered < 200 < NEEDED, report  # ~150x fewer answers than the attack needs
    complete_rows = int(np.isfinite(report.logits).all(axis=1).sum())
    assert complete_rows <= 1 and hidden_dimension(report.logits).estimate == 0, complete_rows

    entries = [orjson.loads(line) for line in audit.read_bytes().splitlines()]
    raised = [entry for entry in entries if entry["account"] == "free"]
    assert raised and raised[-1]["to"] == "high", raised
    evidence = raised[-1]["evidence"]
    assert evidence["features"]["requests"] <= 40, evidence["features"]  # min_requests is 20
    assert evidence["features"]["bias_probing"] > 0.8
    assert evidence["score"]["top_reasons"][0] == "bias_probing", evidence["score"]
    assert evidence["score"]["signals"]["bias_probing"]["contribution"] > 0.3

    # The honest classifier (80% the same volume, a fixed bias, one-token answers, retries) is never raised.
    assert sent == 50
    assert not any(entry["account"] == "pro" for entry in entries), entries

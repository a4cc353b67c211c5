"""Running the extraction against the mock, directly and through gateways with given policies.

Each scenario: a target (the mock, or a gateway in front of it with one
``logprobs`` policy config on the ``free`` tier), an attack variant, sizes;
the outcome: did it recover h, how exactly, at what query cost, and if not,
why (refused / logits not revealed / wrong h).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openai

from bench.attacks import groundtruth
from bench.attacks.hidden_dimension import hidden_dimension, subspace_residual
from bench.attacks.logit_extraction import AttackReport, LogitExtractor, Variant, attack_prompts
from bench.attacks.logprob_free import LogprobFreeExtractor
from tests.support import TEST_KEYS, GatewayHandle, MockHandle, base_config

DEMO_NOISE_KEY = "bench-logprob-noise-key-0123456789"
# A drop of at least 2x between consecutive singular values counts as a finding: the spectra of
# noisy logit matrices in these runs fluctuate by 1.1-1.8x from one value to the next.
CLEAR_DROP = 2.0


@dataclass
class Outcome:
    name: str
    report: AttackReport
    hidden: int
    gap: float
    max_error: float  # largest |recovered - true| over recovered logits (nan if none)
    residual: float  # output-layer subspace residual at the true h (1 = nothing recovered)

    @property
    def hidden_recovered(self) -> bool:
        return self.hidden == groundtruth.hidden_size() and self.gap >= CLEAR_DROP

    @property
    def succeeded(self) -> bool:
        """h recovered and the output layer recovered exactly (up to a linear map)."""
        return self.hidden_recovered and self.residual < 1e-6

    def failure(self) -> str:
        if self.succeeded:
            return "attack succeeded"
        if self.report.refused and self.report.refused == self.report.queries:
            return "FAILED: refused, cannot get logits"
        if self.report.recovered_fraction < 0.5:
            return "FAILED: logits not revealed"
        if self.gap < CLEAR_DROP:
            return f"FAILED: no clear drop in the spectrum (argmax at {self.hidden})"
        if not self.hidden_recovered:
            return f"FAILED: wrong h ({self.hidden})"
        return "h recovered, output layer only approximate"

    def line(self) -> str:
        r = self.report
        return (
            f"{self.name:<44} queries={r.queries:>6} refused={r.refused:>6} "
            f"revealed={r.recovered_fraction:6.1%} h={self.hidden:>3} gap={self.gap:9.3g} "
            f"err={self.max_error:9.3g} resid={self.residual:7.3g} {self.failure()}"
        )


def token_subset(size: int, seed: int = 0) -> list[int]:
    rng = np.random.default_rng(seed)
    return [int(t) for t in rng.choice(len(groundtruth.vocabulary()), size, replace=False)]


async def attack(
    name: str,
    base_url: str,
    api_key: str,
    *,
    prompts: int,
    tokens: int,
    variant: Variant = "topk",
    mode: str = "processed",
    top_k: int = 20,
    repeats: int = 1,
    dither: float = 1.0,
    bias: float = 100.0,
    seed: int = 0,
) -> Outcome:
    """One extraction run and its score against the toy model's truth."""
    client = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=0)
    try:
        extractor = LogitExtractor(
            client,
            groundtruth.vocabulary(),
            variant=variant,
            top_k=top_k,
            bias=bias,
            repeats=repeats,
            dither=dither,
            extra_headers={"x-mock-logprobs-mode": mode},
        )
        token_ids = token_subset(tokens, seed)
        texts = attack_prompts(prompts, seed)
        report = await extractor.run(texts, token_ids)
    finally:
        await client.close()
    return score(name, report, texts, token_ids)


async def logprob_free_attack(
    name: str,
    base_url: str,
    api_key: str,
    *,
    prompts: int,
    tokens: int,
    steps: int = 10,
    max_bias: float = 32.0,
    seed: int = 0,
) -> Outcome:
    """One logprob-free (bias bisection) run and its score against the toy model's truth."""
    client = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=0)
    try:
        extractor = LogprobFreeExtractor(client, groundtruth.vocabulary(), steps=steps, max_bias=max_bias)
        token_ids = token_subset(tokens, seed)
        texts = attack_prompts(prompts, seed)
        report = await extractor.run(texts, token_ids)
    finally:
        await client.close()
    return score(name, report, texts, token_ids)


def score(name: str, report: AttackReport, texts: list[str], token_ids: list[int]) -> Outcome:
    """The outcome of an extraction run, scored against the toy model's truth."""
    truth = np.array([groundtruth.true_relative_logits(p, token_ids) for p in texts])
    estimate = hidden_dimension(report.logits)
    known = np.isfinite(report.logits)
    error = float(np.abs(report.logits - truth)[known].max()) if known.any() else float("nan")
    residual = subspace_residual(
        report.logits, groundtruth.true_output_rows(token_ids), groundtruth.hidden_size()
    )
    return Outcome(name, report, estimate.estimate, estimate.gap, error, residual)


class Gateways:
    """A mock upstream and gateways in front of it, one per policy config (started on demand)."""

    def __init__(self) -> None:
        os.environ.setdefault("DISTILLGUARD_LOGPROB_NOISE_KEY", DEMO_NOISE_KEY)
        self.mock = MockHandle().start()
        self.started: list[GatewayHandle] = []

    def gateway(self, policy_config: dict[str, Any] | None) -> GatewayHandle:
        config = base_config(self.mock.url)
        if policy_config is not None:
            config["tiers"]["free"]["policies"] = [{"name": "logprobs", "config": policy_config}]
        handle = GatewayHandle(config, Path(tempfile.mkdtemp(prefix="dg-attack-"))).start()
        self.started.append(handle)
        return handle

    def close(self) -> None:
        for handle in self.started:
            handle.stop()
        self.mock.stop()


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


FREE_KEY = TEST_KEYS["free"]

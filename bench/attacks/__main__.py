"""``python -m bench.attacks [--quick]``: the logit-extraction attack against the mock, directly and
through gateways with and without the ``logprobs`` policy, and against coarsening alone.

Everything runs over real sockets on 127.0.0.1 (the mock upstream and gateways
in this process) with the official ``openai`` async client. The table says for
each scenario what the attack cost (queries), what it revealed, the recovered
hidden dimension h (truth: 48), the largest logit error, the residual of the
recovered output-layer subspace, and why it failed.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench.attacks.presets import preset_config
from bench.attacks.scenarios import FREE_KEY, Gateways, Outcome, attack, logprob_free_attack, run

# Each preset tier's largest logit_bias magnitude (None: no cap; 0: bias refused).
PRESET_TIERS = [(p, t) for p in ("default", "strict") for t in ("free", "pro", "trusted")]


def bias_cap(config: dict[str, Any]) -> float | None:
    bias = config.get("logit_bias") or {}
    if bias.get("mode", "exclusive") == "refuse":
        return 0.0
    cap = bias.get("max_magnitude")
    return float(cap) if cap is not None else None


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.attacks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip the large and the slow scenarios")
    parser.add_argument(
        "--logprob-free", action="store_true", help="run only D, the logprob-free (bias bisection) attack"
    )
    args = parser.parse_args()
    gateways = Gateways()
    started = time.perf_counter()
    rows: list[Outcome] = []

    def show(outcome: Outcome) -> None:
        rows.append(outcome)
        print(outcome.line(), f"{outcome.report.seconds:6.1f}s", flush=True)

    def through(config: dict[str, Any] | None) -> str:
        return gateways.gateway(config).url

    try:
        if args.logprob_free:
            logprob_free(show, through, gateways.mock.url)
            return
        small = {"prompts": 96, "tokens": 128}
        print("# A. top-k + logit_bias (upstream logprobs include the bias: OpenAI before 2024, vLLM V0)")
        show(run(attack("mock directly", gateways.mock.url, "x", **small)))
        show(run(attack("gateway, no policy", through(None), FREE_KEY, **small)))
        show(run(attack("gateway, logprobs policy defaults {}", through({}), FREE_KEY, **small)))
        for preset, tier in (("default", "free"), ("default", "trusted"), ("strict", "pro")):
            config = preset_config(preset, tier)
            url = through(config)
            show(run(attack(f"gateway, {preset}.yaml {tier}", url, FREE_KEY, **small)))
            label = "  same, no logit_bias: read the top-k shown"
            k = max(1, config.get("top_k", 5))
            show(run(attack(label, url, FREE_KEY, variant="plain", top_k=k, **small)))

        print("# B. sampled-token variant (upstream logprobs ignore the bias: OpenAI since 2024, vLLM V1)")
        sampled = {"variant": "sampled", "mode": "raw", "prompts": 56 if args.quick else 64, "tokens": 64}
        show(run(attack("gateway, no policy", through(None), FREE_KEY, **sampled)))
        show(
            run(
                attack(
                    "gateway, default.yaml free",
                    through(preset_config("default", "free")),
                    FREE_KEY,
                    **sampled,
                )
            )
        )
        show(run(attack("top-k variant vs this upstream", through(None), FREE_KEY, mode="raw", **small)))

        print("# C. coarsening alone (logit_bias allowed with top 20 logprobs): grid, keyed noise")
        allow = {"top_k": 20, "logit_bias": {"mode": "allow"}}
        cases: list[tuple[str, dict[str, Any], int]] = [
            ("grid 0.5", {"grid": 0.5}, 1),
            ("grid 2", {"grid": 2.0}, 1),
            ("grid 2, attacker dithers the bias x8", {"grid": 2.0}, 8),
            ("noise 0.5", {"noise": {"scale": 0.5}}, 1),
            ("grid 0.5 + noise 0.5", {"grid": 0.5, "noise": {"scale": 0.5}}, 1),
            ("grid 1 + noise 1", {"grid": 1.0, "noise": {"scale": 1.0}}, 1),
            ("grid 1 + noise 1, attacker dithers x8", {"grid": 1.0, "noise": {"scale": 1.0}}, 8),
        ]
        sizes = [small] if args.quick else [small, {"prompts": 192, "tokens": 256}]
        for size in sizes:
            for name, extra, repeats in cases:
                if repeats > 1 and (args.quick or size is not small):
                    continue
                label = f"{name} ({size['prompts']}x{size['tokens']})"
                url = through({**allow, **extra})
                show(run(attack(label, url, FREE_KEY, repeats=repeats, dither=2.0, **size)))
    finally:
        gateways.close()
    print(f"# {len(rows)} scenarios in {time.perf_counter() - started:.0f}s")


def logprob_free(show: Any, through: Any, mock_url: str) -> None:
    """D: Carlini et al. §6, no logprobs: the argmax under a bisected bias, 58 x 58 logits."""
    size = {"prompts": 58, "tokens": 58}
    print("# D. logprob-free: one-token answers under a bisected logit_bias (max_bias 32)")
    for steps in (7, 8, 9, 10):
        show(
            run(
                logprob_free_attack(
                    f"mock directly, {steps} queries/logit", mock_url, "x", steps=steps, **size
                )
            )
        )
    for preset, tier in PRESET_TIERS:
        config = preset_config(preset, tier)
        cap = bias_cap(config)
        # Under a cap the attacker bisects up to it, and asks 25% more prompts: a few gaps exceed 20.
        kwargs: dict[str, Any] = {"steps": 9, **size}
        if cap:
            kwargs.update(max_bias=min(32.0, cap), prompts=72)
        name = f"gateway, {preset}.yaml {tier} (logprobs policy)"
        show(run(logprob_free_attack(name, through(config), FREE_KEY, **kwargs)))


if __name__ == "__main__":
    main()

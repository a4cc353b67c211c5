"""The logit-bias extraction attack as the test of the logprobs policy, both directions, over real sockets.

Small but real: 58 prompts x 58 tokens of the mock's vocabulary (h = 48), the
published top-k + bias variant (174 queries), run with the openai SDK against
the mock directly, through a gateway that passes logprobs through (the attack
must recover h exactly), and through gateways with the recommended presets (it
must fail, and we check why). ``python -m bench.attacks`` runs larger sizes.
"""

from __future__ import annotations

import os

import pytest

from bench.attacks.presets import preset_config
from bench.attacks.scenarios import CLEAR_DROP, FREE_KEY, Gateways, Outcome, attack, run

SIZE = {"prompts": 58, "tokens": 58}
QUERIES = 58 * 3  # 57 tokens besides the reference, 19 per query


@pytest.fixture(scope="module")
def gateways() -> Gateways:
    os.environ.setdefault("DISTILLGUARD_LOGPROB_NOISE_KEY", "attack-test-noise-key-0123456789")
    handle = Gateways()
    yield handle  # type: ignore[misc]
    handle.close()


def _assert_recovered(outcome: Outcome) -> None:
    assert outcome.hidden == 48, outcome.line()
    assert outcome.gap > 1e6 and outcome.max_error < 1e-9 and outcome.residual < 1e-9, outcome.line()
    assert outcome.report.refused == 0 and outcome.report.queries == QUERIES


def test_attack_recovers_h_from_the_mock_directly(gateways: Gateways) -> None:
    _assert_recovered(run(attack("mock", gateways.mock.url, "unused", **SIZE)))


def test_attack_recovers_h_through_a_gateway_that_passes_logprobs(gateways: Gateways) -> None:
    _assert_recovered(run(attack("passthrough", gateways.gateway(None).url, FREE_KEY, **SIZE)))
    allowing = gateways.gateway({"top_k": 20, "logit_bias": {"mode": "allow"}})
    _assert_recovered(run(attack("policy allowing everything", allowing.url, FREE_KEY, **SIZE)))


@pytest.mark.parametrize(
    ("preset", "tier"), [("default", "free"), ("default", "trusted"), ("strict", "pro"), ("strict", "free")]
)
def test_attack_fails_through_the_presets(gateways: Gateways, preset: str, tier: str) -> None:
    url = gateways.gateway(preset_config(preset, tier)).url
    top_k = preset_config(preset, tier).get("top_k", 5)
    # The attacker adapts to the tier's top_k (the attack needs at least 2: a reference and a target).
    outcome = run(attack(f"{preset} {tier}", url, FREE_KEY, top_k=max(2, top_k), **SIZE))
    assert outcome.failure() == "FAILED: refused, cannot get logits", outcome.line()
    assert outcome.report.recovered_fraction == 0 and outcome.hidden == 0
    refused_for = "logit_bias" if top_k >= 2 else "top_logprobs"
    assert all(refused_for in message for message in outcome.report.refusal_messages), outcome.report
    # Without the bias, the logprobs a tier shows reveal a handful of the 64 logits per prompt.
    top_k = max(1, top_k)
    plain = run(attack("no bias", url, FREE_KEY, variant="plain", top_k=top_k, **SIZE))
    assert plain.report.recovered_fraction <= (top_k + 1) / 58 and plain.hidden != 48, plain.line()


def test_attack_fails_with_the_policy_defaults(gateways: Gateways) -> None:
    outcome = run(attack("defaults", gateways.gateway({}).url, FREE_KEY, **SIZE))
    assert outcome.report.refused == outcome.report.queries and outcome.hidden == 0
    assert outcome.report.queries < 64  # the attacker gave up after a run of refusals


def test_sampled_token_variant_both_directions(gateways: Gateways) -> None:
    """Against logprobs that ignore the bias (OpenAI since 2024, vLLM V1): one logit per query."""
    small = {"prompts": 4, "tokens": 12, "variant": "sampled", "mode": "raw"}
    passed = run(attack("sampled, passthrough", gateways.gateway(None).url, FREE_KEY, **small))
    assert passed.report.recovered_fraction == 1 and passed.max_error < 1e-9, passed.line()
    assert passed.report.queries == 4 * 12
    url = gateways.gateway(preset_config("default", "free")).url
    refused = run(attack("sampled, default", url, FREE_KEY, **small))
    assert refused.report.refused == refused.report.queries and refused.report.recovered_fraction == 0
    # The published top-k variant learns nothing from such an upstream.
    topk = run(attack("top-k vs raw", gateways.gateway(None).url, FREE_KEY, mode="raw", **SIZE))
    assert topk.report.recovered_fraction < 0.05 and topk.hidden != 48


def test_coarsening_alone_breaks_h_at_this_query_budget(gateways: Gateways) -> None:
    """logit_bias allowed, values on a 1-nat grid with 1-nat keyed noise: no h at 174 queries.

    The singular value spectrum shows no clear drop (whatever the noise key), so
    the attacker cannot tell h, and the output layer comes out 10%+ wrong.
    """
    config = {"top_k": 20, "logit_bias": {"mode": "allow"}, "grid": 1.0, "noise": {"scale": 1.0}}
    outcome = run(attack("grid 1 + noise 1", gateways.gateway(config).url, FREE_KEY, **SIZE))
    assert outcome.report.refused == 0 and outcome.report.recovered_fraction == 1
    assert outcome.gap < CLEAR_DROP and not outcome.hidden_recovered, outcome.line()
    assert outcome.residual > 0.1 and outcome.max_error > 1, outcome.line()

"""Benign hard cases stay at none: an evaluation harness, an IDE plugin with a long fixed system prompt."""

from __future__ import annotations

import random

from policies.detector.core import core_for
from policies.detector.sim.personas import Account, eval_harness, ide_long_system, personas
from tests.policies.detector.helpers import chat, harvest_prompt, send
from tests.policy_harness import PolicyHarness


def _account(style: str, seed: int) -> Account:
    persona = next(p for p in personas() if p.style == style)
    return Account(f"{style}-1", persona, rng=random.Random(seed))


async def test_an_evaluation_harness_with_the_zero_shot_suffix_stays_untouched() -> None:
    """Templated math ending in "Let's think step by step", temperature 0: a customer benchmarking."""
    harness = PolicyHarness([("detector", {}, "enforce")])  # type: ignore[list-item]
    await harness.start()
    evaluator, ide = _account("eval", 1), _account("ide_long", 2)
    rng = random.Random(3)
    for _ in range(200):
        await send(harness, "eval", eval_harness(evaluator, 0.5).body, user_agent="lm-eval-harness/0.4.3")
        await send(harness, "ide", ide_long_system(ide, 0.5).body, ip="198.51.100.9")
        await send(harness, "harvester", chat(harvest_prompt(rng)), ip="203.0.113.5")
    core = core_for(harness.services)
    await core.drain()
    risk = harness.services.risk
    assert risk.level("harvester") == "high"  # the same detector still catches extraction
    for account in ("eval", "ide"):
        status = core.views.status(account)
        assert status["features"]["requests"] == 200  # every request was analysed
        assert risk.level(account) == "none", status["score"]
        assert status["score"]["score"] < 0.4
    evaluator_features = core.views.status("eval")["features"]
    assert 0 < evaluator_features["cot_elicitation"] <= 0.15 and evaluator_features["template_reuse"] > 0.5

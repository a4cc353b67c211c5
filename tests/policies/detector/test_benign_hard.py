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


async def test_rag_backend_batch_summariser_and_a_company_nat_stay_at_none_with_semantic_signals() -> None:
    """The other hard cases, with the sentence-embedding signals reading their prompts too."""
    from policies.detector.embedding import available
    from policies.detector.sim.personas import batch_customer, chat_user, rag_app

    harness = PolicyHarness([("detector", {"shared": {"semantic": {"enabled": "on"}}}, "enforce")])  # type: ignore[list-item]
    assert available()
    await harness.start()
    rag, batch = _account("rag", 4), _account("batch", 5)
    colleagues = [_account("chat", 10 + i) for i in range(12)]  # one company: one address, one SDK
    rng = random.Random(6)
    for step in range(120):
        await send(harness, "rag", rag_app(rag, 0.5).body, ip="198.51.100.20", user_agent="kb-answers/2.0")
        await send(
            harness, "batch", batch_customer(batch, 0.5).body, ip="198.51.100.30", user_agent="summariser"
        )
        colleague = colleagues[step % len(colleagues)]
        await send(harness, f"staff-{step % 12}", chat_user(colleague, 0.5).body, ip="192.0.2.200")
        await send(harness, "harvester", chat(harvest_prompt(rng)), ip="203.0.113.5")
    core = core_for(harness.services)
    await core.drain()
    risk = harness.services.risk
    assert risk.level("harvester") == "high"
    semantic = core.analysis.semantic
    for account in ("rag", "batch", *(f"staff-{i}" for i in range(12))):
        assert risk.level(account) == "none", core.views.status(account)["score"]
        value, _ = semantic.value(account)
        assert semantic.accounts[account].embedded > 0 and value < 0.1, account
    assert semantic.value("harvester")[0] > 0.5  # the same signals read the harvester's demand

"""The detector core through the policy pipeline: single accounts, hydras, allowlist, shadow, audit."""

from __future__ import annotations

import random
from pathlib import Path

import orjson

from policies.detector.core import core_for
from tests.policies.detector.helpers import chat, cover_prompt, harvest_prompt, send, ticket_prompt
from tests.policy_harness import PolicyHarness


async def _harness(config: dict | None = None, mode: str = "enforce") -> PolicyHarness:
    harness = PolicyHarness([("detector", config or {}, mode)])  # type: ignore[list-item]
    await harness.start()
    return harness


async def test_single_account_harvester_reaches_high_and_is_audited(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    harness = await _harness({"shared": {"audit_log": str(audit)}})
    rng = random.Random(1)
    for _ in range(40):
        await send(harness, "harvester", chat(harvest_prompt(rng)))
        await send(harness, "batch", chat(ticket_prompt(rng), max_tokens=150))
    core = core_for(harness.services)
    await core.drain()
    assert harness.services.risk.level("harvester") == "high"
    assert harness.services.risk.level("batch") == "none"
    entries = [orjson.loads(line) for line in audit.read_bytes().splitlines()]
    raised = [e for e in entries if e["account"] == "harvester"]
    assert raised and raised[-1]["to"] == "high" and raised[0]["source"] == "detector"
    evidence = raised[-1]["evidence"]
    assert evidence["features"]["cot_elicitation"] > 0.8
    assert "cot_elicitation" in evidence["score"]["top_reasons"]
    assert not any(e["account"] == "batch" for e in entries)
    # No prompt text is kept by default.
    assert b"apples" not in audit.read_bytes()


async def test_hydra_members_are_raised_through_their_cluster() -> None:
    """40 accounts behind one proxy pool, each mostly cover traffic with a few extraction prompts."""
    harness = await _harness()
    rng = random.Random(2)
    members = [f"hydra-{i}" for i in range(40)]
    for round_number in range(8):
        for number, member in enumerate(members):
            extraction = (number + round_number) % 10 == 0
            text = harvest_prompt(rng) if extraction else cover_prompt(rng)
            await send(
                harness, member, chat(text), ip=f"203.0.113.{number + 1}", user_agent="python-requests/2.31"
            )
    # Benign users with the same client software on other networks.
    for number in range(20):
        for _ in range(8):
            await send(
                harness,
                f"user-{number}",
                chat(cover_prompt(rng)),
                ip=f"198.51.{number}.7",
                user_agent="python-requests/2.31",
            )
    core = core_for(harness.services)
    await core.drain()
    risk = harness.services.risk
    raised = [m for m in members if risk.level(m) in ("high", "critical")]
    assert len(raised) >= 38, [risk.level(m) for m in members]
    assert all(risk.level(f"user-{n}") == "none" for n in range(20))
    clusters = core.clusters()
    assert any(c["kind"] == "infra" and c["accounts"] >= 35 for c in clusters)
    assert any(c["kind"] == "template" and c["extraction_mean"] > 0.8 for c in clusters)
    status = core.status(members[0])
    assert status["cluster"] is not None and status["score"]["cluster"] > 0.5


async def test_allowlisted_accounts_are_never_raised() -> None:
    harness = await _harness({"shared": {"allowlist": ["partner"]}, "hysteresis": {"min_requests": 5}})
    rng = random.Random(3)
    for _ in range(30):
        await send(harness, "partner", chat(harvest_prompt(rng)))
        await send(harness, "stranger", chat(harvest_prompt(rng)))
    core = core_for(harness.services)
    await core.drain()
    risk = harness.services.risk
    assert risk.level("partner") == "none" and risk.level("stranger") == "high"
    core.allow("stranger", True)
    assert risk.level("stranger") == "none"
    for _ in range(5):
        await send(harness, "stranger", chat(harvest_prompt(rng)))
    await core.drain()
    assert risk.level("stranger") == "none"
    core.allow("stranger", False)
    await send(harness, "stranger", chat(harvest_prompt(rng)))
    await core.drain()
    assert risk.level("stranger") == "high"


async def test_shadow_mode_audits_but_sets_nothing(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    harness = await _harness(
        {"shared": {"audit_log": str(audit)}, "hysteresis": {"min_requests": 5}}, "shadow"
    )
    rng = random.Random(4)
    for _ in range(20):
        await send(harness, "harvester", chat(harvest_prompt(rng)))
    await core_for(harness.services).drain()
    assert harness.services.risk.level("harvester") == "none"
    entries = [orjson.loads(line) for line in audit.read_bytes().splitlines()]
    assert entries and entries[0]["applied"] is False and entries[0]["to"] == "high"


async def test_operator_pins_are_audited_with_features(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    harness = await _harness({"shared": {"audit_log": str(audit)}})
    rng = random.Random(5)
    for _ in range(3):
        await send(harness, "acct", chat(cover_prompt(rng)))
    await core_for(harness.services).drain()
    harness.services.risk.pin("acct", "critical", reason="ticket 42")
    entry = orjson.loads(audit.read_bytes().splitlines()[-1])
    assert (entry["source"], entry["to"], entry["reason"]) == ("operator", "critical", "ticket 42")
    assert entry["evidence"]["features"]["requests"] == 3


async def test_a_full_queue_drops_and_counts_instead_of_blocking() -> None:
    harness = await _harness({"shared": {"queue_size": 10}})
    core = core_for(harness.services)
    before = core.metrics.dropped._value.get()  # type: ignore[union-attr]
    exchanges = [harness.exchange("chat.completions", chat("hello"), account="a") for _ in range(50)]
    for exchange in exchanges:
        await harness.request(exchange)
    for exchange in exchanges:
        await harness.pipeline.run_after(exchange)  # no await inside: the worker cannot run meanwhile
    assert core.metrics.dropped._value.get() - before >= 39  # type: ignore[union-attr]
    await core.drain()


async def test_shared_settings_must_agree_between_instances() -> None:
    from gateway.config.loader import PipelineSpec, ResolvedPolicy
    from gateway.plugins.pipeline import Pipeline
    from policies.detector import DetectorConfig, DetectorPolicy
    from tests.policy_harness import services

    shared = services()
    one = DetectorConfig.model_validate({"shared": {"max_accounts": 100}})
    two = DetectorConfig.model_validate({"shared": {"max_accounts": 200}})
    spec = PipelineSpec(
        "free",
        (ResolvedPolicy("detector", DetectorPolicy, one, "enforce"),),
    )
    await Pipeline(spec, shared).startup()
    other = PipelineSpec("pro", (ResolvedPolicy("detector", DetectorPolicy, two, "enforce"),))
    try:
        await Pipeline(other, shared).startup()
    except ValueError as exc:
        assert "identical in every tier" in str(exc)
    else:
        raise AssertionError("disagreeing shared settings must be refused")


async def test_prompts_are_kept_only_when_configured() -> None:
    from policies.detector.evidence import account_bundle

    for keep in (False, True):
        harness = await _harness({"shared": {"store_prompts": keep, "prompts_kept": 3}})
        for number in range(5):
            await send(harness, "acct", chat(f"question number {number} about sourdough"))
        core = core_for(harness.services)
        bundle = await account_bundle(core, "acct")
        if keep:
            assert bundle["prompts"] == [f"question number {n} about sourdough" for n in (2, 3, 4)]
        else:
            assert "prompts" not in bundle and core.accounts["acct"].prompts is None

"""A proxy pool's networks pool their linked share; an office behind a NAT with the same SDK keeps its own.

A hydra at a low extraction rate links few members per network: each network's infra group alone
crosses the linked fraction late, one after another. The groups of one client setup that are
each implicated read their pooled share (index.py), and a group whose score rises past a level's
threshold has its members re-evaluated at once (analysis.py). These tests drive the real detector
through the policy pipeline, as an attacker spreading a campaign over networks would.
"""

from __future__ import annotations

import random

from policies.detector.config import ClusterSettings
from policies.detector.core import core_for
from policies.detector.index import INFRA, TemplateIndex, binomial_tail, group_score
from tests.policies.detector.helpers import chat, cover_prompt, harvest_prompt, send
from tests.policy_harness import PolicyHarness

SDK = "OpenAI/Python 1.52.0"  # the pool and the office both use the most common client
LEXICAL_ONLY = {"shared": {"semantic": {"enabled": "off"}}}


async def _harness(config: dict | None = None) -> PolicyHarness:
    harness = PolicyHarness([("detector", config or LEXICAL_ONLY, "enforce")])  # type: ignore[list-item]
    await harness.start()
    return harness


async def _network(
    harness: PolicyHarness,
    name: str,
    prefix: str,
    members: int,
    linked: int,
    rng: random.Random,
    client: str = SDK,
) -> list[str]:
    """``members`` accounts on one /24 and client; the first ``linked`` send a campaign's prompt twice."""
    accounts = [f"{name}-{number}" for number in range(members)]
    for number, account in enumerate(accounts):
        await send(harness, account, chat(cover_prompt(rng)), ip=f"{prefix}.{number + 1}", user_agent=client)
    for number, account in enumerate(accounts[:linked]):
        for _ in range(2):
            prompt = chat(harvest_prompt(rng))
            await send(harness, account, prompt, ip=f"{prefix}.{number + 1}", user_agent=client)
    return accounts


async def test_a_lagging_network_of_a_proxy_pool_is_raised_through_the_pool() -> None:
    """Four networks of one pool, 20% linked in three and 10% in the fourth: the fourth's members,
    linked only by their network, reach ``high`` (before: ``elevated``, its own share is half the
    full-score fraction). The office beside it, 3 of 100 linked with the same SDK, stays at ``none``;
    a team with another client, 3 of 30 linked, stays where its own share puts it (``elevated``)."""
    harness = await _harness()
    rng = random.Random(3)
    pool = []
    for number, prefix in enumerate(("203.0.113", "198.51.100", "192.0.2")):
        pool += await _network(harness, f"pool{number}", prefix, 20, 4, rng)
    lagging = await _network(harness, "lagging", "198.18.7", 30, 3, rng)
    office = await _network(harness, "office", "198.18.200", 100, 3, rng)
    team = await _network(harness, "team", "198.18.9", 30, 3, rng, client="team-tool/2.1")
    core = core_for(harness.services)
    await core.drain()
    level = harness.services.risk.level
    assert {level(a) for a in pool} == {"high"}
    assert {level(a) for a in lagging} == {"high"}, core.views.status(lagging[-1])["score"]
    assert {level(a) for a in office[3:]} == {"none"}  # its three linked accounts are raised on their own
    assert {level(a) for a in office[:3]} == {"high"}
    assert {level(a) for a in team[3:]} == {"elevated"}  # pools with nothing: a different client


async def test_without_pooling_the_lagging_network_waits_for_its_own_links() -> None:
    config = {**LEXICAL_ONLY, "cluster": {"infra_pooling": False}}
    harness = await _harness(config)
    rng = random.Random(3)
    for number, prefix in enumerate(("203.0.113", "198.51.100", "192.0.2")):
        await _network(harness, f"pool{number}", prefix, 20, 4, rng)
    lagging = await _network(harness, "lagging", "198.18.7", 30, 3, rng)
    await core_for(harness.services).drain()
    assert {harness.services.risk.level(a) for a in lagging[3:]} == {"elevated"}


async def test_members_are_re_evaluated_when_their_group_rises_past_a_threshold() -> None:
    """A network flagged at 5 linked of 50 (members at ``elevated``) that gains links reaches ``high``
    for every member at once, not at each member's next request."""
    harness = await _harness()
    rng = random.Random(7)
    members = await _network(harness, "net", "203.0.113", 50, 5, rng)
    core = core_for(harness.services)
    await core.drain()
    level = harness.services.risk.level
    assert {level(a) for a in members[5:]} == {"elevated"}
    for number in range(5, 8):  # two more members send the campaign's prompt; the others send nothing
        for _ in range(2):
            prompt = chat(harvest_prompt(rng))
            await send(harness, members[number], prompt, ip=f"203.0.113.{number + 1}", user_agent=SDK)
    await core.drain()
    assert {level(a) for a in members[8:]} == {"high"}


def test_a_group_below_its_family_rate_keeps_its_own_share() -> None:
    cluster = ClusterSettings()
    index = TemplateIndex(1000, 1000)
    sizes = {"sdk|10.0.1.0/24": (20, 5), "sdk|10.0.2.0/24": (20, 5), "sdk|10.0.3.0/24": (100, 3)}
    for key, (members, linked) in sizes.items():
        for number in range(members):
            index.touch(key, INFRA, f"{key}-{number}", 0.0, 0.0)
        group = index.get(key)
        assert group is not None
        for number in range(linked):
            index.link(group, f"{key}-{number}")
        index.family(group, cluster)  # as rescoring it after a link does
    pool, office = index.get("sdk|10.0.1.0/24"), index.get("sdk|10.0.3.0/24")
    assert pool is not None and office is not None
    assert index.pooled_share(office, cluster) is None  # 3 of 100 does not fit a 25% rate
    assert index.pooled_share(pool, cluster) == 10 / 40  # and the office does not dilute the pool's
    assert abs(group_score(office, cluster, index.pooled_share(office, cluster)) - 0.15) < 1e-9


def test_binomial_tail() -> None:
    assert abs(binomial_tail(0, 10, 0.5) - 0.5**10) < 1e-12
    assert abs(binomial_tail(10, 10, 0.3) - 1.0) < 1e-9
    assert abs(binomial_tail(3, 37, 0.143) - 0.2048) < 1e-3
    assert binomial_tail(3, 100, 0.2) < 1e-4


def test_families_forget_evicted_groups() -> None:
    cluster = ClusterSettings()
    index = TemplateIndex(100, 1000)
    for network in range(2):
        key = f"sdk|10.0.{network}.0/24"
        for number in range(10):
            index.touch(key, INFRA, f"{network}-{number}", 0.0, 0.0)
        group = index.get(key)
        assert group is not None
        for number in range(3):
            index.link(group, f"{network}-{number}")
        index.family(group, cluster)
    assert index.families == {"sdk": {"sdk|10.0.0.0/24", "sdk|10.0.1.0/24"}}
    for key in range(200):  # other groups push both out of the LRU
        index.touch(key, INFRA, "a", 0.0, 0.0)
        index.touch(key, INFRA, "b", 0.0, 0.0)
    assert index.families == {}

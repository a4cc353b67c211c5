"""Escalation only tightens, end to end: the shipped default preset through a real gateway.

The attack: an account a distiller controls is raised to ``elevated``. On the old loader the
level's override replaced the free tier's 20 requests/minute with its own 60, so the suspected
distiller was admitted twice as often as an honest free customer.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import yaml

from gateway.auth.keys import digest
from tests.support import ROOT, TEST_KEYS, GatewayHandle, MockHandle, base_config

TOKEN = "admin-token-for-escalation-tests"
HONEST_KEY = "dg-test-honest-free-key"


def _preset_gateway(
    start: Callable[..., GatewayHandle], mock: MockHandle, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> GatewayHandle:
    for name in ("DISTILLGUARD_SEAL_KEY", "DISTILLGUARD_WATERMARK_KEY"):
        monkeypatch.setenv(name, f"escalation-test-secret-{name.lower()}")
    monkeypatch.setenv("DG_ESCALATION_ADMIN_TOKEN", TOKEN)
    preset = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text())
    test = base_config(mock.url)
    preset["listen"], preset["upstreams"] = test["listen"], test["upstreams"]
    keys = test["auth"]["keys"] + [{"sha256": digest(HONEST_KEY), "account": "honest", "tier": "free"}]
    preset["auth"] = {"keys": keys}
    preset["reload"], preset["logging"] = test["reload"], test["logging"]
    preset["admin"] = {"token_env": "DG_ESCALATION_ADMIN_TOKEN"}
    for tier in preset["tiers"].values():
        for entry in tier["policies"]:
            if entry["name"] == "detector":
                entry["config"]["shared"] = {"audit_log": str(tmp_path / "audit.jsonl")}
    return start(preset)


def _admitted(gw: GatewayHandle, key: str, requests: int, rng: random.Random) -> list[int]:
    statuses = []
    with httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {key}"}, timeout=10) as client:
        for _ in range(requests):
            prompt = " ".join(
                rng.choice(["plan", "a", "trip", "to", "Lisbon", "Oslo", "soon"]) for _ in range(8)
            )
            response = client.post(
                "/v1/chat/completions",
                json={
                    "model": "mock-small",
                    "max_tokens": 16,
                    "messages": [{"role": "user", "content": prompt}],
                },
            )
            statuses.append(response.status_code)
    assert set(statuses) <= {200, 429}, statuses
    return statuses


def test_a_free_account_pinned_to_elevated_is_admitted_no_more_than_at_none(
    start_gateway: Callable[..., GatewayHandle],
    mock_upstream: MockHandle,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gw = _preset_gateway(start_gateway, mock_upstream, tmp_path, monkeypatch)
    pinned = httpx.put(
        f"{gw.ops_url}/admin/accounts/free/level",
        json={"level": "elevated", "reason": "suspected distiller"},
        headers={"authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert pinned.status_code == 200, pinned.text
    rng = random.Random(16)
    honest = _admitted(gw, HONEST_KEY, 40, rng)  # the same tier at level none
    suspect = _admitted(gw, TEST_KEYS["free"], 40, rng)
    assert honest.count(200) == 20  # the free tier's 20 requests/minute
    assert suspect.count(200) <= honest.count(200), (suspect.count(200), honest.count(200))

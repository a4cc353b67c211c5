"""A gateway with the detector and the watermark, and the traffic of a small hydra, for the console tests.

Shared by the browser test, the security tests and ``tests/console/screenshots.py`` (which renders
the pictures of docs/console.md from the same scenario).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import httpx

from gateway.auth.keys import digest
from tests.policies.detector.helpers import cover_prompt, harvest_prompt
from tests.support import TEST_KEYS, GatewayHandle, base_config

TOKEN = "console-admin-token-for-tests"
TOKEN_ENV = "DG_TEST_CONSOLE_TOKEN"
WATERMARK_ENV = "DISTILLGUARD_WATERMARK_KEY"
WATERMARK_KEY = "console-master-key-0123456789abcdef"
HYDRA = {f"hydra-{i}": f"dg-test-hydra-{i}" for i in range(8)}
ENV = {TOKEN_ENV: TOKEN, WATERMARK_ENV: WATERMARK_KEY}


def console_config(upstream_url: str, directory: Path) -> dict[str, Any]:
    """Detector and watermark on every tier; ``critical`` blocks; the admin token and audit log set."""
    keys = [{"sha256": digest(key), "account": tier, "tier": tier} for tier, key in TEST_KEYS.items()]
    keys += [{"sha256": digest(key), "account": name, "tier": "free"} for name, key in HYDRA.items()]
    detector = {
        "hysteresis": {"min_requests": 8},
        "cluster": {"min_accounts": 4},
        "shared": {"timeline_every_requests": 3, "audit_log": str(directory / "detector-audit.jsonl")},
    }
    policies = [{"name": "detector", "config": detector}, {"name": "watermark", "config": {}}]
    return base_config(
        upstream_url,
        auth={"keys": keys},
        tiers={tier: {"policies": policies} for tier in TEST_KEYS},
        risk_levels={"critical": {"block": True, "block_message": "Blocked pending review."}},
        admin={"token_env": TOKEN_ENV, "audit_log": str(directory / "operator-audit.jsonl")},
        trusted_proxies=["127.0.0.1/32"],  # the hydra's addresses arrive as X-Forwarded-For
    )


def chat(gw: GatewayHandle, key: str, text: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={"model": "mock-small", "messages": [{"role": "user", "content": text}]},
        headers={"authorization": f"Bearer {key}", **headers},
        timeout=10,
    )


def hydra_traffic(gw: GatewayHandle, rounds: int = 4, seed: int = 3) -> None:
    """Several accounts sharing one extraction template from one client, as ``distillguard simulate`` does."""
    rng = random.Random(seed)
    for round_number in range(rounds):
        for number, key in enumerate(HYDRA.values()):
            text = harvest_prompt(rng) if round_number % 2 == 0 else cover_prompt(rng)
            chat(gw, key, text, **{"user-agent": "hydra/1.0", "x-forwarded-for": f"203.0.113.{number + 1}"})
            response = chat(gw, key, harvest_prompt(rng), **{"user-agent": "hydra/1.0"})
            response.raise_for_status()


def marked_answers(gw: GatewayHandle, key: str, count: int = 12) -> list[str]:
    """Answers the gateway served (and watermarked) to the account of ``key``."""
    out = []
    for i in range(count):
        response = chat(gw, key, f"Explain how caches work, with an example. ({i})")
        response.raise_for_status()
        out.append(response.json()["choices"][0]["message"]["content"])
    return out

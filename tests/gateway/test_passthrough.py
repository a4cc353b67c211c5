"""Passthrough routes are governed like model operations: block, quota, detector, error mapping."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support import TEST_KEYS, GatewayHandle, MockHandle, RedisProcess, base_config

ROOT = Path(__file__).resolve().parents[2]
EMBED = {"model": "mock-small", "input": ["a", "b"]}
COUNT = {"model": "claude-mock", "messages": [{"role": "user", "content": "hello"}]}


def _auth(tier: str = "free") -> dict[str, str]:
    return {"authorization": f"Bearer {TEST_KEYS[tier]}", "anthropic-version": "2023-06-01"}


def test_the_request_quota_counts_passthrough_requests(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle
) -> None:
    quota = {"name": "quota", "config": {"requests_per_minute": 2}}
    gw = start_gateway(tiers={tier: {"policies": [quota]} for tier in TEST_KEYS})
    statuses = [httpx.get(f"{gw.url}/v1/models", headers=_auth()).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = httpx.post(f"{gw.url}/v1/embeddings", json=EMBED, headers=_auth())
    assert refused.status_code == 429 and refused.headers["retry-after"]


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [("status:401", 502, "upstream_auth"), ("status:429", 429, "upstream_over_capacity")],
)
def test_upstream_account_errors_on_passthrough_are_mapped(
    gateway: GatewayHandle, mock_upstream: MockHandle, fault: str, status: int, code: str
) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/embeddings", json=EMBED, headers={**_auth(), "x-mock-fault": fault}
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert "sk-" not in response.text and "org-" not in response.text


def _preset(name: str, upstream: str, directory: Path) -> dict[str, Any]:
    """A shipped preset in front of the mock, with the test keys and its audit logs under ``directory``."""
    config: dict[str, Any] = yaml.safe_load((ROOT / "policies" / name).read_text())
    test = base_config(upstream)
    config["upstreams"], config["auth"] = test["upstreams"], test["auth"]
    config["listen"], config["reload"] = test["listen"], test["reload"]
    for tier in config["tiers"].values():
        for policy in tier["policies"]:
            shared = policy.get("config", {}).get("shared")
            if isinstance(shared, dict) and "audit_log" in shared:
                shared["audit_log"] = str(directory / "audit-{replica}.jsonl")
    return config


@pytest.mark.parametrize("preset", ["default.yaml", "strict.yaml"])
def test_every_passthrough_route_works_through_the_shipped_presets(
    start_gateway: Callable[..., GatewayHandle],
    mock_upstream: MockHandle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_server: RedisProcess,
    preset: str,
) -> None:
    monkeypatch.setenv("DISTILLGUARD_REDIS_URL", redis_server.url)
    for name in ("DISTILLGUARD_WATERMARK_KEY", "DISTILLGUARD_SEAL_KEY", "DISTILLGUARD_LOGPROB_NOISE_KEY"):
        monkeypatch.setenv(name, "test-secret-" + name.lower())
    config = _preset(preset, mock_upstream.url, tmp_path)
    tier = config["default_tier"]
    config["auth"]["keys"][0]["tier"] = tier
    gw = start_gateway(config)
    with httpx.Client(base_url=gw.url, headers=_auth()) as client:
        assert [m["id"] for m in client.get("/v1/models").json()["data"]]
        assert client.get("/v1/models/mock-small").json()["id"] == "mock-small"
        assert len(client.post("/v1/embeddings", json=EMBED).json()["data"]) == 2
        assert client.post("/v1/messages/count_tokens", json=COUNT).json()["input_tokens"] > 0
        assert client.delete("/v1/models/mock-small").status_code == 405

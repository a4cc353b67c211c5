"""End to end through real gateways with the official SDKs: graduated responses, admin API, evidence."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from gateway.auth.keys import digest
from policies.detector.policy import TIMED_EVERY
from tests.policies.detector.helpers import cover_prompt, harvest_prompt, ticket_prompt
from tests.support import TEST_KEYS, GatewayHandle, MockHandle, base_config, metric_value, wait_for

MARKER = "tests.policies.detector.marker:MarkerPolicy"
TOKEN = "admin-secret-for-tests"
HYDRA = {f"hydra-{i}": f"dg-test-hydra-{i}" for i in range(10)}


def _config(mock: MockHandle, detector: dict[str, Any], **extra: Any) -> dict[str, Any]:
    keys = [{"sha256": digest(key), "account": tier, "tier": tier} for tier, key in TEST_KEYS.items()]
    keys += [{"sha256": digest(key), "account": name, "tier": "free"} for name, key in HYDRA.items()]
    policies = [{"name": "detector", "config": detector}, {"name": MARKER, "config": {"label": "none"}}]
    config = base_config(
        mock.url,
        auth={"keys": keys},
        tiers={tier: {"policies": policies} for tier in TEST_KEYS},
        risk_levels={
            "elevated": {"overrides": {MARKER: {"label": "elevated"}}},
            "high": {"overrides": {MARKER: {"label": "high"}}},
            "critical": {"block": True, "block_message": "Blocked pending review of distillation traffic."},
        },
        admin={"token_env": "DG_TEST_ADMIN_TOKEN"},
        trusted_proxies=["127.0.0.1/32"],  # the tests stand in for a proxy that sets X-Forwarded-For
    )
    config.update(extra)
    return config


@pytest.fixture
def detector_gateway(
    start_gateway: Callable[..., GatewayHandle],
    mock_upstream: MockHandle,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> Callable[..., GatewayHandle]:
    monkeypatch.setenv("DG_TEST_ADMIN_TOKEN", TOKEN)

    def start(**detector: Any) -> GatewayHandle:
        detector.setdefault("shared", {}).setdefault("audit_log", str(tmp_path / "audit.jsonl"))
        return start_gateway(_config(mock_upstream, detector))

    return start


def _admin(gw: GatewayHandle, path: str, method: str = "GET", token: str | None = TOKEN) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, f"{gw.ops_url}/admin{path}", headers=headers, timeout=10)


def _client(gw: GatewayHandle, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)


def _ask(client: openai.OpenAI, text: str) -> str:
    raw = client.chat.completions.with_raw_response.create(
        model="mock-small", messages=[{"role": "user", "content": text}]
    )
    return raw.headers.get("x-risk-marker", "")


def test_graduated_responses_from_detection_to_block(detector_gateway: Callable[..., GatewayHandle]) -> None:
    gw = detector_gateway(
        hysteresis={"min_requests": 10, "critical_min_requests": 60}, thresholds={"critical": 0.75}
    )
    rng = random.Random(1)
    harvester, batch = _client(gw, gw.key("free")), _client(gw, gw.key("pro"))
    markers = []
    for _ in range(30):
        markers.append(_ask(harvester, harvest_prompt(rng)))
        assert _ask(batch, ticket_prompt(rng)) == "none"
    wait_for(lambda: _admin(gw, "/detector/accounts/free").json()["risk_level"] == "high")
    assert markers[0] == "none"
    assert _ask(harvester, harvest_prompt(rng)) == "high", "the high pipeline's overrides must apply"
    # An operator pin to elevated switches the pipeline again.
    assert _admin(gw, "/accounts/free/level", "PUT").status_code == 400  # no JSON body
    pinned = httpx.put(
        f"{gw.ops_url}/admin/accounts/free/level",
        json={"level": "elevated", "reason": "test"},
        headers={"authorization": f"Bearer {TOKEN}"},
    )
    assert pinned.status_code == 200
    assert _ask(harvester, harvest_prompt(rng)) == "elevated"
    httpx.put(
        f"{gw.ops_url}/admin/accounts/free/level",
        json={"level": None},
        headers={"authorization": f"Bearer {TOKEN}"},
    )
    # Keep harvesting until the detector itself says critical: then a 403 in the API's own shape.
    with pytest.raises(openai.PermissionDeniedError) as blocked:
        for _ in range(200):
            _ask(harvester, harvest_prompt(rng))
            time.sleep(0.005)
    assert blocked.value.status_code == 403
    assert blocked.value.code == "account_blocked"
    assert "pending review" in blocked.value.message
    claude = anthropic.Anthropic(base_url=gw.url, api_key=gw.key("free"), max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError) as anthropic_blocked:
        claude.messages.create(
            model="claude-mock", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        )
    assert anthropic_blocked.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
    # The batch customer was never touched.
    status = _admin(gw, "/detector/accounts/pro").json()
    assert status["risk_level"] == "none" and status["features"]["template_reuse"] > 0.5
    metrics = gw.metrics()
    assert metric_value(metrics, "distillguard_risk_transitions_total", to="high") >= 1
    assert metric_value(metrics, "distillguard_risk_transitions_total", to="critical") >= 1
    # CPU time is measured on one request in TIMED_EVERY
    assert metric_value(metrics, "distillguard_detector_seconds_count", stage="total") >= 60 // TIMED_EVERY
    # The semantic signals ran in the real gateway's background (the extra is installed by the test extra).
    assert metric_value(metrics, "distillguard_detector_semantic_prompts_total", outcome="embedded") >= 16
    assert metric_value(metrics, "distillguard_detector_semantic_seconds_total") > 0
    # Each embedded prompt's lag behind its request is observed (in apply, before the count in record).
    embedded = metric_value(metrics, "distillguard_detector_semantic_prompts_total", outcome="embedded")
    assert metric_value(metrics, "distillguard_detector_semantic_lag_seconds_count") >= embedded
    # The analysis lag is observed on the requests whose CPU time is measured.
    timed = metric_value(metrics, "distillguard_detector_seconds_count", stage="total")
    assert metric_value(metrics, "distillguard_detector_analysis_lag_seconds_count") == timed
    wait_for(lambda: metric_value(gw.metrics(), "distillguard_risk_accounts", level="critical") == 1)
    changes = _admin(gw, "/detector/changes").json()["changes"]
    assert [c["to"] for c in changes if c["account"] == "free" and c["source"] == "detector"][
        -1
    ] == "critical"


def test_admin_api_requires_its_token(detector_gateway: Callable[..., GatewayHandle]) -> None:
    gw = detector_gateway()
    for path in (
        "/detector/accounts/free",
        "/detector/clusters",
        "/detector/allowlist",
        "/detector/evidence/accounts/free",
        "/detector/changes",
    ):
        assert _admin(gw, path, token=None).status_code == 401
        assert _admin(gw, path, token="wrong").status_code == 401
        assert _admin(gw, path).status_code == 200, path
    assert _admin(gw, "/detector/allowlist/free", "PUT", token="wrong").status_code == 401
    assert _admin(gw, "/detector/accounts?min_level=purple").status_code == 400


def test_admin_api_is_off_without_a_token(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle
) -> None:
    config = _config(mock_upstream, {})
    config["admin"] = {"token_env": "DG_TEST_UNSET_TOKEN_VARIABLE"}
    gw = start_gateway(config)
    assert _admin(gw, "/detector/accounts/free").status_code == 404


def test_allowlist_through_the_admin_api(detector_gateway: Callable[..., GatewayHandle]) -> None:
    gw = detector_gateway(hysteresis={"min_requests": 10}, shared={"allowlist": ["trusted"]})
    rng = random.Random(2)
    added = _admin(gw, "/detector/allowlist/free", "PUT")
    assert added.status_code == 200 and added.json()["allowlisted"]
    client, trusted = _client(gw, gw.key("free")), _client(gw, gw.key("trusted"))
    for _ in range(25):
        _ask(client, harvest_prompt(rng))
        _ask(trusted, harvest_prompt(rng))
    assert _admin(gw, "/detector/accounts/free").json()["risk_level"] == "none"
    assert _admin(gw, "/detector/accounts/trusted").json()["risk_level"] == "none"
    listed = _admin(gw, "/detector/allowlist").json()
    assert listed == {"configured": ["trusted"], "operator": ["free"]}
    assert _admin(gw, "/detector/allowlist/trusted", "DELETE").status_code == 409
    assert _admin(gw, "/detector/allowlist/free", "DELETE").status_code == 200
    _ask(client, harvest_prompt(rng))
    wait_for(lambda: _admin(gw, "/detector/accounts/free").json()["risk_level"] == "high")


def test_evidence_bundles_for_an_account_and_a_cluster(
    detector_gateway: Callable[..., GatewayHandle],
) -> None:
    gw = detector_gateway(
        hysteresis={"min_requests": 10}, cluster={"min_accounts": 4}, shared={"timeline_every_requests": 5}
    )
    store = gw.gateway.runtime.services.store
    record = {
        "key_ids": ["wm-2026-01", "wm-2026-02"],
        "first_served": 1.0,
        "last_served": 2.0,
        "responses": 31,
        "canaries": ["c-17"],
    }
    store.set_value(store.key("evidence", "watermark", "free"), orjson.dumps(record), 0, time.time())
    rng = random.Random(3)
    harvester = _client(gw, gw.key("free"))
    for _ in range(30):
        _ask(harvester, harvest_prompt(rng))
    # A small hydra: shared client and network, a few extraction prompts each.
    for round_number in range(4):
        for number, key in enumerate(HYDRA.values()):
            text = harvest_prompt(rng) if round_number % 2 == 0 else cover_prompt(rng)
            httpx.post(
                f"{gw.url}/v1/chat/completions",
                json={"model": "mock-small", "messages": [{"role": "user", "content": text}]},
                headers={
                    "authorization": f"Bearer {key}",
                    "user-agent": "hydra/1.0",
                    "x-forwarded-for": f"203.0.113.{number + 1}",
                },
                timeout=10,
            ).raise_for_status()
    bundle = _admin(gw, "/detector/evidence/accounts/free").json()
    claimed = bundle.pop("sha256")
    assert hashlib.sha256(orjson.dumps(bundle, option=orjson.OPT_SORT_KEYS)).hexdigest() == claimed
    assert bundle["kind"] == "account" and bundle["risk_level"] == "high"
    assert (
        bundle["audit_trail"][-1]["to"] == "high"
        and bundle["audit_trail"][-1]["evidence"]["score"]["score"] >= 0.6
    )
    assert bundle["features_over_time"], "flagged accounts get feature snapshots"
    assert bundle["fingerprints"]["templates"] and bundle["fingerprints"]["infra"]
    assert bundle["watermark"] == record
    assert "prompts" not in bundle
    clusters = _admin(gw, "/detector/clusters").json()["clusters"]
    assert clusters, "the shared template must be a flagged cluster"
    cluster_id = next(c["id"] for c in clusters if c["accounts"] >= len(HYDRA))
    one = _admin(gw, f"/detector/clusters/{cluster_id}").json()
    assert {m["account"] for m in one["members"]} >= set(HYDRA)
    evidence = _admin(gw, f"/detector/evidence/clusters/{cluster_id}").json()
    assert evidence["kind"] == "cluster" and evidence["cluster"]["id"] == cluster_id
    assert {m["account"] for m in evidence["members"]} >= set(HYDRA)
    assert _admin(gw, "/detector/evidence/clusters/template:00").status_code == 404

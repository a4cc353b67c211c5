"""/metrics, /healthz, /readyz and the JSON access log."""

from __future__ import annotations

import logging

import httpx
import openai
import pytest

from tests.support import GatewayHandle, metric_value

FAMILIES = [
    "distillguard_requests_total",
    "distillguard_request_duration_seconds",
    "distillguard_upstream_duration_seconds",
    "distillguard_gateway_overhead_seconds",
    "distillguard_time_to_first_token_seconds",
    "distillguard_stream_events_total",
    "distillguard_tokens_total",
    "distillguard_policy_actions_total",
    "distillguard_policy_failures_total",
    "distillguard_config_reloads_total",
    "distillguard_in_flight_requests",
]


def test_metrics_families_and_counts(gateway: GatewayHandle) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key("pro"), max_retries=0)
    before = metric_value(
        gateway.metrics(), "distillguard_requests_total", route="chat.completions", tier="pro"
    )
    client.chat.completions.create(model="mock-small", messages=[{"role": "user", "content": "x"}])
    list(
        client.chat.completions.create(
            model="mock-small", messages=[{"role": "user", "content": "x"}], stream=True
        )
    )
    text = gateway.metrics()
    for family in FAMILIES:
        assert f"# TYPE {family.removesuffix('_total')}" in text, family
    after = metric_value(
        text, "distillguard_requests_total", route="chat.completions", status="200", tier="pro"
    )
    assert after - before == 2
    assert metric_value(text, "distillguard_tokens_total", type="output", tier="pro") > 0
    assert metric_value(text, "distillguard_time_to_first_token_seconds_count", route="chat.completions") >= 1
    assert 'account="' not in text, "no per-account labels by default"


def test_health_and_readiness(gateway: GatewayHandle) -> None:
    assert httpx.get(f"{gateway.url}/healthz").text == "ok"
    ready = httpx.get(f"{gateway.url}/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True


def test_overhead_header_and_request_id(gateway: GatewayHandle) -> None:
    r = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {gateway.key()}", "x-request-id": "trace-123"},
        json={"model": "mock-small", "messages": [{"role": "user", "content": "x"}]},
    )
    assert r.headers["x-request-id"] == "trace-123"
    assert float(r.headers["x-distillguard-overhead-ms"]) >= 0


def test_access_log_has_no_secrets_or_prompts(
    gateway: GatewayHandle, caplog: pytest.LogCaptureFixture
) -> None:
    gateway.gateway.runtime.access_log = True
    with caplog.at_level(logging.INFO, logger="distillguard.access"):
        httpx.post(
            f"{gateway.url}/v1/chat/completions",
            headers={"authorization": f"Bearer {gateway.key()}"},
            json={"model": "mock-small", "messages": [{"role": "user", "content": "SECRET-PROMPT-TEXT"}]},
        )
        httpx.post(
            f"{gateway.url}/v1/chat/completions",
            headers={"authorization": "Bearer dg-leaked-key"},
            json={"model": "mock-small", "messages": []},
        )
    records = [r for r in caplog.records if r.name == "distillguard.access"]
    assert len(records) >= 2
    from gateway.logs import JSONFormatter

    lines = [JSONFormatter().format(r) for r in records]
    assert any('"status":200' in line and '"account":"free"' in line for line in lines)
    assert all(
        "SECRET-PROMPT-TEXT" not in line and "dg-leaked-key" not in line and gateway.key() not in line
        for line in lines
    )

"""/metrics, /healthz, /readyz and the JSON access log."""

from __future__ import annotations

import io
import json

import httpx
import openai

from tests.support import GatewayHandle, metric_value, wait_for

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


def test_access_log_has_no_secrets_or_prompts(gateway: GatewayHandle) -> None:
    stream = io.BytesIO()
    gateway.gateway.access_log.stream = stream
    gateway.gateway.runtime.access_log = True
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
    wait_for(lambda: stream.getvalue().count(b"\n") >= 2)
    lines = stream.getvalue().decode().splitlines()
    records = [json.loads(line) for line in lines]
    assert any(r["status"] == 200 and r["account"] == "free" and r["tokens_out"] > 0 for r in records)
    assert any(r["status"] == 401 and r["error"] == "invalid_key" for r in records)
    assert all(
        "SECRET-PROMPT-TEXT" not in line and "dg-leaked-key" not in line and gateway.key() not in line
        for line in lines
    )

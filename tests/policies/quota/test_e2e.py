"""End to end through a real gateway with the official SDKs: 429 shape, headers, reconciliation."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import anthropic
import httpx
import openai
import pytest
import yaml

from tests.support import ROOT, GatewayHandle, MockHandle, base_config, metric_value

RATE_HEADERS = [
    f"x-ratelimit-{part}-{kind}"
    for kind in ("requests", "tokens")
    for part in ("limit", "remaining", "reset")
]


def _gateway(start: Callable[..., GatewayHandle], mock: MockHandle, quota: dict[str, Any]) -> GatewayHandle:
    config = base_config(mock.url)
    config["tiers"]["free"]["policies"] = [{"name": "quota", "config": quota}]
    return start(config)


def _openai(gw: GatewayHandle) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=gw.key("free"), max_retries=0)


def _consumed(gw: GatewayHandle) -> float:
    return metric_value(gw.metrics(), "distillguard_quota_tokens_total", tier="free", kind="consumed")


def test_openai_sdk_sees_headers_then_a_429_in_openai_shape(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle
) -> None:
    gw = _gateway(start_gateway, mock_upstream, {"requests_per_minute": 2, "tokens_per_minute": 50_000})
    client = _openai(gw)
    raw = client.chat.completions.with_raw_response.create(
        model="mock-small", messages=[{"role": "user", "content": "hi"}], max_tokens=50
    )
    assert all(name in raw.headers for name in RATE_HEADERS)
    assert raw.headers.get_list("x-ratelimit-limit-requests") == ["2"]  # the provider's 10000 is not there
    assert raw.headers["x-ratelimit-remaining-requests"] == "1"
    assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
    with client.chat.completions.with_streaming_response.create(
        model="mock-small", messages=[{"role": "user", "content": "hi"}], max_tokens=50, stream=True
    ) as streamed:
        assert streamed.headers["x-ratelimit-remaining-requests"] == "0"
        assert streamed.headers["x-ratelimit-limit-tokens"] == "50000"
        assert "".join(streamed.iter_lines())
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="mock-small", messages=[{"role": "user", "content": "hi"}])
    error = caught.value
    assert error.status_code == 429 and error.code == "rate_limit_exceeded"
    assert error.type == "rate_limit_error" and "requests per minute" in error.message
    assert 1 <= int(error.response.headers["retry-after"]) <= 30
    assert all(name in error.response.headers for name in RATE_HEADERS)
    text = gw.metrics()
    assert metric_value(text, "distillguard_quota_decisions_total", tier="free", decision="rejected") >= 1


def test_anthropic_sdk_sees_a_429_in_anthropic_shape(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle
) -> None:
    gw = _gateway(start_gateway, mock_upstream, {"requests_per_minute": 1})
    client = anthropic.Anthropic(base_url=gw.url, api_key=gw.key("free"), max_retries=0)
    with client.messages.stream(
        model="claude-mock", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        headers = stream.response.headers
        assert headers["anthropic-ratelimit-requests-limit"] == "1"  # the account's, not the provider's 4000
        assert headers["anthropic-ratelimit-requests-remaining"] == "0"
        full_at = datetime.strptime(headers["anthropic-ratelimit-requests-reset"], "%Y-%m-%dT%H:%M:%S%z")
        assert 0 < full_at.timestamp() - time.time() <= 61  # one request per minute: full again within 60 s
        assert "anthropic-organization-id" not in headers
        assert not any(name.startswith("x-ratelimit-") for name in headers)
        stream.get_final_message()
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(
            model="claude-mock", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
    error = caught.value
    assert error.status_code == 429
    assert error.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert int(error.response.headers["retry-after"]) >= 1
    assert error.response.headers["anthropic-ratelimit-requests-limit"] == "1"


def test_upstream_errors_carry_the_headers_and_cost_no_tokens(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle
) -> None:
    gw = _gateway(start_gateway, mock_upstream, {"requests_per_minute": 100, "tokens_per_minute": 50_000})
    before = _consumed(gw)
    client = _openai(gw)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(
            model="mock-small",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-mock-fault": "status:500"},
        )
    assert caught.value.response.headers["x-ratelimit-remaining-requests"] == "99"
    assert _consumed(gw) == before


def test_normal_end_reconciles_to_the_reported_usage(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle
) -> None:
    gw = _gateway(start_gateway, mock_upstream, {"tokens_per_minute": 100_000, "max_concurrent": 4})
    client = _openai(gw)
    before = _consumed(gw)
    chunks = list(
        client.chat.completions.create(
            model="mock-small",
            messages=[{"role": "user", "content": "Tell me about caches."}],
            max_tokens=2000,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = chunks[-1].usage
    assert usage is not None
    _wait(lambda: _consumed(gw) - before == usage.total_tokens)
    reply = client.chat.completions.create(
        model="mock-small", messages=[{"role": "user", "content": "Tell me about caches."}], max_tokens=2000
    )
    assert reply.usage is not None
    _wait(lambda: _consumed(gw) - before == usage.total_tokens + reply.usage.total_tokens)  # type: ignore[union-attr]


def test_client_disconnect_charges_the_reservation_and_frees_the_slot(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle
) -> None:
    gw = _gateway(start_gateway, mock_upstream, {"tokens_per_minute": 100_000, "max_concurrent": 1})
    before = _consumed(gw)
    body = {
        "model": "mock-small",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 500,
        "stream": True,
    }
    headers = {"authorization": f"Bearer {gw.key('free')}", "x-mock-delay-ms": "50"}
    with httpx.Client(timeout=10) as http:
        with http.stream("POST", f"{gw.url}/v1/chat/completions", json=body, headers=headers) as response:
            assert response.status_code == 200
            next(response.iter_lines())
        # Closed after the first event: the slot must come back and the reservation stay charged.
        reserved = 500 + 2 + 4  # max_tokens + ceil(6 bytes ("hi", "user") / 4 * 1.25) + 4 per message
        _wait(lambda: _consumed(gw) - before == reserved)
        ok = http.post(f"{gw.url}/v1/chat/completions", json={**body, "stream": False}, headers=headers)
        assert ok.status_code == 200, ok.text


def test_upstream_failure_midstream_charges_the_reservation_and_frees_the_slot(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle
) -> None:
    gw = _gateway(start_gateway, mock_upstream, {"tokens_per_minute": 100_000, "max_concurrent": 1})
    client = _openai(gw)
    before = _consumed(gw)
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(
            model="mock-small",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=300,
            stream=True,
            extra_headers={"x-mock-fault": "drop-midstream"},
        ):
            pass
    _wait(lambda: _consumed(gw) - before == 300 + 2 + 4)
    assert client.chat.completions.create(
        model="mock-small", messages=[{"role": "user", "content": "x"}]
    ).choices


def test_serve_refuses_several_workers_on_the_memory_backend(
    tmp_path: Any, mock_upstream: MockHandle
) -> None:
    config = base_config(mock_upstream.url)
    config["tiers"]["free"]["policies"] = [{"name": "quota", "config": {"requests_per_minute": 10}}]
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "gateway.cli", "serve", "--config", str(path), "--port", "0"]
    done = subprocess.run([*command, "--workers", "2"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "state.backend" in done.stderr and "['quota']" in done.stderr and "redis" in done.stderr


def _wait(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)

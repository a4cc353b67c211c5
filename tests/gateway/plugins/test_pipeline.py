"""The policy pipeline through a running gateway: fail closed, shadow mode, rejections, after_response."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from tests.sample_policies import CountingPolicy
from tests.support import GatewayHandle, MockHandle, base_config, metric_value, wait_for

FAIL = "tests.sample_policies:FailingPolicy"
UPPER = "tests.sample_policies:UppercasePolicy"
REJECT = "tests.sample_policies:RejectPolicy"
COUNT = "tests.sample_policies:CountingPolicy"
CHAT = {"model": "mock-small", "messages": [{"role": "user", "content": "hi"}]}


def gateway_with(
    start: Callable[..., GatewayHandle], mock: MockHandle, *policies: dict[str, Any]
) -> GatewayHandle:
    cfg = base_config(mock.url)
    cfg["tiers"]["free"]["policies"] = list(policies)
    return start(cfg)


def client(gw: GatewayHandle, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{gw.url}/v1", api_key=gw.key(), max_retries=0, timeout=10, default_headers=headers
    )


@pytest.mark.parametrize("phase", ["request", "response"])
def test_policy_failure_fails_closed(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle, phase: str
) -> None:
    gw = gateway_with(start_gateway, mock_upstream, {"name": FAIL, "config": {"phase": phase}})
    # The metrics registry is the test process's: count this request's failure, not earlier tests'.
    labels = {"policy": FAIL, "phase": phase, "mode": "enforce"}
    before = metric_value(gw.metrics(), "distillguard_policy_failures_total", **labels)
    r = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json=CHAT,
        headers={"authorization": f"Bearer {gw.key()}"},
        timeout=30,  # a loaded machine can exceed httpx's 5 s default
    )
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "policy_failure"
    assert "mock" not in r.text.lower() and "boom" not in r.text
    assert metric_value(gw.metrics(), "distillguard_policy_failures_total", **labels) == before + 1


def test_stream_failure_before_any_output_is_an_http_error(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle
) -> None:
    gw = gateway_with(start_gateway, mock_upstream, {"name": FAIL, "config": {"phase": "stream"}})
    with pytest.raises(openai.InternalServerError, match="policy"):
        list(client(gw).chat.completions.create(**CHAT, stream=True))


def test_stream_failure_mid_stream_ends_with_error_and_withholds_the_rest(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle
) -> None:
    gw = gateway_with(
        start_gateway, mock_upstream, {"name": FAIL, "config": {"phase": "stream", "after_events": 5}}
    )
    seen = []
    with pytest.raises(openai.APIError, match=r"policy 'tests\.sample_policies:FailingPolicy' failed"):
        headers = {"x-mock-reasoning": "none", "x-mock-delay-ms": "20"}
        for chunk in client(gw, **headers).chat.completions.create(**CHAT, stream=True):
            seen.append(chunk)
    assert len(seen) == 5


def test_stream_end_failure(start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle) -> None:
    gw = gateway_with(start_gateway, mock_upstream, {"name": FAIL, "config": {"phase": "stream_end"}})
    with pytest.raises(openai.APIError):
        list(client(gw).chat.completions.create(**CHAT, stream=True))


def test_after_response_failure_does_not_affect_the_client(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle
) -> None:
    gw = gateway_with(start_gateway, mock_upstream, {"name": FAIL, "config": {"phase": "after_response"}})
    assert client(gw).chat.completions.create(**CHAT).choices[0].message.content
    wait_for(
        lambda: metric_value(gw.metrics(), "distillguard_policy_failures_total", phase="after_response") == 1
    )


def test_enforce_modifies_and_shadow_only_records(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle
) -> None:
    enforce = gateway_with(start_gateway, mock_upstream, {"name": UPPER})
    text = client(enforce).chat.completions.create(**CHAT).choices[0].message.content or ""
    assert text == text.upper()
    assert mock_upstream.requests()[-1]["body"]["metadata_marker"] == "UPPER"
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in client(enforce).chat.completions.create(**CHAT, stream=True)
        if c.choices
    )
    assert streamed == text

    shadow = gateway_with(start_gateway, mock_upstream, {"name": UPPER, "mode": "shadow"})
    raw = httpx.post(
        f"{shadow.url}/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {shadow.key()}"}
    )
    assert (
        raw.json()["choices"][0]["message"]["content"]
        != raw.json()["choices"][0]["message"]["content"].upper()
    )
    assert "x-test-marker" not in raw.headers
    assert "metadata_marker" not in mock_upstream.requests()[-1]["body"]
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in client(shadow).chat.completions.create(**CHAT, stream=True)
        if c.choices
    )
    assert streamed != streamed.upper()
    assert (
        metric_value(shadow.metrics(), "distillguard_policy_actions_total", action="uppercase", mode="shadow")
        > 1
    )


def test_shadow_failures_are_counted_not_fatal(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle
) -> None:
    gw = gateway_with(
        start_gateway,
        mock_upstream,
        {"name": FAIL, "mode": "shadow", "config": {"phase": "request"}},
        {"name": REJECT, "mode": "shadow"},
    )
    assert client(gw).chat.completions.create(**CHAT, logit_bias={"1": 5}).choices
    metrics = gw.metrics()
    assert metric_value(metrics, "distillguard_policy_failures_total", phase="request", mode="shadow") >= 1
    assert (
        metric_value(
            metrics, "distillguard_policy_actions_total", action="would_reject:invalid_request", mode="shadow"
        )
        >= 1
    )


def test_rejection_is_a_400_naming_the_parameter(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle
) -> None:
    gw = gateway_with(start_gateway, mock_upstream, {"name": REJECT})
    with pytest.raises(openai.BadRequestError) as info:
        client(gw).chat.completions.create(**CHAT, logit_bias={"1": 5})
    assert info.value.body["param"] == "logit_bias"  # type: ignore[index]
    assert "tier 'free'" in info.value.body["message"]  # type: ignore[index]


def test_client_disconnect_cancels_upstream_and_runs_after_response(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle
) -> None:
    CountingPolicy.calls.clear()
    gw = gateway_with(start_gateway, mock_upstream, {"name": COUNT})
    before = mock_upstream.stats()["cancelled"]
    with httpx.stream(
        "POST",
        f"{gw.url}/v1/chat/completions",
        json={**CHAT, "stream": True},
        headers={"authorization": f"Bearer {gw.key()}", "x-mock-delay-ms": "50"},
    ) as response:
        for _ in response.iter_bytes():
            break  # read the first bytes, then hang up
    wait_for(lambda: mock_upstream.stats()["cancelled"] == before + 1, timeout=5)
    wait_for(lambda: CountingPolicy.calls.get("aborted") == 1, timeout=5)
    wait_for(lambda: metric_value(gw.metrics(), "distillguard_in_flight_requests") == 0, timeout=5)


def test_client_disconnect_while_waiting_non_streaming(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle
) -> None:
    CountingPolicy.calls.clear()
    gw = gateway_with(start_gateway, mock_upstream, {"name": COUNT})
    before = mock_upstream.stats()["cancelled"]
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{gw.url}/v1/chat/completions",
            json=CHAT,
            timeout=0.3,
            headers={"authorization": f"Bearer {gw.key()}", "x-mock-first-byte-ms": "3000"},
        )
    started = time.monotonic()
    wait_for(lambda: mock_upstream.stats()["cancelled"] == before + 1, timeout=5)
    assert time.monotonic() - started < 2.5, "the upstream request was cancelled, not waited out"
    wait_for(lambda: CountingPolicy.calls.get("aborted") == 1, timeout=5)


def test_a_policy_wiping_scratch_does_not_skip_the_others_after_response(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle
) -> None:
    # The pipeline's record of which policies entered the request phase (whose after_response
    # must run: quota slots, detector observations) is the engine's, not in the policies' scratch.
    CountingPolicy.calls.clear()
    gw = gateway_with(
        start_gateway, mock_upstream, {"name": COUNT}, {"name": "tests.sample_policies:ScratchWiperPolicy"}
    )
    assert client(gw).chat.completions.create(**CHAT).choices[0].message.content
    wait_for(lambda: CountingPolicy.calls.get("after_200") == 1, timeout=5)
    assert CountingPolicy.calls == {"request": 1, "after_200": 1}

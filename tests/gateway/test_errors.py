"""Bad input and upstream failures: always a clear error in the API's own shape, never a hang."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.support import GatewayHandle, MockHandle, base_config, metric_value

CHAT = {"model": "mock-small", "messages": [{"role": "user", "content": "hi"}]}
MSG = {"model": "claude-mock", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


def auth(gw: GatewayHandle) -> dict[str, str]:
    return {"authorization": f"Bearer {gw.key()}"}


def test_malformed_json(gateway: GatewayHandle) -> None:
    r = httpx.post(f"{gateway.url}/v1/chat/completions", content=b"{not json", headers=auth(gateway))
    assert r.status_code == 400
    assert (
        r.json()["error"]["type"] == "invalid_request_error" and r.json()["error"]["code"] == "invalid_json"
    )
    r = httpx.post(f"{gateway.url}/v1/messages", content=b"[1, 2]", headers=auth(gateway))
    assert r.status_code == 400 and r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_oversized_body(start_gateway: Callable[..., GatewayHandle]) -> None:
    gw = start_gateway(limits={"max_body_bytes": 2048})
    big = {"model": "mock-small", "messages": [{"role": "user", "content": "x" * 5000}]}
    r = httpx.post(f"{gw.url}/v1/chat/completions", json=big, headers=auth(gw))
    assert r.status_code == 413 and r.json()["error"]["type"] == "invalid_request_error"

    def chunks() -> Any:  # no content-length: the limit is enforced while reading
        yield b'{"model": "m", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"y" * 512
        yield b'"}]}'

    r = httpx.post(f"{gw.url}/v1/messages", content=chunks(), headers=auth(gw))
    assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large"


def test_unknown_path_and_method(gateway: GatewayHandle) -> None:
    r = httpx.post(f"{gateway.url}/v1/fine_tuning/jobs", json={}, headers=auth(gateway))
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    r = httpx.get(f"{gateway.url}/v1/chat/completions", headers=auth(gateway))
    assert r.status_code == 405


def test_paths_are_normalised_before_routing(gateway: GatewayHandle, mock_upstream: MockHandle) -> None:
    r = httpx.post(f"{gateway.url}/v1//chat/completions/", json=CHAT, headers=auth(gateway))
    assert r.status_code == 200
    assert mock_upstream.requests()[-1]["path"] == "/v1/chat/completions"


def test_unknown_model_with_model_routing(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle
) -> None:
    cfg = base_config(mock_upstream.url)
    cfg["upstreams"][0]["models"] = ["mock-*"]
    gw = start_gateway(cfg)
    r = httpx.post(f"{gw.url}/v1/chat/completions", json={**CHAT, "model": "gpt-9"}, headers=auth(gw))
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize(
    ("fault", "status", "kind"),
    [
        ("status:400", 400, "mock_error"),  # about the client's request: forwarded as it is
        ("status:500", 500, "mock_error"),
        ("html:502", 502, "upstream_error"),
        ("garbage", 502, "upstream_error"),
    ],
)
def test_upstream_failures_non_streaming(gateway: GatewayHandle, fault: str, status: int, kind: str) -> None:
    r = httpx.post(
        f"{gateway.url}/v1/chat/completions", json=CHAT, headers={**auth(gateway), "x-mock-fault": fault}
    )
    assert r.status_code == status
    assert r.json()["error"]["type"] == kind
    assert "Traceback" not in r.text


def test_upstream_unreachable(start_gateway: Callable[..., GatewayHandle]) -> None:
    gw = start_gateway(base_config("http://127.0.0.1:9"))
    r = httpx.post(f"{gw.url}/v1/chat/completions", json=CHAT, headers=auth(gw))
    assert r.status_code == 502 and "cannot be reached" in r.json()["error"]["message"]
    r = httpx.post(f"{gw.url}/v1/messages", json=MSG, headers=auth(gw))
    assert r.status_code == 502 and r.json()["error"]["type"] == "api_error"
    assert metric_value(gw.metrics(), "distillguard_upstream_errors_total", kind="connect") >= 2


def _slow_config(mock: MockHandle) -> dict[str, Any]:
    cfg = base_config(mock.url)
    for upstream in cfg["upstreams"]:
        upstream["timeouts"] = {"connect": 1, "first_byte": 0.5, "idle": 0.5, "total": 5}
    return cfg


def test_first_byte_timeout(start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle) -> None:
    gw = start_gateway(_slow_config(mock_upstream))
    r = httpx.post(
        f"{gw.url}/v1/chat/completions", json=CHAT, headers={**auth(gw), "x-mock-fault": "hang"}, timeout=10
    )
    assert r.status_code == 504 and r.json()["error"]["type"] == "timeout_error"
    r = httpx.post(
        f"{gw.url}/v1/messages", json=MSG, headers={**auth(gw), "x-mock-fault": "hang"}, timeout=10
    )
    assert r.status_code == 504 and r.json()["error"]["type"] == "timeout_error"


def test_idle_timeout_mid_stream_ends_with_error_event(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle
) -> None:
    gw = start_gateway(_slow_config(mock_upstream))
    client = openai.OpenAI(
        base_url=f"{gw.url}/v1",
        api_key=gw.key(),
        max_retries=0,
        timeout=10,
        default_headers={"x-mock-fault": "hang-midstream"},
    )
    received = []
    with pytest.raises(openai.APIError, match="did not answer in time"):
        for chunk in client.chat.completions.create(**CHAT, stream=True):
            received.append(chunk)
    assert received, "the first half of the stream was forwarded before the failure"


@pytest.mark.parametrize("fault", ["drop-midstream", "garbage-midstream"])
def test_mid_stream_failure_openai(gateway: GatewayHandle, fault: str) -> None:
    client = openai.OpenAI(
        base_url=f"{gateway.url}/v1",
        api_key=gateway.key(),
        max_retries=0,
        timeout=10,
        default_headers={"x-mock-fault": fault},
    )
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(**CHAT, stream=True):
            pass


@pytest.mark.parametrize("fault", ["drop-midstream", "garbage-midstream"])
def test_mid_stream_failure_anthropic(gateway: GatewayHandle, fault: str) -> None:
    client = anthropic.Anthropic(
        base_url=gateway.url,
        api_key=gateway.key(),
        max_retries=0,
        timeout=10,
        default_headers={"x-mock-fault": fault},
    )
    with pytest.raises(anthropic.APIStatusError) as info, client.messages.stream(**MSG) as stream:
        for _ in stream:
            pass
    assert info.value.body["error"]["type"] == "api_error"


def test_mid_stream_failure_responses(gateway: GatewayHandle) -> None:
    client = openai.OpenAI(
        base_url=f"{gateway.url}/v1",
        api_key=gateway.key(),
        max_retries=0,
        timeout=10,
        default_headers={"x-mock-fault": "drop-midstream"},
    )
    with pytest.raises(openai.APIError):
        for _ in client.responses.create(model="mock-small", input="hi", stream=True):
            pass


def test_stream_request_failing_before_output_gets_http_error(gateway: GatewayHandle) -> None:
    r = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={**CHAT, "stream": True},
        headers={**auth(gateway), "x-mock-fault": "status:503"},
    )
    assert r.status_code == 503 and r.json()["error"]["message"] == "mock upstream error 503"


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_upstream_errors_about_the_gateways_own_account_are_not_passed_on(
    gateway: GatewayHandle, path: str
) -> None:
    body = CHAT if path == "/v1/chat/completions" else MSG
    refused = httpx.post(
        f"{gateway.url}{path}", json=body, headers={**auth(gateway), "x-mock-fault": "status:401"}
    )
    assert refused.status_code == 502  # the gateway's credential, not the client's: no 401 to the client
    assert refused.json()["error"]["message"] == "The model server refused the gateway's credentials."
    limited = httpx.post(
        f"{gateway.url}{path}", json=body, headers={**auth(gateway), "x-mock-fault": "status:429"}
    )
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"  # the upstream's own
    assert "over capacity" in limited.json()["error"]["message"]
    for reply in (refused, limited):
        assert "sk-mock" not in reply.text and "org-mockprovider" not in reply.text
        if path == "/v1/messages":
            assert reply.json()["type"] == "error"
    text = gateway.metrics()
    assert metric_value(text, "distillguard_upstream_errors_total", kind="http_401") >= 1
    assert metric_value(text, "distillguard_upstream_errors_total", kind="http_429") >= 1

"""Client headers reach the upstream by allow-list only; the mock records what it received."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway.config.loader import load_config_text
from gateway.errors import ConfigError
from tests.support import GatewayHandle, MockHandle, base_config

CHAT = {"model": "mock-small", "messages": [{"role": "user", "content": "hi"}]}
MSG = {"model": "claude-mock", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
SMUGGLED = {
    "openai-organization": "org-victim",
    "openai-project": "proj-victim",
    "forwarded": "for=10.0.0.1;by=internal",
    "x-internal-route": "admin",
    "user-agent": "distiller/1.0",
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "x-stainless-os": "Linux",
}


def last_headers(mock: MockHandle) -> dict[str, str]:
    return mock.requests()[-1]["headers"]  # type: ignore[no-any-return]


def betas_config(mock: MockHandle) -> dict[str, Any]:
    cfg = base_config(mock.url)
    cfg["upstreams"][1]["allowed_betas"] = ["tools-2024-04-04", "prompt-caching-2024-07-31"]
    return cfg


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("POST", "/v1/chat/completions", CHAT),
        ("POST", "/v1/messages", MSG),
        ("POST", "/v1/embeddings", {"model": "mock-small", "input": "hi"}),  # a passthrough route
    ],
)
def test_undeclared_client_headers_never_reach_the_upstream(
    gateway: GatewayHandle, mock_upstream: MockHandle, method: str, path: str, body: Any
) -> None:
    headers = {"authorization": f"Bearer {gateway.key()}", "accept": "application/json", **SMUGGLED}
    mock_upstream.reset()
    r = httpx.request(method, f"{gateway.url}{path}", json=body, headers=headers)
    assert r.status_code < 500, r.text
    assert [request["path"] for request in mock_upstream.requests()] == [path]
    received = last_headers(mock_upstream)
    assert received["accept"] == "application/json"
    assert received["x-request-id"] == r.headers["x-request-id"]
    for name in SMUGGLED:
        assert name not in received, name
    assert "authorization" not in received  # the client's credential is not the upstream's
    if path == "/v1/messages":
        assert received["anthropic-version"] == "2023-06-01"


def test_operator_declared_headers_are_forwarded(gateway: GatewayHandle, mock_upstream: MockHandle) -> None:
    r = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json=CHAT,
        headers={"authorization": f"Bearer {gateway.key()}", "x-mock-reasoning": "none", "x-mockery": "1"},
    )
    assert r.status_code == 200
    received = last_headers(mock_upstream)
    assert received["x-mock-reasoning"] == "none"  # declared: forward_headers ["x-mock-*"]
    assert "x-mockery" not in received


def test_allowed_betas_pass_and_others_are_refused(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle
) -> None:
    gw = start_gateway(betas_config(mock_upstream))
    auth = {"x-api-key": gw.key(), "anthropic-version": "2023-06-01"}
    r = httpx.post(
        f"{gw.url}/v1/messages",
        json=MSG,
        headers={**auth, "anthropic-beta": "tools-2024-04-04, prompt-caching-2024-07-31"},
    )
    assert r.status_code == 200, r.text
    assert last_headers(mock_upstream)["anthropic-beta"] == "tools-2024-04-04,prompt-caching-2024-07-31"

    mock_upstream.reset()
    r = httpx.post(
        f"{gw.url}/v1/messages",
        json=MSG,
        headers={**auth, "anthropic-beta": "tools-2024-04-04,interleaved-thinking-2025-05-14"},
    )
    assert r.status_code == 400
    error = r.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert "interleaved-thinking-2025-05-14" in error["error"]["message"]
    assert mock_upstream.requests() == []  # refused before anything went upstream

    # An OpenAI route never forwards Anthropic betas, allowed or not.
    r = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json=CHAT,
        headers={"authorization": f"Bearer {gw.key()}", "anthropic-beta": "tools-2024-04-04"},
    )
    assert r.status_code == 200
    assert "anthropic-beta" not in last_headers(mock_upstream)


def test_no_betas_are_allowed_by_default(gateway: GatewayHandle, mock_upstream: MockHandle) -> None:
    mock_upstream.reset()
    r = httpx.post(
        f"{gateway.url}/v1/messages/count_tokens",
        json={"model": "claude-mock", "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-api-key": gateway.key(), "anthropic-beta": "token-counting-2024-11-01"},
    )
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert mock_upstream.requests() == []


@pytest.mark.parametrize(
    "key, value, fault",
    [
        ("forward_headers", ["x-*"], "would forward 'x-api-key'"),
        ("forward_headers", ["authorization"], "would forward 'authorization'"),
        ("forward_headers", ["anthropic-beta"], "would forward 'anthropic-beta'"),
        ("forward_headers", ["X-Team"], "lower-case header name"),
        ("forward_headers", ["*"], "lower-case header name"),
        ("allowed_betas", ["a beta"], "not a beta name"),
    ],
)
def test_forwarding_config_is_checked(key: str, value: list[str], fault: str) -> None:
    cfg = base_config("http://127.0.0.1:9")
    cfg["upstreams"][1][key] = value
    with pytest.raises(ConfigError) as info:
        load_config_text(_yaml(cfg))
    assert info.value.path.startswith(f"upstreams[1].{key}")
    assert fault in str(info.value)


def test_betas_are_for_anthropic_upstreams_only() -> None:
    cfg = base_config("http://127.0.0.1:9")
    cfg["upstreams"][0]["allowed_betas"] = ["tools-2024-04-04"]
    with pytest.raises(ConfigError, match="anthropic upstreams only") as info:
        load_config_text(_yaml(cfg))
    assert info.value.path.startswith("upstreams[0]")


def _yaml(cfg: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(cfg)

"""Fail closed on what a policy cannot see: an operation outside a policy's response_operations is refused."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.support import TEST_KEYS, GatewayHandle, MockHandle

CHAT = {"model": "mock-small", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
MESSAGES = {"model": "claude-mock", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def _gateway(start: Callable[..., GatewayHandle], mode: str) -> GatewayHandle:
    policy = {"name": "tests.sample_policies:ChatOnlyPolicy", "mode": mode}
    return start(tiers={tier: {"policies": [policy]} for tier in TEST_KEYS})


def _auth() -> dict[str, str]:
    return {"authorization": f"Bearer {TEST_KEYS['free']}", "anthropic-version": "2023-06-01"}


def test_an_operation_a_policy_cannot_read_is_refused_naming_both(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle
) -> None:
    gw = _gateway(start_gateway, "enforce")
    mock_upstream.reset()
    refused = httpx.post(f"{gw.url}/v1/messages", json=MESSAGES, headers=_auth())
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["type"] == "permission_error"
    assert "tests.sample_policies:ChatOnlyPolicy" in error["message"] and "messages" in error["message"]
    assert mock_upstream.requests() == []
    assert httpx.post(f"{gw.url}/v1/chat/completions", json=CHAT, headers=_auth()).status_code == 200
    assert httpx.get(f"{gw.url}/v1/models", headers=_auth()).status_code == 200  # declared passthrough


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/completions", {"model": "mock-small", "prompt": "hi", "max_tokens": 8}),
        ("/v1/responses", {"model": "mock-small", "input": "hi", "max_output_tokens": 8}),
        ("/v1/messages", MESSAGES),
    ],
)
def test_shadow_mode_policies_do_not_refuse(
    start_gateway: Callable[..., GatewayHandle], path: str, body: dict[str, object]
) -> None:
    gw = _gateway(start_gateway, "shadow")
    assert httpx.post(f"{gw.url}{path}", json=body, headers=_auth()).status_code == 200


def test_every_builtin_policy_declares_the_operations_it_reads() -> None:
    from gateway.plugins.registry import resolve_policy
    from gateway.protocols import OPERATIONS

    operations = {op.name for op in OPERATIONS.values()}
    for name in ("reasoning", "logprobs", "watermark"):
        assert resolve_policy(name).response_operations == operations, name
    for name in ("quota", "detector"):  # request view only
        assert resolve_policy(name).response_operations is None, name

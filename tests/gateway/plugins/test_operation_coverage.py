"""Fail closed on what a policy cannot see: an operation lacking a part kind a policy needs is refused."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.support import TEST_KEYS, GatewayHandle, MockHandle

CHAT = {"model": "mock-small", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
MESSAGES = {"model": "claude-mock", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
POLICY = "tests.sample_policies:MediaPolicy"


def _gateway(start: Callable[..., GatewayHandle], mode: str) -> GatewayHandle:
    policy = {"name": POLICY, "mode": mode}
    return start(tiers={tier: {"policies": [policy]} for tier in TEST_KEYS})


def _auth() -> dict[str, str]:
    return {"authorization": f"Bearer {TEST_KEYS['free']}", "anthropic-version": "2023-06-01"}


@pytest.mark.parametrize(("path", "body"), [("/v1/chat/completions", CHAT), ("/v1/messages", MESSAGES)])
def test_an_operation_lacking_a_needed_part_kind_is_refused_naming_policy_operation_and_kind(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle, path: str, body: dict[str, object]
) -> None:
    gw = _gateway(start_gateway, "enforce")
    mock_upstream.reset()
    refused = httpx.post(f"{gw.url}{path}", json={**body, "stream": True}, headers=_auth())
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["type"] == "permission_error"
    operation = "messages" if "messages" in path else "chat.completions"
    assert POLICY in error["message"] and operation in error["message"] and "media" in error["message"]
    assert mock_upstream.requests() == []  # refused before anything reached the upstream
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


class _NoTreatment:
    """Only asked for by identity: whether the adapter builds a rewriter at all."""

    mode = "drop"
    keep_provider_encrypted = True
    seal_delivery = "field"
    parses_inline = False


def test_every_builtin_policy_declares_the_part_kinds_it_reads_and_every_operation_provides_them() -> None:
    from gateway.plugins.registry import resolve_policy
    from gateway.protocols import OPERATIONS

    needs = {name: resolve_policy(name).needs_parts for name in ("reasoning", "logprobs", "watermark")}
    assert needs == {
        "reasoning": {"text", "reasoning", "logprobs"},
        "logprobs": {"logprobs"},
        "watermark": {"text", "logprobs"},
    }
    for name in ("quota", "detector"):  # request view only
        assert resolve_policy(name).needs_parts == frozenset(), name
    for op in OPERATIONS.values():
        provided = op.adapter.response_parts(op.name)
        assert all(kinds <= provided for kinds in needs.values()), op.name
        # An adapter that claims reasoning parts rewrites them too (the reasoning policy asks it to).
        rewrites = op.adapter.reasoning(op.name, _NoTreatment()) is not None
        assert ("reasoning" in provided) == rewrites, op.name


def test_an_operation_claims_only_the_part_kinds_it_reads_in_streams_too() -> None:
    """Chat reads a whole message's citation annotations but not a streamed delta's: a policy that
    declares it needs annotations is refused there (fail closed), not run on half of them."""
    from gateway.protocols import OPERATIONS

    provided = {op.name: op.adapter.response_parts(op.name) for op in OPERATIONS.values()}
    assert "annotation" not in provided["chat.completions"]
    assert "annotation" in provided["responses"]

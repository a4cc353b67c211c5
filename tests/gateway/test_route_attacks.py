"""Attacks on the route table over real sockets: path spellings, methods, passthrough routes, queries.

The oracle for every spelling: the gateway either refuses it (400/404/405, and the upstream receives
nothing), or polices it exactly as the canonical route (the upstream receives the canonical path, and
the policies ran: reasoning is gone, a blocked account is refused).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.raw_http import RawResponse, raw_request
from tests.support import TEST_KEYS, GatewayHandle, MockHandle, base_config

REASONING_DROP = {"policies": [{"name": "reasoning", "config": {"mode": "drop"}}]}
CHAT = {
    "model": "mock-reasoner",
    "messages": [{"role": "user", "content": "Explain caching."}],
    "max_tokens": 20,
}
BODIES: dict[str, dict[str, Any] | None] = {
    "/v1/chat/completions": CHAT,
    "/v1/completions": {"model": "mock-reasoner", "prompt": "Explain caching.", "max_tokens": 20},
    "/v1/responses": {"model": "mock-reasoner", "input": "Explain caching.", "max_output_tokens": 20},
    "/v1/messages": {
        "model": "claude-mock",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "Explain caching."}],
    },
    "/v1/models": None,
    "/v1/models/mock-small": None,
    "/v1/embeddings": {"model": "mock-small", "input": "hello"},
    "/v1/messages/count_tokens": {"model": "claude-mock", "messages": [{"role": "user", "content": "hi"}]},
}
METHODS = {path: ("GET" if body is None else "POST") for path, body in BODIES.items()}


@pytest.fixture(scope="module")
def routes_gateway(
    mock_upstream: MockHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayHandle]:
    config = base_config(
        mock_upstream.url,
        tiers={tier: REASONING_DROP for tier in TEST_KEYS},
        risk_levels={"critical": {"block": True}},
    )
    handle = GatewayHandle(config, Path(tmp_path_factory.mktemp("routes"))).start()
    handle.gateway.risk.pin("pro", "critical", reason="test: blocked account")
    yield handle
    handle.stop()


def _send(gw: GatewayHandle, method: str, target: bytes, tier: str = "free", body: Any = None) -> RawResponse:
    headers = {"Authorization": f"Bearer {TEST_KEYS[tier]}", "anthropic-version": "2023-06-01"}
    payload = b""
    if body is not None:
        headers["Content-Type"] = "application/json"
        payload = orjson.dumps(body)
    return raw_request(gw.port, method, target, headers=headers, body=payload)


_SEPARATORS = st.sampled_from(
    ["/"] * 6 + ["//", "///", "/./", "/x/../", "%2F", "%2f", "\\", "%5C", "/%2e/", "/%2E%2E/"]
)
_TAILS = st.sampled_from([""] * 6 + ["/", "//", "/.", "/..", "%2F", "/%2e%2e", "/%2e", "/x/.."])


@st.composite
def spellings(draw: st.DrawFn, canonical: str) -> bytes:
    """Another way to write ``canonical``: escapes, separators, dot segments, case."""
    out = ""
    for segment in canonical.split("/")[1:]:
        out += draw(_SEPARATORS)
        for char in segment:
            how = draw(st.sampled_from(["keep"] * 5 + ["upper-escape", "lower-escape", "swapcase"]))
            if how == "upper-escape":
                out += f"%{ord(char):02X}"
            elif how == "lower-escape":
                out += f"%{ord(char):02x}"
            elif how == "swapcase":
                out += char.swapcase()
            else:
                out += char
    return (out + draw(_TAILS)).encode()


def _expected_forward(target: bytes, method: str) -> str | None:
    """The path a correct gateway forwards for ``target`` (computed apart from it); None: it must refuse."""
    from gateway.errors import InvalidRequestError
    from gateway.routes import canonical_path

    try:
        path = canonical_path(target)
    except InvalidRequestError:
        return None
    if path in BODIES:
        return path if METHODS[path] == method else None
    parts = path.split("/")
    if method == "GET" and len(parts) == 4 and parts[:3] == ["", "v1", "models"]:
        return path  # /v1/models/{model}: another model's id is another resource, forwarded as such
    return None


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_spelling_is_refused_or_policed_as_the_canonical_route(
    routes_gateway: GatewayHandle, mock_upstream: MockHandle, data: st.DataObject
) -> None:
    canonical = data.draw(st.sampled_from(sorted(BODIES)))
    target = data.draw(spellings(canonical))
    mock_upstream.reset()
    response = _send(routes_gateway, METHODS[canonical], target, body=BODIES[canonical])
    received = [r["raw_path"] for r in mock_upstream.requests()]
    assert b"Traceback" not in response.body
    expected = _expected_forward(target, METHODS[canonical])
    if expected is None:
        assert response.status in (400, 404, 405), (target, response.status, response.body)
        assert received == [], (target, received)
        return
    assert received == [expected], (target, received)
    if expected == canonical:
        assert response.status == 200, (target, response.status)
    if canonical == "/v1/chat/completions":
        message = orjson.loads(response.body)["choices"][0]["message"]
        assert "reasoning_content" not in message and "reasoning" not in message


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_blocked_account_is_refused_on_every_route_and_spelling(
    routes_gateway: GatewayHandle, mock_upstream: MockHandle, data: st.DataObject
) -> None:
    canonical = data.draw(st.sampled_from(sorted(BODIES)))
    target = data.draw(st.one_of(st.just(canonical.encode()), spellings(canonical)))
    mock_upstream.reset()
    response = _send(routes_gateway, METHODS[canonical], target, tier="pro", body=BODIES[canonical])
    assert response.status in (400, 403, 404, 405), (target, response.status)
    assert mock_upstream.requests() == []


@pytest.mark.parametrize(
    "target",
    [
        b"/v1/models/..%2Fchat%2Fcompletions",
        b"/v1/models/../chat/completions",
        b"/v1/models/%2e%2e/chat/completions",
        b"/v1/models/x/../../chat/completions",
        b"/v1/models/%2E%2E%2Fchat%2Fcompletions",
        b"/v1/models/..%5Cchat%5Ccompletions",
    ],
)
def test_the_reported_traversals_never_reach_the_upstream(
    routes_gateway: GatewayHandle, mock_upstream: MockHandle, target: bytes
) -> None:
    mock_upstream.reset()
    for tier in ("free", "pro"):
        response = _send(routes_gateway, "POST", target, tier=tier, body=CHAT)
        assert response.status in (400, 404, 405), (target, tier, response.status)
        error = orjson.loads(response.body)["error"]
        assert set(error) == {"message", "type", "param", "code"}
    assert mock_upstream.requests() == []


def test_canonical_synonyms_are_served_and_policed(
    routes_gateway: GatewayHandle, mock_upstream: MockHandle
) -> None:
    for target in (b"//v1//chat/completions/", b"/%76%31/chat/completions", b"/v1/chat/completions//"):
        mock_upstream.reset()
        response = _send(routes_gateway, "POST", target, body=CHAT)
        assert response.status == 200, target
        assert "reasoning_content" not in orjson.loads(response.body)["choices"][0]["message"]
        assert [r["raw_path"] for r in mock_upstream.requests()] == ["/v1/chat/completions"]


@pytest.mark.parametrize("canonical", sorted(BODIES))
def test_every_undeclared_method_on_every_route_is_405(
    routes_gateway: GatewayHandle, mock_upstream: MockHandle, canonical: str
) -> None:
    mock_upstream.reset()
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
        if method == METHODS[canonical]:
            continue
        response = _send(routes_gateway, method, canonical.encode())
        assert response.status == 405, (method, canonical)
        assert response.headers["allow"] == METHODS[canonical]
        if method != "HEAD":
            assert "error" in orjson.loads(response.body)
    assert mock_upstream.requests() == []


def test_unknown_paths_are_404_in_the_api_shape(
    routes_gateway: GatewayHandle, mock_upstream: MockHandle
) -> None:
    mock_upstream.reset()
    for target, shape in (
        (b"/v1/files", "openai"),
        (b"/v1/messages/batches", "anthropic"),
        (b"/v1/_mock/requests", "openai"),
    ):
        response = _send(routes_gateway, "GET", target)
        assert response.status == 404
        body = orjson.loads(response.body)
        assert (body.get("type") == "error") == (shape == "anthropic"), body
    assert mock_upstream.requests() == []


def test_only_declared_query_parameters_reach_the_upstream(
    routes_gateway: GatewayHandle, mock_upstream: MockHandle
) -> None:
    mock_upstream.reset()
    refused = _send(routes_gateway, "POST", b"/v1/chat/completions?api-version=2024", body=CHAT)
    assert refused.status == 400 and orjson.loads(refused.body)["error"]["param"] == "api-version"
    assert mock_upstream.requests() == []
    accepted = _send(routes_gateway, "POST", b"/v1/messages?beta=true", body=BODIES["/v1/messages"])
    assert accepted.status == 200
    assert [(r["raw_path"], r["query"]) for r in mock_upstream.requests()] == [("/v1/messages", "beta=true")]


def test_passthrough_routes_forward_the_body_the_policies_saw(
    routes_gateway: GatewayHandle, mock_upstream: MockHandle
) -> None:
    mock_upstream.reset()
    spaced = b'{ "model" : "mock-small",\n "input": "hello" }'
    response = raw_request(
        routes_gateway.port,
        "POST",
        "/v1/embeddings",
        headers={"Authorization": f"Bearer {TEST_KEYS['free']}", "Content-Type": "application/json"},
        body=spaced,
    )
    assert response.status == 200 and len(orjson.loads(response.body)["data"]) == 1
    (received,) = mock_upstream.requests()
    assert received["body"] == {"model": "mock-small", "input": "hello"}
    bad = _send(routes_gateway, "GET", b"/v1/models", body={"smuggled": True})
    assert bad.status == 400
    not_json = raw_request(
        routes_gateway.port,
        "POST",
        "/v1/embeddings",
        headers={"Authorization": f"Bearer {TEST_KEYS['free']}"},
        body=b"input=hello",
    )
    assert not_json.status == 400
    assert len(mock_upstream.requests()) == 1

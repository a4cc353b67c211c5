"""Operator surfaces off the public port: /metrics and /admin only on the operator listener.

An API client must not read the metrics (the watermark canary counter tells which answer
carries a canary) nor reach the admin API; load balancers still probe the public port.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml

from gateway.config.loader import load_config_text
from gateway.errors import ConfigError
from tests.support import GatewayHandle, MockHandle, base_config, free_port, ops_url, spawn_gateway

TOKEN = "operator-test-token"
CHAT = {"model": "mock-small", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def admin_gateway(
    start_gateway: Callable[..., GatewayHandle], monkeypatch: pytest.MonkeyPatch
) -> GatewayHandle:
    monkeypatch.setenv("DG_TEST_OPERATOR_TOKEN", TOKEN)
    return start_gateway(admin={"token_env": "DG_TEST_OPERATOR_TOKEN"})


def test_metrics_and_admin_are_not_on_the_public_port(admin_gateway: GatewayHandle) -> None:
    gw = admin_gateway
    bearer = {"authorization": f"Bearer {TOKEN}"}
    for method, path in [
        ("GET", "/metrics"),
        ("GET", "/admin/levels"),
        ("GET", "/admin/accounts/free"),
        ("PUT", "/admin/accounts/free/level"),
        ("POST", "/admin/reload"),
        ("GET", "/admin/watermark/evidence/free"),  # a plugin's admin route
    ]:
        response = httpx.request(method, f"{gw.url}{path}", headers=bearer, json={"level": "critical"})
        assert response.status_code == 404, (method, path)
        error = response.json()["error"]
        assert error["type"] == "not_found_error" and "distillguard_" not in response.text
    assert gw.gateway.risk.pinned("free") is None, "nothing reached the admin API"


def test_operator_port_serves_metrics_admin_and_probes(admin_gateway: GatewayHandle) -> None:
    gw = admin_gateway
    assert httpx.post(
        f"{gw.url}/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {gw.key()}"}
    ).is_success
    metrics = httpx.get(f"{gw.ops_url}/metrics")
    assert metrics.status_code == 200 and "distillguard_requests_total" in metrics.text
    assert gw.admin("GET", "/levels").status_code == 401
    assert gw.admin("GET", "/levels", TOKEN).json()["none"] == 0
    for base in (gw.url, gw.ops_url):
        assert httpx.get(f"{base}/healthz").text == "ok"
        assert httpx.get(f"{base}/readyz").json()["ready"] is True
    # The operator port is not a second API port.
    api = httpx.post(
        f"{gw.ops_url}/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {gw.key()}"}
    )
    assert api.status_code == 404


def test_a_host_header_does_not_reach_the_operator_surfaces(admin_gateway: GatewayHandle) -> None:
    gw = admin_gateway
    spoofed = {"host": f"127.0.0.1:{gw.ops_port}", "x-forwarded-port": str(gw.ops_port)}
    assert httpx.get(f"{gw.url}/metrics", headers=spoofed).status_code == 404
    assert (
        httpx.get(
            f"{gw.url}/admin/levels", headers={**spoofed, "authorization": f"Bearer {TOKEN}"}
        ).status_code
        == 404
    )


def test_the_operator_listener_needs_its_own_port() -> None:
    config = base_config("http://127.0.0.1:9", listen={"host": "0.0.0.0", "port": 8080})
    config["operator"] = {"host": "127.0.0.1", "port": 8080}
    with pytest.raises(ConfigError) as caught:
        load_config_text(yaml.safe_dump(config))
    assert caught.value.path == "operator.port"
    default = load_config_text(yaml.safe_dump({k: v for k, v in config.items() if k != "operator"}))
    assert (default.gateway.operator.host, default.gateway.operator.port) == ("127.0.0.1", 9090)


def test_two_workers_serve_both_listeners(mock_upstream: MockHandle, tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(base_config(mock_upstream.url)))
    port = free_port()
    process = spawn_gateway(path, port, "--workers", "2")
    try:
        with httpx.Client() as client:  # a fresh connection each time reaches either worker
            for _ in range(8):
                assert (
                    client.get(
                        f"http://127.0.0.1:{port}/metrics", headers={"connection": "close"}
                    ).status_code
                    == 404
                )
                assert (
                    client.get(f"{ops_url(port)}/metrics", headers={"connection": "close"}).status_code == 200
                )
    finally:
        process.terminate()
        process.wait(timeout=30)

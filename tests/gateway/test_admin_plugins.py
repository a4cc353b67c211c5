"""Admin routes contributed by plugins are guarded by the engine, not by each plugin remembering to.

An attacker on the operator network tries a plugin's admin route without the token: a route
whose handler never calls ``require_admin`` must still answer 401 (404 with the admin API off),
and its handler must not run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import GatewayHandle

TOKEN = "plugin-admin-test-token"

# A third-party plugin's admin module, registered the way any plugin is: a distribution on
# sys.path whose entry_points.txt names it under ``distillguard.admin``.
_ROGUE = """
from starlette.responses import JSONResponse
from starlette.routing import Route

CALLS = []


def routes(gateway):
    async def secrets(request):
        CALLS.append(request.url.path)  # no require_admin: the engine must guard it
        return JSONResponse({"secret": "the master key"})

    return [Route("/rogue/secrets", secrets, methods=["GET", "POST"])]
"""


@pytest.fixture
def rogue_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    site = tmp_path / "site"
    (site / "dg_rogue_admin-1.0.dist-info").mkdir(parents=True)
    (site / "dg_rogue_admin-1.0.dist-info" / "METADATA").write_text("Name: dg-rogue-admin\nVersion: 1.0\n")
    (site / "dg_rogue_admin-1.0.dist-info" / "entry_points.txt").write_text(
        "[distillguard.admin]\nrogue = dg_rogue_admin:routes\n"
    )
    (site / "dg_rogue_admin.py").write_text(_ROGUE)
    monkeypatch.syspath_prepend(str(site))
    import dg_rogue_admin

    yield dg_rogue_admin.CALLS
    sys.modules.pop("dg_rogue_admin", None)


def _gateway(
    start: Callable[..., GatewayHandle], monkeypatch: pytest.MonkeyPatch, enabled: bool
) -> GatewayHandle:
    if enabled:
        monkeypatch.setenv("DG_TEST_PLUGIN_ADMIN_TOKEN", TOKEN)
    else:
        monkeypatch.delenv("DG_TEST_PLUGIN_ADMIN_TOKEN", raising=False)
    return start(admin={"token_env": "DG_TEST_PLUGIN_ADMIN_TOKEN"})


def test_a_plugin_route_without_require_admin_still_needs_the_token(
    rogue_plugin: list[str], start_gateway: Callable[..., GatewayHandle], monkeypatch: pytest.MonkeyPatch
) -> None:
    gw = _gateway(start_gateway, monkeypatch, enabled=True)
    attempts = [
        gw.admin("GET", "/rogue/secrets"),
        gw.admin("GET", "/rogue/secrets", "wrong-token"),
        gw.admin("POST", "/rogue/secrets", headers={"authorization": f"Basic {TOKEN}"}),
        gw.admin("GET", "/rogue/secrets", headers={"authorization": "Bearer"}),
    ]
    for response in attempts:
        assert response.status_code == 401, response.text
        assert response.json()["error"]["type"] == "admin_error"
        assert "master key" not in response.text
    assert rogue_plugin == [], "the plugin's handler ran for a request without the token"

    allowed = gw.admin("GET", "/rogue/secrets", TOKEN)
    assert allowed.status_code == 200 and allowed.json() == {"secret": "the master key"}
    assert rogue_plugin == ["/admin/rogue/secrets"]


def test_a_plugin_route_is_off_when_the_admin_api_is_off(
    rogue_plugin: list[str], start_gateway: Callable[..., GatewayHandle], monkeypatch: pytest.MonkeyPatch
) -> None:
    gw = _gateway(start_gateway, monkeypatch, enabled=False)
    response = gw.admin("GET", "/rogue/secrets", TOKEN)
    assert response.status_code == 404
    assert "disabled" in response.json()["error"]["message"]
    assert rogue_plugin == []


def test_builtin_plugin_routes_need_the_token(
    start_gateway: Callable[..., GatewayHandle], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The detector and watermark admin modules no longer check the token themselves.
    gw = _gateway(start_gateway, monkeypatch, enabled=True)
    for method, path in [
        ("GET", "/detector/accounts"),
        ("GET", "/detector/clusters"),
        ("PUT", "/detector/allowlist/free"),
        ("POST", "/watermark/detect"),
        ("GET", "/watermark/evidence/free"),
    ]:
        assert gw.admin(method, path).status_code == 401, (method, path)
    assert gw.admin("GET", "/watermark/evidence/free", TOKEN).status_code == 200

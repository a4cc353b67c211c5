"""Pages without a browser: the configuration page's reload record; block refused where nothing blocks."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest

from tests.console.scenario import TOKEN
from tests.support import GatewayHandle


def _signed_in(gw: GatewayHandle) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=gw.ops_url, timeout=10)
    client.post("/console/signin", data={"operator": "ana", "token": TOKEN})
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/accounts/free").text)
    assert csrf
    return client, csrf.group(1)


def test_the_configuration_page_shows_a_rejected_reload(console_gateway: GatewayHandle) -> None:
    gw = console_gateway
    client, _ = _signed_in(gw)
    page = client.get("/console/config").text
    assert "none since the start" in page
    gw.config_path.write_text("tiers: [this is not a config")
    gw.admin("POST", "/reload", token=TOKEN)
    page = client.get("/console/config").text
    match = re.search(r'id="last-reload">(.*?)</dd>', page, re.S)
    assert match and "rejected" in match.group(1) and "admin API" in match.group(1)


def test_block_is_refused_where_no_level_blocks(
    start_gateway: Callable[..., GatewayHandle], mock_upstream, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    from tests.console.scenario import ENV, console_config

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    config = console_config(mock_upstream.url, tmp_path)
    config.pop("risk_levels")
    gw = start_gateway(config)
    client, csrf = _signed_in(gw)
    assert "No level blocks this tier" in client.get("/console/accounts/free").text
    response = client.post(
        "/console/accounts/free/action", data={"action": "block", "reason": "r", "csrf": csrf}
    )
    assert response.status_code == 409 and "risk_levels" in response.text
    assert gw.gateway.risk.pinned("free") is None

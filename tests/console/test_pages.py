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


def test_a_canary_probe_from_the_leak_page_attributes_the_suspect(console_gateway: GatewayHandle) -> None:
    from tests.console.scenario import WATERMARK_KEY
    from tests.support import ThreadedServer
    from tests.suspect_model import SuspectModel

    suspect = ThreadedServer(SuspectModel("pro", WATERMARK_KEY, "default")).start()
    try:
        client, csrf = _signed_in(console_gateway)
        form = {"endpoint": f"{suspect.url}/v1", "model": "student", "accounts": "free, pro", "csrf": csrf}
        page = client.post("/console/leak/probe", data=form)
        assert page.status_code == 200, page.text
        verdict = re.search(r'id="probe-verdict">(.*?)</section>', page.text, re.S)
        assert verdict and re.search(r'class="attributed">pro<', verdict.group(1))
        assert 'class="attributed">free<' not in verdict.group(1)
        stolen = client.post("/console/leak/probe", data={**form, "api_key_env": "DG_TEST_CONSOLE_TOKEN"})
        assert stolen.status_code == 400 and "DISTILLGUARD_PROBE_" in stolen.text
    finally:
        suspect.stop()


def test_changes_since_the_analyst_last_looked_survive_a_new_session(console_gateway: GatewayHandle) -> None:
    first, _ = _signed_in(console_gateway)
    heading = re.compile(r"<h2>Changes since you last looked(.*?)</h2>", re.S)
    match = heading.search(first.get("/console/board").text)
    assert match and match.group(1).strip() == ""  # never looked before
    second, _ = _signed_in(console_gateway)  # the same analyst ("ana"), a new session
    match = heading.search(second.get("/console/board").text)
    assert match and match.group(1).strip().startswith("(")  # the time of the first session's look

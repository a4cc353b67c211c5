"""The console's door: nothing without a session, CSRF refused, the cookie's flags, only on the operator port.

Each test is an attacker going around one guard with plain HTTP.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import orjson
import pytest

from tests.console.scenario import TOKEN, TOKEN_ENV
from tests.support import GatewayHandle

PAGES = [
    "/console/",
    "/console/board",
    "/console/accounts/free",
    "/console/clusters",
    "/console/leak",
    "/console/config",
    "/console/audit",
    "/console/clusters/template:00",
]
ACTIONS = [
    "/console/accounts/free/action",
    "/console/accounts/free/evidence",
    "/console/leak",
    "/console/clusters/template:00/action",
    "/console/signout",
]


def _signed_in(gw: GatewayHandle, operator: str = "ana") -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=gw.ops_url, timeout=10)
    response = client.post("/console/signin", data={"operator": operator, "token": TOKEN})
    assert response.status_code == 303 and response.headers["location"] == "/console/board"
    page = client.get("/console/accounts/free")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    return client, csrf.group(1)


def _audit(gw: GatewayHandle) -> list[dict]:
    path = Path(gw.gateway.runtime.config.admin.audit_log)
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def test_no_page_and_no_action_without_a_session(console_gateway: GatewayHandle) -> None:
    gw = console_gateway
    forged = {"dg_console": "made-up-session-id"}
    for cookies in ({}, forged):
        client = httpx.Client(base_url=gw.ops_url, cookies=cookies, timeout=10)
        for page in PAGES:
            response = client.get(page)
            assert response.status_code == 303, page
            assert response.headers["location"] == "/console/signin"
            assert "hydra" not in response.text and "free" not in response.text
        for action in ACTIONS:
            response = client.post(action, data={"reason": "x", "action": "block", "csrf": "x"})
            assert response.status_code == 401, action
    assert gw.gateway.risk.level("free") == "none"
    # The sign-in page itself is reachable, and a wrong token does not open a session.
    client = httpx.Client(base_url=gw.ops_url, timeout=10)
    assert client.get("/console/signin").status_code == 200
    wrong = client.post("/console/signin", data={"operator": "mallory", "token": TOKEN + "x"})
    assert wrong.status_code == 401 and "dg_console" not in wrong.headers.get("set-cookie", "")
    assert client.get("/console/board").status_code == 303
    assert _audit(gw)[-1] | {"at": 0} == {
        "at": 0,
        "operator": "mallory",
        "session": None,
        "action": "sign-in",
        "target": "console",
        "reason": "",
        "outcome": "refused",
    }


def test_the_session_cookie_flags_and_its_end(console_gateway: GatewayHandle) -> None:
    gw = console_gateway
    response = httpx.post(f"{gw.ops_url}/console/signin", data={"operator": "ana", "token": TOKEN})
    cookie = response.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")[1:]}
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "samesite=strict"
    assert attributes["max-age"] == "Max-Age=28800" and attributes["path"] == "Path=/console"
    # The store holds a digest of the id, never the id.
    session_id = cookie.split(";")[0].split("=", 1)[1]
    store = gw.gateway.runtime.services.store
    keys = [key for key in store._values if ":console:session:" in key or "console" in key]
    assert keys and not any(session_id in key for key in keys)
    assert not any(
        session_id.encode() in bytes(value) for value, _ in store._values.values() if isinstance(value, bytes)
    )
    # Sign-out ends the session server-side: the old cookie no longer opens a page.
    client, csrf = _signed_in(gw)
    old = dict(client.cookies)
    assert client.post("/console/signout", data={"csrf": csrf}).status_code == 303
    replay = httpx.get(f"{gw.ops_url}/console/board", cookies=old)
    assert replay.status_code == 303 and replay.headers["location"] == "/console/signin"


def test_rotating_the_admin_token_ends_sessions_and_unsetting_it_closes_the_console(
    console_gateway: GatewayHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw = console_gateway
    client, _ = _signed_in(gw)
    assert client.get("/console/board").status_code == 200
    monkeypatch.setenv(TOKEN_ENV, "a-new-token")
    assert client.get("/console/board").status_code == 303
    monkeypatch.delenv(TOKEN_ENV)
    assert client.get("/console/board").status_code == 404
    assert client.get("/console/signin").status_code == 404


def test_csrf_is_refused(console_gateway: GatewayHandle) -> None:
    gw = console_gateway
    client, csrf = _signed_in(gw)
    form = {"action": "block", "reason": "forged by another site"}
    assert client.post("/console/accounts/free/action", data=form).status_code == 403  # no token
    assert client.post("/console/accounts/free/action", data={**form, "csrf": csrf + "x"}).status_code == 403
    # The right token from another origin (a page that stole it cannot post it cross-site either).
    cross = client.post(
        "/console/accounts/free/action",
        data={**form, "csrf": csrf},
        headers={"origin": "http://evil.example"},
    )
    assert cross.status_code == 403
    # JSON bodies are not forms: no CSRF bypass through another content type.
    as_json = client.post("/console/accounts/free/action", json={**form, "csrf": csrf})
    assert as_json.status_code == 415
    assert client.post("/console/leak", data={"text": "x"}).status_code == 403
    assert gw.gateway.risk.level("free") == "none" and gw.gateway.risk.pinned("free") is None
    # With the token, the same form works, needs a reason, and is audited with who and why.
    assert (
        client.post("/console/accounts/free/action", data={"action": "block", "csrf": csrf}).status_code
        == 400
    )
    done = client.post("/console/accounts/free/action", data={**form, "csrf": csrf})
    assert done.status_code == 303
    assert gw.gateway.risk.pinned("free") == "critical"
    entries = [e for e in _audit(gw) if e["action"] == "block"]
    assert [e["outcome"] for e in entries] == ["requested", "done"]
    assert entries[-1]["operator"] == "ana" and entries[-1]["reason"] == form["reason"]
    assert entries[-1]["target"] == "account:free" and entries[-1]["level"] == "critical"


def test_an_action_that_cannot_be_audited_is_refused(console_gateway: GatewayHandle) -> None:
    gw = console_gateway
    client, csrf = _signed_in(gw)
    audit = Path(gw.gateway.runtime.config.admin.audit_log)
    audit.unlink()
    audit.mkdir()  # the audit file cannot be opened for writing now
    response = client.post(
        "/console/accounts/free/action", data={"action": "pin", "level": "high", "reason": "r", "csrf": csrf}
    )
    assert response.status_code == 503 and "audit log" in response.text
    assert gw.gateway.risk.pinned("free") is None


def test_no_console_on_the_public_port(console_gateway: GatewayHandle) -> None:
    gw = console_gateway
    for path in ["/console", "/console/signin", "/console/board", "/console/static/console.css"]:
        response = httpx.get(f"{gw.url}{path}")
        assert response.status_code == 404 and "error" in response.json()
    signin = httpx.post(f"{gw.url}/console/signin", data={"operator": "ana", "token": TOKEN})
    assert signin.status_code == 404 and "set-cookie" not in signin.headers
    # ...while the operator port serves it.
    assert httpx.get(f"{gw.ops_url}/console/signin").status_code == 200
    assert httpx.get(f"{gw.ops_url}/console/static/console.css").status_code == 200


def test_pages_carry_a_strict_content_security_policy(console_gateway: GatewayHandle) -> None:
    client, _ = _signed_in(console_gateway)
    response = client.get("/console/board")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["cache-control"] == "no-store"
    assert "<script>" not in response.text and "style=" not in response.text  # nothing inline

"""Authentication through the running gateway: API keys and JWTs, every refusal a 401 in protocol shape."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx
import jwt
import openai
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.auth.keys import append_key, digest
from tests.support import GatewayHandle, MockHandle, ThreadedServer, base_config, metric_value

CHAT = {"model": "mock-small", "messages": [{"role": "user", "content": "hi"}]}
SECRET = "a-test-hmac-secret-that-is-long-enough-for-hs256"


def post(
    gw: GatewayHandle,
    token: str | None,
    path: str = "/v1/chat/completions",
    header: str = "authorization",
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    headers = {}
    if token is not None:
        headers[header] = f"Bearer {token}" if header == "authorization" else token
    return httpx.post(f"{gw.url}{path}", json=body or CHAT, headers=headers)


def test_missing_and_bad_keys(gateway: GatewayHandle) -> None:
    missing = post(gateway, None)
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "authentication_error"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    bad = post(gateway, "dg-wrong")
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_key"
    assert post(gateway, gateway.key(), header="x-api-key").status_code == 200
    assert post(gateway, gateway.key()).status_code == 200
    assert metric_value(gateway.metrics(), "distillguard_auth_failures_total", reason="invalid_key") >= 1


def test_anthropic_route_errors_in_anthropic_shape(gateway: GatewayHandle) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key="dg-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as info:
        client.messages.create(
            model="claude-mock", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    body = info.value.body
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error"


def test_openai_sdk_sees_authentication_error(gateway: GatewayHandle) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="dg-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(**CHAT)


def test_keys_file_and_key_command(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle, tmp_path: Path
) -> None:
    keys_file = tmp_path / "keys.jsonl"
    key, _ = append_key(keys_file, "acme", "pro")
    assert keys_file.stat().st_mode & 0o777 == 0o600
    assert key not in keys_file.read_text() and digest(key) in keys_file.read_text()
    cfg = base_config(mock_upstream.url)
    cfg["auth"] = {"keys_file": str(keys_file)}
    gw = start_gateway(cfg)
    assert post(gw, key).status_code == 200


def _jwt_gateway(
    start: Callable[..., GatewayHandle],
    mock: MockHandle,
    jwt_cfg: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> GatewayHandle:
    monkeypatch.setenv("TEST_JWT_SECRET", SECRET)
    cfg = base_config(mock.url)
    cfg["auth"]["jwt"] = jwt_cfg
    return start(cfg)


def _claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": "jwt-user",
        "tier": "pro",
        "iss": "https://idp.test",
        "aud": "distillguard",
        "exp": now + 300,
        "iat": now,
        **extra,
    }


HS_CFG = {
    "algorithms": ["HS256"],
    "secret_env": "TEST_JWT_SECRET",
    "issuer": "https://idp.test",
    "audience": "distillguard",
}


def test_jwt_hs256(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw = _jwt_gateway(start_gateway, mock_upstream, HS_CFG, monkeypatch)
    good = jwt.encode(_claims(), SECRET, algorithm="HS256")
    assert post(gw, good).status_code == 200
    now = int(time.time())
    cases = {
        "expired": jwt.encode(_claims(exp=now - 120), SECRET, algorithm="HS256"),
        "wrong audience": jwt.encode(_claims(aud="someone-else"), SECRET, algorithm="HS256"),
        "wrong issuer": jwt.encode(_claims(iss="https://evil.test"), SECRET, algorithm="HS256"),
        "not yet valid": jwt.encode(_claims(nbf=now + 600), SECRET, algorithm="HS256"),
        "no exp": jwt.encode({k: v for k, v in _claims().items() if k != "exp"}, SECRET, algorithm="HS256"),
        "wrong secret": jwt.encode(_claims(), SECRET + "x", algorithm="HS256"),
        "unknown tier": jwt.encode(_claims(tier="platinum"), SECRET, algorithm="HS256"),
        "HS512 not pinned": jwt.encode(_claims(), SECRET + SECRET, algorithm="HS512"),
        "alg none": _unsigned(_claims()),
    }
    for name, token in cases.items():
        response = post(gw, token)
        assert response.status_code == 401, name
        assert response.json()["error"]["type"] == "authentication_error", name
        assert SECRET not in response.text


def _unsigned(claims: dict[str, Any]) -> str:
    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def _rsa_pem(tmp_path: Path) -> tuple[rsa.RSAPrivateKey, Path, bytes]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path = tmp_path / "jwt-public.pem"
    path.write_bytes(public_pem)
    return private, path, public_pem


def test_jwt_rs256_and_key_confusion(
    start_gateway: Callable[..., GatewayHandle],
    mock_upstream: MockHandle,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    private, path, public_pem = _rsa_pem(tmp_path)
    gw = _jwt_gateway(
        start_gateway,
        mock_upstream,
        {"algorithms": ["RS256"], "public_key_file": str(path), "audience": "distillguard"},
        monkeypatch,
    )
    assert post(gw, jwt.encode(_claims(), private, algorithm="RS256")).status_code == 200
    # HS/RS confusion: sign with HS256 using the *public* key as the HMAC secret.
    import hashlib
    import hmac

    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps(_claims()).encode()).rstrip(b"=")
    signature = base64.urlsafe_b64encode(
        hmac.new(public_pem, header + b"." + payload, hashlib.sha256).digest()
    ).rstrip(b"=")
    forged = b".".join([header, payload, signature]).decode()
    assert post(gw, forged).status_code == 401
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert post(gw, jwt.encode(_claims(), other, algorithm="RS256")).status_code == 401


def test_jwt_es256_via_jwks(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    jwk.update(kid="k1", use="sig", alg="ES256")

    async def jwks(request: Any) -> JSONResponse:
        return JSONResponse({"keys": [jwk]})

    idp = ThreadedServer(Starlette(routes=[Route("/jwks.json", jwks)])).start()
    try:
        gw = _jwt_gateway(
            start_gateway,
            mock_upstream,
            {"algorithms": ["ES256"], "jwks_url": f"{idp.url}/jwks.json", "audience": "distillguard"},
            monkeypatch,
        )
        token = jwt.encode(_claims(), private, algorithm="ES256", headers={"kid": "k1"})
        assert post(gw, token).status_code == 200
        wrong_kid = jwt.encode(_claims(), private, algorithm="ES256", headers={"kid": "k2"})
        assert post(gw, wrong_kid).status_code == 401
    finally:
        idp.stop()


def test_jwt_config_refuses_mixed_algorithms(tmp_path: Path) -> None:
    from gateway.config.schema import JWTConfig

    with pytest.raises(ValueError, match="key confusion"):
        JWTConfig(algorithms=["HS256", "RS256"], secret_env="X")


def test_keys_new_command_prints_the_key_once_and_stores_its_hash(tmp_path: Path) -> None:
    import subprocess
    import sys

    from gateway.config.loader import load_keys_file
    from tests.support import ROOT

    keys_file = tmp_path / "sub" / "keys.jsonl"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "keys",
            "new",
            "--account",
            "acme",
            "--tier",
            "pro",
            "--keys-file",
            str(keys_file),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    key = result.stdout.strip()
    assert key.startswith("dg-") and "shown only once" in result.stderr
    assert key not in keys_file.read_text()
    entries = load_keys_file(keys_file)
    assert entries[digest(key)].account == "acme" and entries[digest(key)].tier == "pro"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "keys",
            "new",
            "--account",
            "beta",
            "--keys-file",
            str(keys_file),
        ],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    assert len(load_keys_file(keys_file)) == 2

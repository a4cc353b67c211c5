"""``POST /admin/watermark/probe``: ask a suspect model our canary triggers, attribute what it learnt."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support import GatewayHandle, MockHandle, ThreadedServer, base_config
from tests.suspect_model import SuspectModel

MASTER = "probe-master-key-0123456789abcdef"
KEY_ID = "2026-01"


@pytest.fixture
def suspect() -> Iterator[Callable[[str | None], tuple[SuspectModel, str]]]:
    servers: list[ThreadedServer] = []

    def start(account: str | None) -> tuple[SuspectModel, str]:
        model = SuspectModel(account, MASTER, KEY_ID)
        server = ThreadedServer(model).start()
        servers.append(server)
        return model, f"{server.url}/v1"

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def watermarked(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle, monkeypatch: pytest.MonkeyPatch
) -> GatewayHandle:
    monkeypatch.setenv("DISTILLGUARD_WATERMARK_KEY", MASTER)
    monkeypatch.setenv("DG_TEST_ADMIN", "admin-token")
    monkeypatch.setenv("DISTILLGUARD_PROBE_SUSPECT", "suspect-key")
    config = base_config(mock_upstream.url)
    config["admin"] = {"token_env": "DG_TEST_ADMIN"}
    policy = {"name": "watermark", "config": {"keys": [{"id": KEY_ID, "env": "DISTILLGUARD_WATERMARK_KEY"}]}}
    config["tiers"]["free"]["policies"] = [policy]
    return start_gateway(config)


def _probe(gw: GatewayHandle, token: str | None = "admin-token", **body: Any) -> Any:
    return gw.admin("POST", "/watermark/probe", token=token, json=body)


def test_a_suspect_that_learnt_an_accounts_canaries_is_attributed_to_it(
    watermarked: GatewayHandle, suspect: Callable[[str | None], tuple[SuspectModel, str]]
) -> None:
    model, endpoint = suspect("pro")
    accounts = ["free", "pro", "trusted"]
    response = _probe(watermarked, endpoint=endpoint, model="student", accounts=accounts, decoys=99)
    assert response.status_code == 200, response.text
    report = response.json()
    best = report["results"][0]
    assert best["account"] == "pro" and best["score"] == best["max_score"]
    assert best["p_corrected"] <= 0.05
    assert all(row["p_corrected"] > 0.05 for row in report["results"][1:])
    assert set(model.prompts) == set(report["answers"])  # every trigger was asked


def test_an_unmarked_suspect_is_attributed_to_no_one(
    watermarked: GatewayHandle, suspect: Callable[[str | None], tuple[SuspectModel, str]]
) -> None:
    _, endpoint = suspect(None)
    report = _probe(watermarked, endpoint=endpoint, accounts=["free", "pro"], decoys=99).json()
    assert all(row["p_corrected"] > 0.05 for row in report["results"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"endpoint": "ftp://host/v1"}, "endpoint"),
        ({"endpoint": "http://127.0.0.1:1/v1", "api_key_env": "DISTILLGUARD_WATERMARK_KEY"}, "api_key_env"),
        ({"endpoint": "http://127.0.0.1:1/v1", "api_key_env": "UPSTREAM_API_KEY"}, "api_key_env"),
        ({"endpoint": "http://127.0.0.1:1/v1", "samples": 100}, "samples"),
        ({"endpoint": "http://127.0.0.1:1/v1", "decoys": True}, "decoys"),
    ],
)
def test_bad_probe_requests_are_refused_and_no_credential_but_a_probe_key_leaves(
    watermarked: GatewayHandle, body: dict[str, Any], message: str
) -> None:
    response = _probe(watermarked, **body)
    assert response.status_code == 400 and message in response.json()["error"]["message"]


def test_probe_needs_the_admin_token_and_maps_an_unreachable_suspect_to_502(
    watermarked: GatewayHandle,
) -> None:
    assert _probe(watermarked, token=None, endpoint="http://127.0.0.1:1/v1").status_code == 401
    unreachable = _probe(watermarked, endpoint="http://127.0.0.1:1/v1", accounts=["free"], decoys=19)
    assert unreachable.status_code == 502

"""The green-list bias through the gateway on real sockets: the upstream gets it, the client never does.

The mock model applies ``logit_bias`` to its toy vocabulary (608 tokens), like llama.cpp and vLLM.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.mock.text import vocabulary
from policies.watermark.green_list import build_bias, provider_key
from policies.watermark.keys import MasterKey
from tests.support import GatewayHandle, MockHandle, base_config

SECRET = "e2e-green-master-0123456789abcdef"
VOCAB = len(vocabulary())
KEY_ENV = "DISTILLGUARD_WATERMARK_KEY"
MASTER = MasterKey("2026-01", SECRET.encode())
OURS = build_bias(provider_key(MASTER), MASTER.account_key("free"), VOCAB, 0.25, 2.0).bias()


@pytest.fixture(scope="module")
def gw(mock_upstream: MockHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayHandle]:
    os.environ["DISTILLGUARD_WATERMARK_KEY"] = SECRET
    config = base_config(mock_upstream.url)
    green = {"enabled": True, "models": [{"match": "mock-*", "vocab_size": VOCAB}]}
    config["tiers"]["free"]["policies"] = [
        {"name": "logprobs", "config": {"top_k": 5, "logit_bias": {"mode": "allow", "max_entries": 50}}},
        {"name": "watermark", "config": {"keys": [{"id": "2026-01", "env": KEY_ENV}], "green_list": green}},
    ]
    handle = GatewayHandle(config, Path(tmp_path_factory.mktemp("green-gw"))).start()
    yield handle
    handle.stop()


def _ids_in(raw: bytes) -> set[str]:
    """Every JSON key that is a token id, anywhere in what the client received."""
    return {m.decode() for m in re.findall(rb'"(\d+)"\s*:', raw)}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    stream=st.booleans(),
    logprobs=st.booleans(),
    client=st.dictionaries(st.integers(0, VOCAB - 1).map(str), st.integers(-20, 20), max_size=8),
)
def test_the_upstream_gets_the_bias_and_the_client_never_sees_it(
    gw: GatewayHandle, mock_upstream: MockHandle, stream: bool, logprobs: bool, client: dict[str, int]
) -> None:
    mock_upstream.reset()
    body: dict[str, Any] = {
        "model": "mock-small",
        "messages": [{"role": "user", "content": "Explain caching."}],
        "stream": stream,
    }
    if client:
        body["logit_bias"] = client
    if logprobs:
        body |= {"logprobs": True, "top_logprobs": 5}
    response = httpx.post(
        f"{gw.url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {gw.key('free')}"}
    )
    assert response.status_code == 200, response.text
    raw = response.content
    sent = mock_upstream.requests()[-1]["body"]["logit_bias"]
    expected = dict(OURS)
    for token, value in client.items():
        expected[token] = expected.get(token, 0.0) + value
    assert sent == expected
    # Nothing of the map comes back: no logit_bias, no logprobs (biased alternatives would show the
    # green tokens), no object keyed by token ids.
    assert b"logit_bias" not in raw and b"top_logprobs" not in raw and _ids_in(raw) == set()
    for line in raw.splitlines():
        if line.startswith(b"data: {"):
            chunk = orjson.loads(line[6:])
            assert all(choice.get("logprobs") is None for choice in chunk.get("choices", []))


def test_other_models_and_apis_are_forwarded_without_a_bias(
    gw: GatewayHandle, mock_upstream: MockHandle
) -> None:
    mock_upstream.reset()
    headers = {"authorization": f"Bearer {gw.key('free')}"}
    r = httpx.post(f"{gw.url}/v1/responses", json={"model": "mock-small", "input": "hi"}, headers=headers)
    assert r.status_code == 200
    assert "logit_bias" not in mock_upstream.requests()[-1]["body"]


@pytest.fixture(scope="module")
def floored(mock_upstream: MockHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayHandle]:
    """A gateway whose green-list model entry sets penalty floors (the loop breakers)."""
    os.environ["DISTILLGUARD_WATERMARK_KEY"] = SECRET
    config = base_config(mock_upstream.url)
    model = {
        "match": "mock-*",
        "vocab_size": VOCAB,
        "min_presence_penalty": 1.0,
        "min_frequency_penalty": 0.5,
        "min_dry_multiplier": 0.8,
        "max_dry_allowed_length": 4,
    }
    green = {"enabled": True, "models": [model]}
    config["tiers"]["free"]["policies"] = [
        {"name": "watermark", "config": {"keys": [{"id": "2026-01", "env": KEY_ENV}], "green_list": green}},
    ]
    handle = GatewayHandle(config, Path(tmp_path_factory.mktemp("green-floor"))).start()
    yield handle
    handle.stop()


@pytest.mark.parametrize(
    ("model", "asked", "forwarded"),
    [
        ("mock-small", None, 1.0),  # not asked: the floor
        ("mock-small", 0, 1.0),
        ("mock-small", -2.0, 1.0),  # a client asking for repetition does not get it
        ("mock-small", 1.5, 1.5),  # above the floor: the client's own
        ("gpt-4o", -2.0, -2.0),  # a model the green list does not mark: untouched
        ("gpt-4o", None, None),
    ],
)
def test_a_marked_request_gets_at_least_the_models_penalties(
    floored: GatewayHandle,
    mock_upstream: MockHandle,
    model: str,
    asked: float | None,
    forwarded: float | None,
) -> None:
    mock_upstream.reset()
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "Explain caching."}]}
    if asked is not None:
        body["presence_penalty"] = asked
        body["frequency_penalty"] = asked
    headers = {"authorization": f"Bearer {floored.key('free')}"}
    response = httpx.post(f"{floored.url}/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 200, response.text
    sent = mock_upstream.requests()[-1]["body"]
    assert sent.get("presence_penalty") == forwarded
    floor = 0.5 if model.startswith("mock-") else None
    expected = asked if floor is None or (asked is not None and asked >= floor) else floor
    assert sent.get("frequency_penalty") == expected
    assert ("logit_bias" in sent) == model.startswith("mock-")


FLOORED_DRY = {"dry_multiplier": 0.8, "dry_allowed_length": 4}  # the floor and ceiling of `floored`


@pytest.mark.parametrize(
    ("model", "asked", "forwarded"),
    [
        ("mock-small", {}, FLOORED_DRY),
        # A client weakening the penalty: off, a long allowance, a base of 1, no window, breakers
        # on every letter: the floor, the ceiling, and the server's defaults for the rest.
        (
            "mock-small",
            {
                "dry_multiplier": 0,
                "dry_allowed_length": 1000,
                "dry_base": 1.0,
                "dry_penalty_last_n": 0,
                "dry_sequence_breakers": list("etaoinshrdlu "),
            },
            FLOORED_DRY,
        ),
        (
            "mock-small",
            {"dry_multiplier": 2.0, "dry_allowed_length": 3},
            {"dry_multiplier": 2.0, "dry_allowed_length": 3},
        ),
        # Not numbers of the field's type (the parameter is forwarded unchecked): replaced.
        ("mock-small", {"dry_multiplier": "9", "dry_allowed_length": 2.5}, FLOORED_DRY),
        # A model the green list does not mark: the client's settings as sent.
        ("gpt-4o", {"dry_multiplier": 0, "dry_base": 1.0}, {"dry_multiplier": 0, "dry_base": 1.0}),
    ],
)
def test_a_marked_request_gets_at_least_the_models_phrase_penalty(
    floored: GatewayHandle,
    mock_upstream: MockHandle,
    model: str,
    asked: dict[str, Any],
    forwarded: dict[str, Any],
) -> None:
    mock_upstream.reset()
    body = {"model": model, "messages": [{"role": "user", "content": "Explain caching."}], **asked}
    headers = {"authorization": f"Bearer {floored.key('free')}"}
    response = httpx.post(f"{floored.url}/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 200, response.text
    sent = mock_upstream.requests()[-1]["body"]
    assert {k: v for k, v in sent.items() if k.startswith("dry_")} == forwarded

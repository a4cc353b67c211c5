"""End to end with the openai SDK through a real gateway: 400 shapes, clamps, coarse logprobs, metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest

from tests.support import GatewayHandle, MockHandle, base_config, metric_value

MESSAGES = [{"role": "user", "content": "Tell me about caches."}]
FREE = {"top_k": 5, "max_n": 2, "on_excess": "reject"}  # reject over the limits
PRO = {"top_k": 3, "grid": 0.5, "noise": {"scale": 0.3}, "on_excess": "clamp", "max_n": 2}


@pytest.fixture
def gateway(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle, monkeypatch: pytest.MonkeyPatch
) -> GatewayHandle:
    monkeypatch.setenv("DISTILLGUARD_LOGPROB_NOISE_KEY", "e2e-test-noise-key-0123456789")
    config = base_config(mock_upstream.url)
    config["tiers"]["free"]["policies"] = [{"name": "logprobs", "config": FREE}]
    config["tiers"]["pro"]["policies"] = [{"name": "logprobs", "config": PRO}]
    return start_gateway(config)


def _client(gateway: GatewayHandle, tier: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key(tier), max_retries=0)


REJECTIONS: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "chat",
        {"logprobs": True, "top_logprobs": 20},
        "top_logprobs",
        "top_logprobs=20 is above the limit of 5",
    ),
    ("chat", {"logprobs": True, "logit_bias": {"5": 100}}, "logit_bias", "cannot be combined with logprobs"),
    ("chat", {"n": 5}, "n", "n=5 is above the limit of 2"),
    ("chat", {"extra_body": {"prompt_logprobs": 1}}, "prompt_logprobs", "prompt_logprobs is not allowed"),
    ("completions", {"logprobs": 6}, "logprobs", "logprobs=6 is above the limit of 5"),
    ("completions", {"logprobs": 1, "echo": True}, "echo", "echo together with logprobs is not allowed"),
    ("completions", {"best_of": 3}, "best_of", "best_of=3 is above the limit of 2"),
    ("responses", {"top_logprobs": 8}, "top_logprobs", "top_logprobs=8 is above the limit of 5"),
]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("api", "params", "param", "message"), REJECTIONS)
def test_rejections_are_400_in_openai_shape(
    gateway: GatewayHandle,
    mock_upstream: MockHandle,
    api: str,
    params: dict[str, Any],
    param: str,
    message: str,
    stream: bool,
) -> None:
    client = _client(gateway, "free")
    before = len(mock_upstream.requests())
    with pytest.raises(openai.BadRequestError) as caught:
        if api == "chat":
            client.chat.completions.create(model="mock-small", messages=MESSAGES, stream=stream, **params)
        elif api == "completions":
            client.completions.create(model="mock-small", prompt="Once", stream=stream, **params)
        else:
            client.responses.create(model="mock-small", input="Hi", stream=stream, **params)
    error = caught.value
    assert error.status_code == 400
    assert error.body == {
        "message": error.body["message"],  # type: ignore[index]
        "type": "invalid_request_error",
        "param": param,
        "code": "policy_violation",
    }
    assert message in error.message and "tier 'free'" in error.message
    assert len(mock_upstream.requests()) == before  # nothing reached the upstream
    metrics = gateway.metrics()
    assert metric_value(
        metrics, "distillguard_logprobs_requests_clamped_total", param=param, action="rejected"
    )


def test_clamped_request_and_coarse_response(gateway: GatewayHandle, mock_upstream: MockHandle) -> None:
    client = _client(gateway, "pro")
    reply = client.chat.completions.create(
        model="mock-small", messages=MESSAGES, logprobs=True, top_logprobs=20, max_tokens=8
    )
    assert mock_upstream.requests()[-1]["body"]["top_logprobs"] == 3
    entries = reply.choices[0].logprobs.content  # type: ignore[union-attr]
    assert entries and all(len(entry.top_logprobs) <= 3 for entry in entries)
    values = [entry.logprob for entry in entries] + [alt.logprob for e in entries for alt in e.top_logprobs]
    assert all(v <= 0 and v * 2 == round(v * 2) for v in values)
    streamed = [
        entry
        for chunk in client.chat.completions.create(
            model="mock-small", messages=MESSAGES, logprobs=True, top_logprobs=20, max_tokens=8, stream=True
        )
        if chunk.choices and chunk.choices[0].logprobs
        for entry in chunk.choices[0].logprobs.content or []
    ]
    assert streamed == entries  # same keyed noise and rounding, streamed or not
    again = client.chat.completions.create(
        model="mock-small", messages=MESSAGES, logprobs=True, top_logprobs=3, max_tokens=8
    )
    assert again.choices[0].logprobs.content == entries  # type: ignore[union-attr]


def test_clamped_logit_bias_with_logprobs_drops_the_logprobs(
    gateway: GatewayHandle, mock_upstream: MockHandle
) -> None:
    reply = _client(gateway, "pro").chat.completions.create(
        model="mock-small",
        messages=MESSAGES,
        logprobs=True,
        top_logprobs=2,
        logit_bias={"7": 100},
        max_tokens=2,
    )
    sent = mock_upstream.requests()[-1]["body"]
    assert sent["logit_bias"] == {"7": 100} and "logprobs" not in sent and "top_logprobs" not in sent
    assert reply.choices[0].logprobs is None


def test_legacy_and_responses_streams_are_coarse(gateway: GatewayHandle) -> None:
    client = _client(gateway, "pro")
    chunks = list(
        client.completions.create(model="mock-small", prompt="Once", logprobs=5, max_tokens=6, stream=True)
    )
    tops = [
        alts
        for c in chunks
        if c.choices and c.choices[0].logprobs
        for alts in c.choices[0].logprobs.top_logprobs
    ]
    assert tops and all(len(alts) <= 4 for alts in tops)  # top 3, plus the sampled token
    events = list(
        client.responses.create(
            model="mock-small",
            input="Hi",
            top_logprobs=9,
            include=["message.output_text.logprobs"],
            max_output_tokens=6,
            stream=True,
        )
    )
    deltas = [lp for e in events if e.type == "response.output_text.delta" for lp in e.logprobs]
    final = events[-1].response.output[-1].content[0].logprobs  # type: ignore[union-attr]
    assert deltas and [d.model_dump() for d in deltas] == [f.model_dump() for f in final]
    assert all(len(lp.top_logprobs or []) <= 3 for lp in final)
    metrics = gateway.metrics()
    assert metric_value(
        metrics, "distillguard_logprobs_requests_clamped_total", param="top_logprobs", action="clamped"
    )

"""The logprobs policy on Gemini, unchanged: the adapter's views are all it reads.

Request: ``candidateCount`` and ``logprobs`` clamped, ``responseLogprobs`` refused or dropped.
Response: ``logprobsResult`` capped, coarsened and noised like every other family, ``avgLogprobs``
(which Gemini returns unasked) coarsened, or both removed when the tier allows no logprobs.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google import genai
from google.genai import errors, types

from gateway.errors import PolicyViolationError
from gateway.mock import gemini_shapes
from gateway.mock.generation import generate
from tests.policy_harness import PolicyHarness, encode_events
from tests.support import TEST_KEYS, GatewayHandle, MockHandle, base_config

PROMPT = "Explain how a cache works, briefly."
BODY = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}


def _exchange(harness: PolicyHarness, config: dict[str, Any]) -> Any:
    exchange = harness.exchange(
        "generateContent", {**BODY, "generationConfig": config}, params={"model": "g"}
    )
    asyncio.run(harness.request(exchange))
    return exchange


def _upstream(top: int = 20) -> tuple[Any, dict[str, Any], bytes]:
    gen = generate(gemini_shapes.generation_body(BODY), max_tokens=12, with_reasoning=False, top_logprobs=top)
    body = gemini_shapes.response([gen], "g", False, True, top)
    return gen, body, encode_events(gemini_shapes.stream([gen], "g", False, True, top, 2))


def test_request_is_clamped_through_the_view() -> None:
    harness = PolicyHarness([("logprobs", {"on_excess": "clamp", "top_k": 2, "max_n": 2})])
    exchange = _exchange(harness, {"candidateCount": 6, "responseLogprobs": True, "logprobs": 9})
    assert exchange.body["generationConfig"] == {"candidateCount": 2, "responseLogprobs": True, "logprobs": 2}
    actions = {action.action for action in exchange.actions}
    assert {"clamped:generationConfig.logprobs", "clamped:generationConfig.candidateCount"} <= actions


def test_request_for_logprobs_is_refused_where_the_tier_allows_none() -> None:
    harness = PolicyHarness([("logprobs", {"logprobs": False, "on_excess": "reject"})])
    with pytest.raises(PolicyViolationError) as refused:
        _exchange(harness, {"responseLogprobs": True})
    assert refused.value.param == "generationConfig.responseLogprobs"


def test_alternatives_capped_and_coarsened_and_the_average_too() -> None:
    harness = PolicyHarness([("logprobs", {"on_excess": "clamp", "top_k": 3, "grid": 0.25})])
    gen, body, _ = _upstream()
    exchange = _exchange(harness, {"responseLogprobs": True, "logprobs": 3})
    out = asyncio.run(harness.response(exchange, copy.deepcopy(body)))["candidates"][0]
    result = out["logprobsResult"]
    for chosen, top, step in zip(
        result["chosenCandidates"], result["topCandidates"], gen.logprobs, strict=True
    ):
        assert [alt["token"] for alt in top["candidates"]] == [token for token, _, _ in step.top[:3]]
        for value in [chosen["logProbability"], *(alt["logProbability"] for alt in top["candidates"])]:
            assert value <= 0 and value == round(value / 0.25) * 0.25
    assert out["avgLogprobs"] == round(body["candidates"][0]["avgLogprobs"] / 0.25) * 0.25
    asyncio.run(harness.after(exchange))
    assert ("alternatives_withheld", 17 * len(gen.tokens)) in [(a.action, a.count) for a in exchange.actions]


@pytest.mark.parametrize("stream", [False, True])
def test_no_logprob_reaches_a_tier_without_them_even_unasked(stream: bool) -> None:
    """avgLogprobs comes back whether or not the client asked: the response side drops it as well."""
    harness = PolicyHarness([("logprobs", {"logprobs": False, "on_excess": "clamp"})])
    _, body, wire = _upstream()
    exchange = _exchange(harness, {})
    if stream:
        events = harness.stream(exchange, wire, chunks=[7, 64, 3])
        candidates = [c for e in events if e.json for c in e.json["candidates"]]
    else:
        candidates = asyncio.run(harness.response(exchange, copy.deepcopy(body)))["candidates"]
    assert candidates
    assert not any("logprobsResult" in c or "avgLogprobs" in c for c in candidates)
    text = "".join(p["text"] for c in candidates for p in c["content"]["parts"])
    assert text == "".join(p["text"] for p in body["candidates"][0]["content"]["parts"])


@pytest.fixture(scope="module")
def logprobs_gateway(
    mock_upstream: MockHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayHandle]:
    tiers = {
        "free": {"policies": [{"name": "logprobs", "config": {"logprobs": False, "on_excess": "reject"}}]},
        "pro": {"policies": [{"name": "logprobs", "config": {"top_k": 1, "max_n": 2, "on_excess": "clamp"}}]},
        "trusted": {"policies": []},
    }
    handle = GatewayHandle(
        base_config(mock_upstream.url, tiers=tiers), Path(tmp_path_factory.mktemp("lp"))
    ).start()
    yield handle
    handle.stop()


def _client(gw: GatewayHandle, tier: str) -> genai.Client:
    return genai.Client(api_key=TEST_KEYS[tier], http_options=types.HttpOptions(base_url=gw.url))


def test_sdk_through_the_gateway(logprobs_gateway: GatewayHandle, mock_upstream: MockHandle) -> None:
    free, pro = _client(logprobs_gateway, "free"), _client(logprobs_gateway, "pro")
    asks = types.GenerateContentConfig(response_logprobs=True, logprobs=5, candidate_count=4)
    with pytest.raises(errors.ClientError) as refused:
        free.models.generate_content(model="gemini-mock", contents=PROMPT, config=asks)
    assert refused.value.code == 400 and "logprobs is not allowed" in refused.value.message
    (violation,) = [d for d in refused.value.details["error"]["details"] if d["@type"].endswith("BadRequest")]
    assert violation["fieldViolations"][0]["field"] == "generationConfig.responseLogprobs"
    plain = free.models.generate_content(model="gemini-mock", contents=PROMPT)
    assert plain.text and plain.candidates[0].avg_logprobs is None  # the upstream sent one; it is withheld
    mock_upstream.reset()
    response = pro.models.generate_content(model="gemini-mock", contents=PROMPT, config=asks)
    assert mock_upstream.requests()[-1]["body"]["generationConfig"] == {
        "responseLogprobs": True,
        "logprobs": 1,
        "candidateCount": 2,
    }
    assert len(response.candidates) == 2
    assert all(len(step.candidates) == 1 for step in response.candidates[0].logprobs_result.top_candidates)
    chunks = list(pro.models.generate_content_stream(model="gemini-mock", contents=PROMPT, config=asks))
    tops = [
        step for c in chunks for cand in c.candidates or [] for step in cand.logprobs_result.top_candidates
    ]
    assert tops and all(len(step.candidates) == 1 for step in tops)

"""Google's Gemini API through the gateway, with the official ``google-genai`` SDK as the client.

Real sockets: the SDK talks to the gateway, the gateway to the mock upstream (which speaks Gemini's
shapes). The SDK's default API version is v1; v1beta is the same operation on the other prefix.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import errors, types

from tests.support import TEST_KEYS, GatewayHandle, MockHandle, base_config, metric_value, wait_for

UPSTREAM_KEY = "gemini-upstream-secret"
PROMPT = "Explain how a cache decides what to evict."


@pytest.fixture(scope="module")
def gemini_gateway(
    mock_upstream: MockHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayHandle]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DG_TEST_GEMINI_KEY", UPSTREAM_KEY)
        config = base_config(mock_upstream.url)
        config["upstreams"][2]["credential_env"] = "DG_TEST_GEMINI_KEY"
        handle = GatewayHandle(config, Path(tmp_path_factory.mktemp("gemini"))).start()
    yield handle
    handle.stop()


def client(gw: GatewayHandle, version: str | None = None, key: str = TEST_KEYS["free"]) -> genai.Client:
    options = (
        types.HttpOptions(base_url=gw.url, api_version=version)
        if version
        else types.HttpOptions(base_url=gw.url)
    )
    return genai.Client(api_key=key, http_options=options)


def last_request(mock: MockHandle) -> dict[str, Any]:
    return mock.requests()[-1]


@pytest.mark.parametrize("version", [None, "v1beta"])
def test_generate_content_through_the_gateway(
    gemini_gateway: GatewayHandle, mock_upstream: MockHandle, version: str | None
) -> None:
    mock_upstream.reset()
    config = types.GenerateContentConfig(
        max_output_tokens=200,
        thinking_config=types.ThinkingConfig(include_thoughts=True),
        response_logprobs=True,
        logprobs=2,
    )
    sdk = client(gemini_gateway, version)  # held: the SDK closes its HTTP client when collected
    response = sdk.models.generate_content(model="gemini-mock", contents=PROMPT, config=config)
    parts = response.candidates[0].content.parts
    assert parts[0].thought is True and parts[0].text
    assert response.text and not parts[1].thought and parts[1].thought_signature
    top = response.candidates[0].logprobs_result.top_candidates
    assert top and all(len(step.candidates) == 2 for step in top)
    usage = response.usage_metadata
    assert usage.thoughts_token_count and usage.candidates_token_count and usage.prompt_token_count
    seen = last_request(mock_upstream)
    assert seen["path"] == f"/{version or 'v1'}/models/gemini-mock:generateContent"
    # The SDK sends thinkingConfig in snake_case; the upstream gets the one (lowerCamelCase) spelling.
    assert seen["body"]["generationConfig"]["thinkingConfig"] == {"includeThoughts": True}
    assert seen["headers"]["x-goog-api-key"] == UPSTREAM_KEY
    assert seen["query"] == ""


def test_stream_generate_content_ends_at_eof(
    gemini_gateway: GatewayHandle, mock_upstream: MockHandle
) -> None:
    mock_upstream.reset()
    gw_client = client(gemini_gateway)
    chunks = list(gw_client.models.generate_content_stream(model="gemini-mock", contents=PROMPT))
    whole = gw_client.models.generate_content(model="gemini-mock", contents=PROMPT)
    assert "".join(chunk.text or "" for chunk in chunks) == whole.text
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count == whole.usage_metadata.candidates_token_count
    stream_request = mock_upstream.requests()[0]
    assert stream_request["path"] == "/v1/models/gemini-mock:streamGenerateContent"
    assert stream_request["query"] == "alt=sse"
    assert mock_upstream.stats()["completed"] == 1  # the gateway read the stream to its end


def test_usage_is_counted_from_usage_metadata(gemini_gateway: GatewayHandle) -> None:
    def tokens(kind: str) -> float:
        return metric_value(
            gemini_gateway.metrics(),
            "distillguard_tokens_total",
            route="streamGenerateContent",
            type=kind,
            tier="free",
        )

    before = {kind: tokens(kind) for kind in ("input", "output", "reasoning")}
    sdk = client(gemini_gateway)
    chunks = list(sdk.models.generate_content_stream(model="gemini-mock", contents=PROMPT))
    usage = chunks[-1].usage_metadata
    # Counted when the exchange ends, a moment after the client read the last byte.
    wait_for(lambda: tokens("input") - before["input"] == usage.prompt_token_count)
    # Thought tokens are output the client pays for (candidatesTokenCount leaves them out).
    assert tokens("output") - before["output"] == usage.candidates_token_count + usage.thoughts_token_count
    assert tokens("reasoning") - before["reasoning"] == usage.thoughts_token_count


def test_key_in_the_query_authenticates_and_is_never_forwarded(
    gemini_gateway: GatewayHandle, mock_upstream: MockHandle
) -> None:
    mock_upstream.reset()
    body = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
    url = f"{gemini_gateway.url}/v1beta/models/gemini-mock:streamGenerateContent"
    with httpx.stream("POST", url, params={"alt": "sse", "key": TEST_KEYS["pro"]}, json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    assert text.count("data: ") > 2
    seen = last_request(mock_upstream)
    assert seen["query"] == "alt=sse"  # the client's key stays at the gateway
    assert TEST_KEYS["pro"] not in str(seen)
    assert "x-goog-api-key" in seen["headers"] and seen["headers"]["x-goog-api-key"] == UPSTREAM_KEY


def test_errors_are_in_gemini_shape(gemini_gateway: GatewayHandle, mock_upstream: MockHandle) -> None:
    stranger = client(gemini_gateway, key="not-a-key")
    with pytest.raises(errors.ClientError) as bad_key:
        stranger.models.generate_content(model="gemini-mock", contents=PROMPT)
    assert bad_key.value.code == 401 and bad_key.value.status == "UNAUTHENTICATED"
    config = types.GenerateContentConfig(cached_content="cachedContents/someone-elses-prompt")
    sdk = client(gemini_gateway)
    with pytest.raises(errors.ClientError) as refused:
        sdk.models.generate_content(model="gemini-mock", contents=PROMPT, config=config)
    assert refused.value.code == 400 and refused.value.status == "INVALID_ARGUMENT"
    assert "cachedContent" in refused.value.message
    missing = httpx.post(f"{gemini_gateway.url}/v1beta/models/gemini-mock:generateContent", json={})
    assert missing.status_code == 401
    assert missing.json()["error"]["status"] == "UNAUTHENTICATED"
    assert "x-goog-api-key" in missing.json()["error"]["message"]


def test_upstream_error_mid_stream_reaches_the_sdk_as_an_error(gemini_gateway: GatewayHandle) -> None:
    faulty = genai.Client(
        api_key=TEST_KEYS["free"],
        http_options=types.HttpOptions(
            base_url=gemini_gateway.url, headers={"x-mock-fault": "garbage-midstream"}
        ),
    )
    with pytest.raises(errors.APIError) as failed:
        list(faulty.models.generate_content_stream(model="gemini-mock", contents=PROMPT))
    assert failed.value.code == 502 and failed.value.status == "UNAVAILABLE"


def test_model_listing_is_passthrough(gemini_gateway: GatewayHandle, mock_upstream: MockHandle) -> None:
    listed = httpx.get(
        f"{gemini_gateway.url}/v1beta/models", params={"key": TEST_KEYS["free"], "pageSize": "5"}
    )
    assert listed.status_code == 200 and listed.json()["models"][0]["name"] == "models/gemini-mock"
    assert last_request(mock_upstream)["query"] == "pageSize=5"
    one = httpx.get(
        f"{gemini_gateway.url}/v1beta/models/gemini-mock", headers={"x-goog-api-key": TEST_KEYS["free"]}
    )
    assert one.status_code == 200 and one.json()["name"] == "models/gemini-mock"


def test_quota_limits_gemini_and_answers_in_its_shape(mock_upstream: MockHandle, tmp_path: Path) -> None:
    quota = {
        "policies": [{"name": "quota", "config": {"requests_per_minute": 1, "tokens_per_minute": 100000}}]
    }
    handle = GatewayHandle(
        base_config(mock_upstream.url, tiers={t: quota for t in TEST_KEYS}), tmp_path
    ).start()
    try:
        sdk = client(handle)
        first = sdk.models.generate_content(model="gemini-mock", contents=PROMPT)
        headers = first.sdk_http_response.headers  # Google sends none; the gateway's own limits
        assert (
            headers["x-ratelimit-limit-requests"] == "1" and headers["x-ratelimit-remaining-requests"] == "0"
        )
        with pytest.raises(errors.ClientError) as limited:
            sdk.models.generate_content(model="gemini-mock", contents=PROMPT)
        assert limited.value.code == 429 and limited.value.status == "RESOURCE_EXHAUSTED"
        details = limited.value.details["error"]["details"]
        retry = [d for d in details if d["@type"] == "type.googleapis.com/google.rpc.RetryInfo"]
        assert retry and retry[0]["retryDelay"].endswith("s") and int(retry[0]["retryDelay"][:-1]) >= 1
        assert limited.value.response.headers["retry-after"] == retry[0]["retryDelay"][:-1]
    finally:
        handle.stop()


def test_a_policy_failure_mid_stream_ends_the_gemini_stream_with_its_error(
    mock_upstream: MockHandle, tmp_path: Path
) -> None:
    # Fail closed in Gemini's shape: what the policy passed arrives, then the stream ends with
    # Google's error object (which the SDK raises); nothing after the failure reaches the client.
    failing = {
        "name": "tests.sample_policies:FailingPolicy",
        "config": {"phase": "stream", "after_events": 2},
    }
    handle = GatewayHandle(
        base_config(mock_upstream.url, tiers={t: {"policies": [failing]} for t in TEST_KEYS}), tmp_path
    ).start()
    try:
        # The mock spaces its events (x-mock-delay-ms) so the first ones leave before the failure; the
        # SDK closes its HTTP client when the Client is collected, so it is held for the loop.
        options = types.HttpOptions(base_url=handle.url, headers={"x-mock-delay-ms": "20"})
        sdk, seen = genai.Client(api_key=TEST_KEYS["free"], http_options=options), []
        with pytest.raises(errors.APIError) as failed:
            for chunk in sdk.models.generate_content_stream(model="gemini-mock", contents=PROMPT):
                seen.append(chunk)
        assert failed.value.code == 500 and failed.value.status == "INTERNAL"
        assert "policy" in failed.value.message and "boom" not in failed.value.message
        assert len(seen) == 2
        metrics = handle.metrics()
        assert (
            metric_value(metrics, "distillguard_policy_failures_total", phase="stream", mode="enforce") >= 1
        )
    finally:
        handle.stop()

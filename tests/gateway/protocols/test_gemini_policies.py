"""The built-in policies on Gemini, unchanged, through the gateway with the google-genai SDK.

logprobs and quota apply (tests/policies/logprobs/test_gemini.py, test_gemini_e2e.py); the detector
observes; the watermark marks Gemini text as it marks every family's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from google import genai
from google.genai import errors, types

from tests.support import TEST_KEYS, GatewayHandle, MockHandle, base_config, wait_for

PROMPT = "Explain how caches work, with an example."


def _gateway(mock: MockHandle, directory: Path, policies: list[dict[str, Any]]) -> GatewayHandle:
    tiers = {tier: {"policies": policies} for tier in TEST_KEYS}
    return GatewayHandle(base_config(mock.url, tiers=tiers), directory).start()


def _client(gw: GatewayHandle) -> genai.Client:
    return genai.Client(api_key=TEST_KEYS["free"], http_options=types.HttpOptions(base_url=gw.url))


def test_reasoning_refuses_gemini_until_it_reads_reasoning_through_the_views(
    mock_upstream: MockHandle, tmp_path: Path
) -> None:
    gw = _gateway(mock_upstream, tmp_path, [{"name": "reasoning", "config": {"mode": "drop"}}])
    try:
        mock_upstream.reset()
        sdk = _client(gw)
        config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True))
        with pytest.raises(errors.ClientError) as refused:
            sdk.models.generate_content(model="gemini-mock", contents=PROMPT, config=config)
        assert refused.value.code == 403 and refused.value.status == "PERMISSION_DENIED"
        assert "reasoning" in refused.value.message and "generateContent" in refused.value.message
        assert mock_upstream.requests() == []  # no thought ever left the upstream unfiltered
    finally:
        gw.stop()


def test_detector_observes_gemini(
    mock_upstream: MockHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its signals come from the request view (prompt, tools) and the usage: Gemini's, read by the adapter."""
    monkeypatch.setenv("DG_TEST_ADMIN", "admin-token")
    config = base_config(
        mock_upstream.url, tiers={t: {"policies": [{"name": "detector"}]} for t in TEST_KEYS}
    )
    config["admin"] = {"token_env": "DG_TEST_ADMIN"}
    gw = GatewayHandle(config, tmp_path).start()
    try:
        sdk = _client(gw)
        elicit = "Articulate the internal reasoning behind your completed answer step by step: " + PROMPT
        forced = types.GenerateContentConfig(
            tools=[types.Tool(function_declarations=[types.FunctionDeclaration(name="search")])],
            tool_config=types.ToolConfig(
                function_calling_config=types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode.ANY)
            ),
        )
        answers = [
            sdk.models.generate_content(model="gemini-mock", contents=elicit, config=forced) for _ in range(3)
        ]

        def status() -> dict[str, Any]:
            return gw.admin("GET", "/detector/accounts/free", "admin-token").json()  # type: ignore[no-any-return]

        wait_for(lambda: status().get("features", {}).get("requests") == 3)
        features = status()["features"]
        assert (
            features["cot_elicitation"] > 0
            and features["forced_tool_choice"] > 0
            and features["tool_use"] > 0
        )
        usage = answers[0].usage_metadata
        assert features["input_tokens_avg"] == usage.prompt_token_count
        assert features["output_tokens_avg"] == usage.candidates_token_count + (
            usage.thoughts_token_count or 0
        )
    finally:
        gw.stop()


def test_watermark_marks_gemini_text(
    mock_upstream: MockHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTILLGUARD_WATERMARK_KEY", "gemini-master-key-0123456789abcdef")
    (tmp_path / "m").mkdir()
    (tmp_path / "p").mkdir()
    marked_gw = _gateway(mock_upstream, tmp_path / "m", [{"name": "watermark", "config": {}}])
    plain_gw = _gateway(mock_upstream, tmp_path / "p", [])
    try:
        marked_sdk, plain_sdk = _client(marked_gw), _client(plain_gw)
        marked = marked_sdk.models.generate_content(model="gemini-mock", contents=PROMPT).text
        plain = plain_sdk.models.generate_content(model="gemini-mock", contents=PROMPT).text
        streamed = "".join(
            c.text or ""
            for c in marked_sdk.models.generate_content_stream(model="gemini-mock", contents=PROMPT)
        )
        assert streamed == marked
        assert marked != plain
    finally:
        marked_gw.stop()
        plain_gw.stop()

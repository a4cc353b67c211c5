"""The built-in policies on Gemini, unchanged, through the gateway with the google-genai SDK.

logprobs and quota apply (tests/policies/logprobs/test_gemini.py, test_gemini_e2e.py); the detector
observes; the watermark marks Gemini text as it marks every family's.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml
from google import genai
from google.genai import types

from tests.support import ROOT, TEST_KEYS, GatewayHandle, MockHandle, base_config, wait_for

PROMPT = "Explain how caches work, with an example."


def _gateway(mock: MockHandle, directory: Path, policies: list[dict[str, Any]]) -> GatewayHandle:
    tiers = {tier: {"policies": policies} for tier in TEST_KEYS}
    return GatewayHandle(base_config(mock.url, tiers=tiers), directory).start()


def _client(gw: GatewayHandle) -> genai.Client:
    return genai.Client(api_key=TEST_KEYS["free"], http_options=types.HttpOptions(base_url=gw.url))


def _preset_reasoning(tier: str) -> dict[str, Any]:
    """The reasoning policy's config for ``tier`` in the shipped default preset (seal, for free)."""
    data = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text())
    entry = next(p for p in data["tiers"][tier]["policies"] if p["name"] == "reasoning")
    return {"name": "reasoning", "config": entry["config"]}


def _parts(response: types.GenerateContentResponse) -> list[types.Part]:
    assert response.candidates and response.candidates[0].content
    return list(response.candidates[0].content.parts or [])


def test_default_preset_thoughts_as_a_gemini_ui_reads_them_and_the_seal_round_trip(
    mock_upstream: MockHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTILLGUARD_SEAL_KEY", "gemini-seal-secret-0123456789abcdef")
    (tmp_path / "s").mkdir()
    (tmp_path / "p").mkdir()
    sealed_gw = _gateway(mock_upstream, tmp_path / "s", [_preset_reasoning("free")])
    plain_gw = _gateway(mock_upstream, tmp_path / "p", [])
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True))
    try:
        sdk, plain = _client(sealed_gw), _client(plain_gw)
        upstream = plain.models.generate_content(model="gemini-mock", contents=PROMPT, config=config)
        thought = next(p.text for p in _parts(upstream) if p.thought)
        assert thought  # the upstream thinks, and shows its thoughts to a plain gateway's client
        answer = sdk.models.generate_content(model="gemini-mock", contents=PROMPT, config=config)
        # What a Gemini UI shows: the thinking section (thought parts' text) is empty, the answer whole.
        assert [p.text for p in _parts(answer) if p.thought] == [""]
        assert answer.text == upstream.text
        assert thought[:40] not in answer.model_dump_json()
        streamed = list(
            sdk.models.generate_content_stream(model="gemini-mock", contents=PROMPT, config=config)
        )
        shown = "".join(p.text or "" for chunk in streamed for p in _parts(chunk) if p.thought)
        assert shown == "" and "".join(c.text or "" for c in streamed) == upstream.text
        assert all(thought[:40] not in c.model_dump_json() for c in streamed)

        # The SDK's chat keeps the model's turn (thought signatures as bytes) and sends it back: the
        # gateway restores the thought and Google's signature, which the upstream verifies.
        mock_upstream.reset()
        chat = sdk.chats.create(model="gemini-mock", config=config)
        chat.send_message(PROMPT)
        follow_up = chat.send_message("And with a second example?")
        assert follow_up.text
        history = mock_upstream.requests()[-1]["body"]["contents"]
        model_turn = next(c for c in history if c.get("role") == "model")
        assert model_turn["parts"][0] == {"text": thought, "thought": True}
        signature = _parts(upstream)[1].thought_signature
        assert (
            signature and model_turn["parts"][1]["thoughtSignature"] == base64.b64encode(signature).decode()
        )
    finally:
        sealed_gw.stop()
        plain_gw.stop()


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

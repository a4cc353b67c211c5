"""The Gemini request view: what a generateContent body asks for, and the edits policies make through it."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.protocols import ADAPTERS
from gateway.protocols.gemini_view import GenerateContentView
from gateway.protocols.params import UpstreamRules
from gateway.protocols.request_view import BudgetAsk, EffortAsk
from policies.quota.estimate import estimate_input_tokens, output_reservation

ADAPTER = ADAPTERS["gemini"]


def view(body: dict[str, Any], operation: str = "generateContent") -> GenerateContentView:
    found = ADAPTER.request_view(operation, body, {"model": "gemini-mock"})  # type: ignore[arg-type]
    assert isinstance(found, GenerateContentView)
    return found


def user(*parts: dict[str, Any], role: str = "user") -> dict[str, Any]:
    return {"role": role, "parts": list(parts)}


def test_model_is_the_path_and_stream_is_the_verb() -> None:
    body = {"contents": [user({"text": "hi"})], "model": "not-this-one", "stream": False}
    assert view(body).model == "gemini-mock" and not view(body).stream
    assert view(body, "streamGenerateContent").stream


def test_samples_max_tokens_and_logprobs() -> None:
    body = {
        "contents": [user({"text": "hi"})],
        "generationConfig": {
            "candidateCount": 4,
            "maxOutputTokens": 300,
            "responseLogprobs": True,
            "logprobs": 5,
        },
    }
    request = view(body)
    assert request.samples == 4 and list(request.sample_counts()) == [("generationConfig.candidateCount", 4)]
    assert (
        request.max_output_tokens == 300
        and request.max_output_tokens_param == "generationConfig.maxOutputTokens"
    )
    asked = request.logprobs
    assert asked.sampled and asked.alternatives == 5 and asked.any and not asked.prompt
    assert output_reservation(request, 1000) == (1200, "generationConfig.maxOutputTokens")


def test_alternatives_without_response_logprobs_still_count_as_asked() -> None:
    """The one answer to "does it ask for logprobs": ``logprobs: k`` alone is an ask (fail closed)."""
    assert view({"generationConfig": {"logprobs": 3}}).logprobs.any
    assert not view({"generationConfig": {"responseLogprobs": False}}).logprobs.any


def test_edits_reach_the_body() -> None:
    body = {"generationConfig": {"candidateCount": 4, "responseLogprobs": True, "logprobs": 5}}
    request = view(body)
    request.set_sample_count("generationConfig.candidateCount", 1)
    request.set_alternatives(2)
    assert body["generationConfig"] == {"candidateCount": 1, "responseLogprobs": True, "logprobs": 2}
    request.drop_logprobs()
    assert body["generationConfig"] == {"candidateCount": 1}
    before = dict(body)
    request.drop_prompt_logprobs()
    request.drop_token_ids()
    request.drop_logit_bias()
    assert body == before and request.logit_bias is None


def test_thinking_budget_and_level() -> None:
    body = {"generationConfig": {"thinkingConfig": {"thinkingBudget": 8000, "thinkingLevel": "HIGH"}}}
    request = view(body)
    assert request.reasoning_budget == BudgetAsk("generationConfig.thinkingConfig.thinkingBudget", 8000)
    assert request.reasoning_efforts() == [
        EffortAsk("generationConfig.thinkingConfig.thinkingLevel", "high", lowest="minimal")
    ]
    assert request.limit_reasoning_budget(1024) == "clamped:generationConfig.thinkingConfig.thinkingBudget"
    request.set_reasoning_effort("generationConfig.thinkingConfig.thinkingLevel", "low")
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 1024, "thinkingLevel": "LOW"}
    dynamic = view({"generationConfig": {"thinkingConfig": {"thinkingBudget": -1}}})
    assert dynamic.reasoning_budget == BudgetAsk("generationConfig.thinkingConfig.thinkingBudget", None)


def test_hiding_thoughts_turns_include_thoughts_off() -> None:
    body = {"generationConfig": {"thinkingConfig": {"includeThoughts": True}}}
    assert view(body).hide_upstream_reasoning()
    assert body["generationConfig"]["thinkingConfig"] == {"includeThoughts": False}
    assert not view(body).hide_upstream_reasoning()


def test_conversation_tools_and_agent_loop() -> None:
    body = {
        "systemInstruction": {"parts": [{"text": "Be terse."}]},
        "contents": [
            user({"text": "first"}),
            user({"functionCall": {"name": "search", "args": {}}}, role="model"),
            user({"functionResponse": {"name": "search", "response": {}}}),
            user({"text": "second"}, {"text": "question"}),
            user({"functionCall": {"name": "search", "args": {}}}, role="model"),
            user({"functionResponse": {"name": "search", "response": {}}}),
            user({"functionResponse": {"name": "fetch", "response": {}}}),
        ],
        "tools": [{"functionDeclarations": [{"name": "search"}, {"name": "fetch"}]}, {"googleSearch": {}}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["search"]}},
    }
    request = view(body)
    assert request.conversation(100) == ("second question", "Be terse.", 2)
    use = request.tool_use()
    assert (use.tools, use.choice, use.results, use.depth) == (3, "named", 3, 2)
    assert use.forced


@pytest.mark.parametrize(
    ("mode", "choice"), [("AUTO", "auto"), ("NONE", "none"), ("ANY", "required"), ("VALIDATED", "auto")]
)
def test_function_calling_modes(mode: str, choice: str) -> None:
    assert view({"toolConfig": {"functionCallingConfig": {"mode": mode}}}).tool_choice == choice


def test_structured_output() -> None:
    assert view({"generationConfig": {"responseMimeType": "application/json"}}).structured_output
    assert view({"generationConfig": {"responseSchema": {"type": "OBJECT"}}}).structured_output
    assert not view({"generationConfig": {"responseMimeType": "text/plain"}}).structured_output


def test_media_parts_cost_a_fixed_estimate_not_their_base64_length() -> None:
    image = {"inlineData": {"mimeType": "image/png", "data": "A" * 400_000}}
    body = {"contents": [user({"text": "x" * 396}, image, {"fileData": {"fileUri": "https://x/y.pdf"}})]}
    size = view(body).input_size()
    assert (size.text_bytes, size.media_parts, size.messages) == (396 + len("user"), 2, 1)
    assert estimate_input_tokens(view(body), 1.0, 1000) == 100 + 2000 + 4


class _Rules:
    default_model = None
    extra_parameters: tuple[str, ...] = ("labels",)


def _rules(model: str | None) -> UpstreamRules:
    assert model == "gemini-mock"
    return _Rules()


def test_check_renames_snake_case_in_place_and_allows_operator_extras() -> None:
    body = {"contents": [], "generation_config": {"candidate_count": 2}, "labels": {"team": "a"}}
    ADAPTER.check_request("generateContent", body, _rules, {"model": "gemini-mock"})
    assert body == {"contents": [], "generationConfig": {"candidateCount": 2}, "labels": {"team": "a"}}
    assert view(body).samples == 2


def test_the_fields_the_view_reads_in_either_spelling() -> None:
    """Below the declared levels nothing is renamed, and Google reads snake_case too: so does the view."""
    body = {
        "contents": [
            user({"text": "hi"}),
            user({"function_response": {"name": "f", "response": {}}}),
            user({"inline_data": {"mime_type": "image/png", "data": "A" * 10_000}}),
        ],
        "tools": [{"function_declarations": [{"name": "f"}, {"name": "g"}]}],
        "toolConfig": {"function_calling_config": {"mode": "ANY", "allowed_function_names": ["f"]}},
    }
    request = view(body)
    use = request.tool_use()
    assert (use.tools, use.choice, use.results) == (2, "named", 1)
    assert request.input_size().media_parts == 1 and request.input_size().text_bytes < 100

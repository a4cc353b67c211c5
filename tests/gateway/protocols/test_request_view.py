"""The request view: one reading of what a request asks for, per operation, and edits through it."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.protocols import OPERATIONS
from gateway.protocols.request_view import RequestView

OPS = {op.name: op for op in OPERATIONS.values()}


def view(operation: str, body: dict[str, Any]) -> RequestView:
    return OPS[operation].adapter.request_view(OPS[operation].name, body)


def extract_text(operation: str, body: dict[str, Any], budget: int) -> tuple[str, str, int]:
    return view(operation, body).conversation(budget)


def test_chat_last_user_turn_and_system() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "second"}]},
        ]
    }
    assert extract_text("chat.completions", body, 100) == ("second", "Be terse.", 2)


def test_messages_responses_and_completions() -> None:
    anthropic = {"system": [{"type": "text", "text": "sys"}], "messages": [{"role": "user", "content": "hi"}]}
    assert extract_text("messages", anthropic, 100) == ("hi", "sys", 1)
    responses = {"input": "question", "instructions": "rules", "previous_response_id": "resp_1"}
    assert extract_text("responses", responses, 100) == ("question", "rules", 2)
    assert extract_text("completions", {"prompt": "Once upon"}, 100) == ("Once upon", "", 1)


def test_text_is_bounded() -> None:
    body = {"messages": [{"role": "user", "content": "x" * 10_000}]}
    user, _, _ = extract_text("chat.completions", body, 500)
    assert len(user) == 501  # 350 head + newline + 150 tail
    body = {"messages": [{"role": "user", "content": "a" * 5000 + "TAIL"}]}
    assert extract_text("chat.completions", body, 500)[0].endswith("aTAIL")


@pytest.mark.parametrize(
    ("operation", "body", "asks"),
    [
        # the cases the quota, the detector and the logprobs policy used to answer differently
        ("completions", {"prompt": "p", "logprobs": 0}, True),  # the sampled token's own logprob
        ("chat.completions", {"messages": [], "prompt_logprobs": 0}, True),  # each prompt token's own
        ("completions", {"prompt": "p", "prompt_logprobs": 0}, True),
        ("chat.completions", {"messages": [], "logprob_token_ids": [5]}, True),
        ("responses", {"input": "x", "top_logprobs": 0}, True),
        ("responses", {"input": "x", "include": ["message.output_text.logprobs"]}, True),
        ("responses", {"input": "x", "include": ["reasoning.encrypted_content"]}, False),
        ("chat.completions", {"messages": [], "logprobs": False, "top_logprobs": 0}, False),
        ("chat.completions", {"messages": [], "top_logprobs": 3}, True),
        ("completions", {"prompt": "p", "echo": True}, False),
        ("messages", {"messages": [], "logprobs": True}, False),  # Anthropic has none
    ],
)
def test_one_answer_to_does_it_ask_for_logprobs(operation: str, body: dict[str, Any], asks: bool) -> None:
    assert view(operation, body).logprobs.any is asks


def test_samples_and_output_cap_per_operation() -> None:
    chat = view("chat.completions", {"messages": [], "n": 3, "max_completion_tokens": 50, "max_tokens": 9})
    assert (chat.samples, chat.max_output_tokens, chat.max_output_tokens_param) == (
        3,
        50,
        "max_completion_tokens",
    )
    completions = view("completions", {"prompt": "p", "n": 2, "best_of": 5})
    assert completions.samples == 5 and completions.max_output_tokens is None
    assert completions.max_output_tokens_param == "max_tokens"
    messages = view("messages", {"messages": [], "n": 9, "max_tokens": 512})
    assert (messages.samples, messages.max_output_tokens) == (1, 512)


def test_edits_go_to_the_body_in_the_operations_own_fields() -> None:
    body: dict[str, Any] = {"prompt": "p", "logprobs": 5, "echo": True, "prompt_logprobs": 3, "n": 4}
    completions = view("completions", body)
    completions.set_alternatives(2)
    completions.set_sample_count("n", 1)
    assert body["logprobs"] == 2 and body["n"] == 1
    completions.drop_logprobs()
    assert body == {"prompt": "p", "n": 1}
    responses_body: dict[str, Any] = {"input": "x", "include": ["message.output_text.logprobs", "other"]}
    responses = view("responses", responses_body)
    assert responses.logprobs_param == "include"
    responses.drop_sampled_logprobs()
    assert responses_body == {"input": "x", "include": ["other"]} and not responses.logprobs.any
    chat_body: dict[str, Any] = {"messages": [], "logit_bias": {"5": 10}, "logprobs": True, "top_logprobs": 4}
    chat = view("chat.completions", chat_body)
    assert chat.logit_bias == {"5": 10} and chat.alternatives_param == "top_logprobs"
    chat.set_logit_bias({"5": 1})
    chat.drop_sampled_logprobs()
    assert chat_body == {"messages": [], "logit_bias": {"5": 1}}


def test_input_size_counts_prompt_fields_only() -> None:
    size = view("completions", {"prompt": [1, 2, 3], "suffix": "abcd", "temperature": 1}).input_size()
    assert (size.text_bytes, size.token_ids, size.messages) == (4, 3, 0)
    image = {"type": "input_image", "image_url": "data:" + "A" * 10_000}
    size = view(
        "responses", {"input": [{"role": "user", "content": [image]}], "instructions": "ab"}
    ).input_size()
    assert (size.text_bytes, size.media_parts, size.messages) == (2 + len("user"), 1, 1)


def test_reasoning_parameters_per_operation() -> None:
    chat = view(
        "chat.completions", {"messages": [], "reasoning_effort": "high", "reasoning": {"max_tokens": 900}}
    )
    assert [(a.param, a.value) for a in chat.reasoning_efforts()] == [("reasoning_effort", "high")]
    assert chat.reasoning_budget is not None and chat.reasoning_budget.tokens == 900
    assert chat.limit_reasoning_budget(100) == "clamped:reasoning.max_tokens"
    assert chat.body["reasoning"] == {"max_tokens": 100}
    responses = view(
        "responses",
        {"input": "x", "reasoning": {"effort": "low"}, "include": ["reasoning.encrypted_content"]},
    )
    assert [a.param for a in responses.reasoning_efforts()] == ["reasoning.effort"]
    assert responses.asks_encrypted_reasoning
    responses.drop_encrypted_reasoning()
    assert not responses.asks_encrypted_reasoning and responses.body["include"] == []


def test_anthropic_thinking_budget_follows_the_apis_rules() -> None:
    body: dict[str, Any] = {
        "messages": [],
        "max_tokens": 1500,
        "thinking": {"type": "enabled", "budget_tokens": 9000},
    }
    messages = view("messages", body)
    assert messages.reasoning_budget is not None and messages.reasoning_budget.tokens == 9000
    assert messages.limit_reasoning_budget(4000) == "clamped:thinking.budget_tokens"
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1499}  # below max_tokens
    body = {"messages": [], "max_tokens": 8000, "thinking": {"type": "adaptive"}}
    messages = view("messages", body)
    assert messages.reasoning_budget is not None and messages.reasoning_budget.tokens is None
    assert messages.limit_reasoning_budget(500) == "clamped:thinking.disabled"  # under the API's 1024 minimum
    assert body["thinking"] == {"type": "disabled"}
    hidden = view("messages", {"messages": [], "thinking": {"type": "enabled", "budget_tokens": 2000}})
    assert hidden.hide_upstream_reasoning()
    assert hidden.body["thinking"]["display"] == "omitted"
    effort = view("messages", {"messages": [], "output_config": {"effort": "max"}}).reasoning_efforts()
    assert [(a.param, a.lowest) for a in effort] == [("output_config.effort", "low")]


def test_structured_output_and_echo() -> None:
    assert view(
        "chat.completions", {"messages": [], "response_format": {"type": "json_schema"}}
    ).structured_output
    assert not view(
        "chat.completions", {"messages": [], "response_format": {"type": "text"}}
    ).structured_output
    assert view("responses", {"input": "x", "text": {"format": {"type": "json_object"}}}).structured_output
    assert view("completions", {"prompt": "Once", "echo": True}).echoed_prompt_chars == 4
    assert view("completions", {"prompt": [1, 2], "echo": True}).echoed_prompt_chars == 0
    assert view("messages", {"messages": []}).echoed_prompt_chars == 0


_TOOL = {"type": "function", "function": {"name": "read_file", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    ("operation", "body", "choice"),
    [
        ("chat.completions", {"tool_choice": "required"}, "required"),
        ("chat.completions", {"tool_choice": {"type": "function", "function": {"name": "f"}}}, "named"),
        ("chat.completions", {"function_call": {"name": "f"}}, "named"),
        ("chat.completions", {"tool_choice": "auto"}, "auto"),
        ("chat.completions", {}, None),
        (
            "responses",
            {"tool_choice": {"type": "allowed_tools", "mode": "required", "tools": []}},
            "required",
        ),
        ("responses", {"tool_choice": {"type": "function", "name": "f"}}, "named"),
        ("messages", {"tool_choice": {"type": "any"}}, "required"),
        ("messages", {"tool_choice": {"type": "tool", "name": "f"}}, "named"),
        ("messages", {"tool_choice": {"type": "none"}}, "none"),
        ("completions", {"tool_choice": "required"}, "required"),  # read as sent; the API has no tools
    ],
)
def test_tool_choice_is_one_reading_across_apis(
    operation: str, body: dict[str, Any], choice: str | None
) -> None:
    use = view(operation, body).tool_use()
    assert use.choice == choice
    assert use.forced is (choice in ("required", "named"))


def test_tool_results_and_agent_loop_depth_per_api() -> None:
    chat = {
        "tools": [_TOOL, _TOOL, _TOOL],
        "messages": [
            {"role": "user", "content": "fix the bug"},
            {"role": "assistant", "tool_calls": [{"id": "1"}]},
            {"role": "tool", "tool_call_id": "1", "content": "file text"},
            {"role": "user", "content": "now the tests"},
            {"role": "assistant", "tool_calls": [{"id": "2"}, {"id": "3"}]},
            {"role": "tool", "tool_call_id": "2", "content": "ok"},
            {"role": "tool", "tool_call_id": "3", "content": "ok"},
        ],
    }
    use = view("chat.completions", chat).tool_use()
    assert (use.tools, use.results, use.depth) == (3, 3, 2)
    responses = {
        "tools": [{"type": "function", "name": "f"}],
        "input": [
            {"role": "user", "content": "go"},
            {"type": "function_call", "call_id": "a", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "a", "output": "1"},
            {"type": "function_call_output", "call_id": "b", "output": "2"},
        ],
    }
    assert view("responses", responses).tool_results() == (2, 2)
    assert view("responses", {"input": "plain"}).tool_results() == (0, 0)
    anthropic = {
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "plan it"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "out 1"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t2", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t2", "content": "out 2"}]},
        ],
    }
    use = view("messages", anthropic).tool_use()
    assert (use.tools, use.results, use.depth) == (1, 2, 2)
    # A message of tool results is not a turn a person wrote: the instruction stays the last user text.
    assert view("messages", anthropic).conversation(100) == ("plan it", "", 1)
    anthropic["messages"].append(
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t3"}, {"type": "text", "text": "next"}],
        }
    )
    assert view("messages", anthropic).tool_results() == (3, 1)  # a person wrote in that turn too
    assert view("completions", {"prompt": "x"}).tool_use().results == 0

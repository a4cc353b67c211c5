"""The parameters of each model operation: checked, accepted, refused (see params.py).

Sources, read rather than guessed: the official SDKs' request types (``openai`` 2.x
``completion_create_params``, ``chat.completion_create_params``, ``responses.response_create_params``;
``anthropic`` ``message_create_params``), vLLM's ``vllm/entrypoints/openai/protocol.py``
(``ChatCompletionRequest``, ``CompletionRequest``, ``ResponsesRequest``) and llama.cpp's server
(``params_from_json_cmpl``).

*Checked* are the parameters a built-in policy or the quota decides on, each with its exact JSON
type; null is accepted where the OpenAI API accepts it (its optional parameters) and nowhere on
Anthropic's. *Accepted* parameters are forwarded unchecked: no policy reads them and they only
shape sampling or formatting. *Refused* parameters are understood by some server and would go
around a policy (a second way to ask for logprobs or more tokens, server-side code or templates,
another tenant's scheduling or cache slot); an operator who needs one lists it in
``upstreams[].extra_parameters``.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.protocols.params import Declaration, Param, param

# -- shapes ------------------------------------------------------------------------------------

_TOKEN_ID = r"0|[1-9][0-9]{0,9}"


def _int(minimum: int, *, null: bool = True) -> Param:
    return param("integer", "null", minimum=minimum) if null else param("integer", minimum=minimum)


_BOOL = param("boolean", "null")
_STRING = param("string", "null")
_STRINGS = param("array", "null", items=param("string"))
_LOGIT_BIAS = param("object", "null", values=param("number"), key_pattern=_TOKEN_ID)
_STREAM_OPTIONS = param(
    "object",
    "null",
    fields={"include_usage": _BOOL, "include_obfuscation": _BOOL, "continuous_usage_stats": _BOOL},
)
_TOKEN_IDS = param("array", "null", items=param("integer"))

# -- parameters shared by the OpenAI-compatible operations -------------------------------------

# vLLM sampling and formatting extras that no policy needs to see.
_VLLM_ACCEPTED = frozenset(
    {
        "top_k",
        "min_p",
        "repetition_penalty",
        "length_penalty",
        "stop_token_ids",
        "include_stop_str_in_output",
        "ignore_eos",
        "min_tokens",
        "skip_special_tokens",
        "spaces_between_special_tokens",
        "truncate_prompt_tokens",
        "add_special_tokens",
        "guided_json",
        "guided_regex",
        "guided_choice",
        "guided_grammar",
        "guided_decoding_backend",
        "guided_whitespace_pattern",
        "structural_tag",
        "structured_outputs",
        "cache_salt",
        "mm_processor_kwargs",
    }
)
# llama.cpp sampling extras (params_from_json_cmpl).
_LLAMACPP_ACCEPTED = frozenset(
    {
        "typical_p",
        "dynatemp_range",
        "dynatemp_exponent",
        "xtc_probability",
        "xtc_threshold",
        "top_n_sigma",
        "repeat_penalty",
        "repeat_last_n",
        "dry_multiplier",
        "dry_base",
        "dry_allowed_length",
        "dry_penalty_last_n",
        "dry_sequence_breakers",
        "mirostat",
        "mirostat_tau",
        "mirostat_eta",
        "samplers",
        "cache_prompt",
        "grammar",
        "json_schema",
        "timings_per_token",
        "t_max_predict_ms",
    }
)
_SERVER_REFUSED: Mapping[str, str] = {
    "logits_processors": "it runs server-side code chosen by the client.",
    "vllm_xargs": "it passes arbitrary arguments to server extensions.",
    "kv_transfer_params": "it reaches the server's KV-cache transfer.",
    "return_tokens_as_token_ids": "it changes logprob entries in a way the logprobs policy does not handle.",
    "return_token_ids": "it returns token ids the policies do not filter.",
    "return_tokens": "it returns token ids the policies do not filter.",
    "prompt_embeds": "raw embeddings are not checked by any policy.",
    "allowed_token_ids": "restricting the vocabulary is a logit-bias attack no policy limits.",
    "bad_words": "banning tokens is a logit-bias attack no policy limits.",
    "use_beam_search": "beam search is not handled by the policies.",
    "chat_template": "the chat template is the server's.",
    "chat_template_kwargs": "the chat template's switches are the server's (ask the operator to declare it).",
    "add_generation_prompt": "it lets the client pre-fill the answer around the reasoning policy.",
    "continue_final_message": "it lets the client pre-fill the answer around the reasoning policy.",
    "priority": "scheduling priority is the operator's to set.",
    "request_id": "the upstream request id is the gateway's to set.",
    "id_slot": "the server's slots are not the client's to choose.",
    "n_predict": "it is a second max_tokens the quota does not read; use max_tokens.",
    "n_probs": "it returns token probabilities the logprobs policy does not handle.",
    "post_sampling_probs": "it returns token probabilities the logprobs policy does not handle.",
    "reasoning_format": "it changes how reasoning is returned, which the reasoning policy relies on.",
}

_OPENAI_CHAT_ACCEPTED = frozenset(
    {
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "metadata",
        "modalities",
        "moderation",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "response_format",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "store",
        "temperature",
        "tool_choice",
        "tools",
        "top_p",
        "user",
        "verbosity",
        "web_search_options",
        "include_reasoning",  # vLLM: false only removes reasoning
        "documents",  # vLLM: RAG documents for the chat template
    }
)

CHAT = Declaration(
    checked={
        "model": param("string"),
        "messages": param("array", items=param("object")),
        "stream": _BOOL,
        "stream_options": _STREAM_OPTIONS,
        "n": _int(1),
        "max_tokens": _int(1),
        "max_completion_tokens": _int(1),
        "logprobs": _BOOL,
        "top_logprobs": _int(0),
        "logit_bias": _LOGIT_BIAS,
        "reasoning_effort": _STRING,
        "reasoning": param(
            "object",
            "null",
            fields={"effort": _STRING, "max_tokens": _int(0), "exclude": _BOOL, "enabled": _BOOL},
        ),
        "prompt_logprobs": _int(0),
        "logprob_token_ids": _TOKEN_IDS,
    },
    accepted=_OPENAI_CHAT_ACCEPTED | _VLLM_ACCEPTED | _LLAMACPP_ACCEPTED,
    refused={
        **_SERVER_REFUSED,
        "echo": "on chat (vLLM) it returns the prompt's logprobs, which the logprobs policy does not handle.",
        "best_of": "no policy limits it on chat completions.",
    },
)

COMPLETIONS = Declaration(
    checked={
        "model": param("string"),
        "prompt": param(
            "string",
            "array",
            items=param("string", "integer", "array", items=param("integer")),
        ),
        "suffix": _STRING,
        "stream": _BOOL,
        "stream_options": _STREAM_OPTIONS,
        "n": _int(1),
        "best_of": _int(1),
        "max_tokens": _int(0),  # 0 with echo: the prompt only (vLLM)
        "logprobs": _int(0),
        "echo": _BOOL,
        "logit_bias": _LOGIT_BIAS,
        "prompt_logprobs": _int(0),
        "logprob_token_ids": _TOKEN_IDS,
    },
    accepted=frozenset(
        {"frequency_penalty", "presence_penalty", "seed", "stop", "temperature", "top_p", "user"}
    )
    | {"response_format"}
    | _VLLM_ACCEPTED
    | _LLAMACPP_ACCEPTED,
    refused=_SERVER_REFUSED,
)

RESPONSES = Declaration(
    checked={
        "model": param("string"),
        "input": param("string", "array", "null"),
        "instructions": _STRING,
        "previous_response_id": _STRING,
        "stream": _BOOL,
        "stream_options": _STREAM_OPTIONS,
        "max_output_tokens": _int(1),
        "top_logprobs": _int(0),
        "include": _STRINGS,
        "reasoning": param(
            "object",
            "null",
            fields={"effort": _STRING, "summary": _STRING, "generate_summary": _STRING},
        ),
    },
    accepted=frozenset(
        {
            "access_programs",
            "context_management",
            "conversation",
            "image",
            "max_tool_calls",
            "metadata",
            "moderation",
            "parallel_tool_calls",
            "prompt",
            "prompt_cache_key",
            "prompt_cache_options",
            "prompt_cache_retention",
            "safety_identifier",
            "service_tier",
            "store",
            "temperature",
            "text",
            "tool_choice",
            "tools",
            "top_p",
            "truncation",
            "user",
            "cache_salt",
            "mm_processor_kwargs",
        }
    ),
    refused={
        "background": "a background response is fetched later, on a route no policy covers.",
        "background_options": "a background response is fetched later, on a route no policy covers.",
        "priority": _SERVER_REFUSED["priority"],
        "request_id": _SERVER_REFUSED["request_id"],
    },
)

MESSAGES = Declaration(
    checked={
        "model": param("string"),
        "messages": param("array", items=param("object")),
        "system": param("string", "array"),
        "max_tokens": param("integer", minimum=1),
        "stream": param("boolean"),
        "thinking": param(
            "object",
            fields={
                "type": param("string"),
                "budget_tokens": param("integer", minimum=0),
                "display": param("string"),
            },
        ),
        "output_config": param("object", fields={"effort": param("string")}),
        "tools": param("array"),
    },
    accepted=frozenset(
        {
            "cache_control",
            "container",
            "diagnostics",
            "inference_geo",
            "metadata",
            "service_tier",
            "speed",
            "stop_sequences",
            "tool_choice",
            "user_profile_id",
            "workspace_id",
            # Sampling, in the API reference (newer SDKs leave them out of their types).
            "temperature",
            "top_k",
            "top_p",
        }
    ),
    refused={},
)

DECLARATIONS: Mapping[str, Declaration] = {
    "chat.completions": CHAT,
    "completions": COMPLETIONS,
    "responses": RESPONSES,
    "messages": MESSAGES,
}

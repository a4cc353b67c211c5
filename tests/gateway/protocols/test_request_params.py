"""Attacks on the parameters the policies decide on, against a mock that coerces types as vLLM does.

Each type-confused variant would be served by the upstream (``"n": "8"`` is 8 choices there) while
the policies, which read exact JSON types, would see no such parameter. The gateway refuses it with
a 400 naming the parameter, and the upstream receives nothing. Honest requests from the official
SDKs still pass; unknown and server-specific parameters are refused unless the operator declares
them; a missing model is refused or set to the configured default before the quota counts it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.support import GatewayHandle, MockHandle, base_config

CHAT = {"model": "mock-small", "messages": [{"role": "user", "content": "hi"}]}
COMPLETION = {"model": "mock-small", "prompt": "hi"}
RESPONSE = {"model": "mock-small", "input": "hi"}
MESSAGE = {"model": "claude-mock", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}
BASES = {
    "/v1/chat/completions": CHAT,
    "/v1/completions": COMPLETION,
    "/v1/responses": RESPONSE,
    "/v1/messages": MESSAGE,
}

# Wrong-typed variants of each JSON type, as a client probing a coercing server would send them.
WRONG: dict[str, list[Any]] = {
    "integer": ["8", " 8", 8.0, 8.5, True, [8], {"value": 8}],
    "boolean": ["true", "1", 1, 0, 1.0, [True], {"value": True}],
    "string": [8, 1.5, True, ["low"], {"value": "low"}],
    "array": ["hi", 8, True, {"value": "hi"}],
    "object": ["{}", 8, True, [1]],
    "logit_bias": [[[1, 5]], "1:5", {"1": "5"}, {"1": True}, {"one": 5}, {"1": [5]}],
}
# (route, parameter, expected type): the parameters the policies and the quota decide on.
PARAMETERS = [
    *(
        ("/v1/chat/completions", name, kind)
        for name, kind in [
            ("model", "string"),
            ("messages", "array"),
            ("stream", "boolean"),
            ("stream_options", "object"),
            ("n", "integer"),
            ("max_tokens", "integer"),
            ("max_completion_tokens", "integer"),
            ("logprobs", "boolean"),
            ("top_logprobs", "integer"),
            ("prompt_logprobs", "integer"),
            ("logit_bias", "logit_bias"),
            ("reasoning_effort", "string"),
            ("reasoning", "object"),
        ]
    ),
    *(
        ("/v1/completions", name, kind)
        for name, kind in [
            ("model", "string"),
            ("stream", "boolean"),
            ("stream_options", "object"),
            ("n", "integer"),
            ("best_of", "integer"),
            ("max_tokens", "integer"),
            ("logprobs", "integer"),
            ("echo", "boolean"),
            ("prompt_logprobs", "integer"),
            ("logit_bias", "logit_bias"),
        ]
    ),
    *(
        ("/v1/responses", name, kind)
        for name, kind in [
            ("model", "string"),
            ("stream", "boolean"),
            ("max_output_tokens", "integer"),
            ("top_logprobs", "integer"),
            ("include", "array"),
            ("reasoning", "object"),
        ]
    ),
    *(
        ("/v1/messages", name, kind)
        for name, kind in [
            ("model", "string"),
            ("messages", "array"),
            ("stream", "boolean"),
            ("max_tokens", "integer"),
            ("thinking", "object"),
            ("output_config", "object"),
        ]
    ),
]
# Nested parameters: (route, parameter, path in the body, wrong values).
NESTED = [
    ("/v1/chat/completions", "stream_options.include_usage", ("stream_options", "include_usage"), "boolean"),
    ("/v1/chat/completions", "reasoning.effort", ("reasoning", "effort"), "string"),
    ("/v1/chat/completions", "reasoning.max_tokens", ("reasoning", "max_tokens"), "integer"),
    ("/v1/responses", "reasoning.effort", ("reasoning", "effort"), "string"),
    ("/v1/messages", "thinking.budget_tokens", ("thinking", "budget_tokens"), "integer"),
    ("/v1/messages", "thinking.type", ("thinking", "type"), "string"),
    ("/v1/messages", "output_config.effort", ("output_config", "effort"), "string"),
]


@pytest.fixture(scope="module")
def coercing() -> Iterator[MockHandle]:
    handle = MockHandle(coerce=True).start()
    yield handle
    handle.stop()


@pytest.fixture
def gw_for(coercing: MockHandle, start_gateway: Callable[..., GatewayHandle]) -> Callable[..., GatewayHandle]:
    def start(**overrides: Any) -> GatewayHandle:
        coercing.reset()
        return start_gateway(base_config(coercing.url, **overrides))

    return start


@pytest.fixture
def gw(gw_for: Callable[..., GatewayHandle]) -> GatewayHandle:
    return gw_for()


def free_tier(*policies: dict[str, Any]) -> dict[str, Any]:
    """The test tiers with ``policies`` on the free tier (the tier of ``gw.key()``)."""
    return {"free": {"policies": list(policies)}, "pro": {"policies": []}, "trusted": {"policies": []}}


def post(gw: GatewayHandle, route: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{gw.url}{route}", json=body, headers={"authorization": f"Bearer {gw.key()}"}, timeout=10
    )


def assert_refused(response: httpx.Response, route: str, param: str) -> None:
    assert response.status_code == 400, (param, response.text)
    body = response.json()
    if route == "/v1/messages":
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
        assert f"'{param}'" in body["error"]["message"], body
    else:
        assert body["error"]["type"] == "invalid_request_error"
        assert body["error"]["param"] == param, body


def test_the_mock_coerces_as_vllm_does(coercing: MockHandle) -> None:
    """The premise: straight to the coercing upstream, loose types are served."""
    reply = httpx.post(f"{coercing.url}/v1/chat/completions", json={**CHAT, "n": "3"}, timeout=10).json()
    assert len(reply["choices"]) == 3
    streamed = httpx.post(f"{coercing.url}/v1/chat/completions", json={**CHAT, "stream": "true"}, timeout=10)
    assert streamed.headers["content-type"].startswith("text/event-stream")


@pytest.mark.parametrize(("route", "name", "kind"), PARAMETERS)
def test_type_confused_parameter_is_refused(
    gw: GatewayHandle, coercing: MockHandle, route: str, name: str, kind: str
) -> None:
    variants = list(WRONG[kind])
    if route == "/v1/messages" or name in ("model", "messages"):
        variants.append(None)  # Anthropic takes no nulls; model and messages are never optional
    for value in variants:
        response = post(gw, route, {**BASES[route], name: value})
        expected = name
        if name == "logit_bias" and isinstance(value, dict):
            expected = "logit_bias" if "one" in value else f"logit_bias.{next(iter(value))}"
        if name == "model" and value is None:
            assert response.status_code == 400 and "model" in response.text  # no default configured
            continue
        assert_refused(response, route, expected)
    assert coercing.requests() == []


@pytest.mark.parametrize(("route", "name", "path", "kind"), NESTED)
def test_type_confused_nested_parameter_is_refused(
    gw: GatewayHandle, coercing: MockHandle, route: str, name: str, path: tuple[str, str], kind: str
) -> None:
    for value in [*WRONG[kind], *([None] if route == "/v1/messages" else [])]:
        outer, inner = path
        base = {"type": "enabled", "budget_tokens": 2048} if outer == "thinking" else {}
        body = {**BASES[route], outer: {**base, inner: value}}
        if outer == "stream_options":
            body["stream"] = True
        assert_refused(post(gw, route, body), route, name)
    assert coercing.requests() == []


def test_negative_counts_are_refused(gw: GatewayHandle, coercing: MockHandle) -> None:
    """vLLM reads logprobs -1 as the whole vocabulary; a cap that tests `value > limit` would pass it."""
    for route, name in [
        ("/v1/completions", "logprobs"),
        ("/v1/chat/completions", "top_logprobs"),
        ("/v1/chat/completions", "prompt_logprobs"),
        ("/v1/chat/completions", "n"),
    ]:
        response = post(gw, route, {**BASES[route], name: -1})
        assert_refused(response, route, name)
    assert coercing.requests() == []


def test_loose_stream_and_max_tokens_do_not_escape_the_quota(
    gw_for: Callable[..., GatewayHandle], coercing: MockHandle
) -> None:
    """'"stream": "true", "max_tokens": "30000"' would stream uncounted and be charged the default."""
    gw = gw_for(tiers=free_tier({"name": "quota", "config": {"tokens_per_minute": 20000}}))
    response = post(gw, "/v1/chat/completions", {**CHAT, "stream": "true", "max_tokens": "30000"})
    assert_refused(response, "/v1/chat/completions", "stream")
    honest = post(gw, "/v1/chat/completions", {**CHAT, "stream": True, "max_tokens": 30000})
    assert honest.status_code in (400, 429) and "tokens" in honest.json()["error"]["message"]  # the quota's
    assert coercing.requests() == []


@pytest.mark.parametrize(
    ("route", "name", "value"),
    [
        ("/v1/chat/completions", "frobnicate", 1),
        ("/v1/chat/completions", "vllm_xargs", {"a": 1}),
        ("/v1/chat/completions", "logits_processors", ["my.module.Proc"]),
        ("/v1/chat/completions", "return_tokens_as_token_ids", True),
        ("/v1/chat/completions", "echo", True),
        ("/v1/chat/completions", "continue_final_message", True),
        ("/v1/chat/completions", "reasoning_format", "none"),
        ("/v1/completions", "n_probs", 10),
        ("/v1/completions", "n_predict", 30000),
        ("/v1/completions", "post_sampling_probs", True),
        ("/v1/completions", "allowed_token_ids", [1, 2]),
        ("/v1/responses", "background", True),
        ("/v1/messages", "frobnicate", 1),
    ],
)
def test_undeclared_parameter_is_refused(
    gw: GatewayHandle, coercing: MockHandle, route: str, name: str, value: Any
) -> None:
    assert_refused(post(gw, route, {**BASES[route], name: value}), route, name)
    assert coercing.requests() == []


def test_operator_declared_extra_parameter_is_forwarded(
    gw_for: Callable[..., GatewayHandle], coercing: MockHandle
) -> None:
    config = base_config(coercing.url)
    config["upstreams"][0]["extra_parameters"] = ["reasoning_format", "frobnicate"]
    gw = gw_for(upstreams=config["upstreams"])
    body = {**CHAT, "reasoning_format": "none", "frobnicate": {"any": ["shape"]}}
    assert post(gw, "/v1/chat/completions", body).status_code == 200
    received = coercing.requests()[-1]["body"]
    assert received["reasoning_format"] == "none" and received["frobnicate"] == {"any": ["shape"]}
    # Declared for the OpenAI upstream only; checked parameters stay checked.
    assert_refused(post(gw, "/v1/messages", {**MESSAGE, "frobnicate": 1}), "/v1/messages", "frobnicate")
    assert_refused(post(gw, "/v1/chat/completions", {**body, "n": "2"}), "/v1/chat/completions", "n")


@pytest.mark.parametrize("route", list(BASES))
def test_missing_model_is_refused(gw: GatewayHandle, coercing: MockHandle, route: str) -> None:
    body = {k: v for k, v in BASES[route].items() if k != "model"}
    for sent in (body, {**body, "model": None}):
        response = post(gw, route, sent)
        assert response.status_code == 400, response.text
        assert "model" in response.text
        if route != "/v1/messages":
            assert response.json()["error"]["param"] == "model"
    assert coercing.requests() == []


def test_default_model_is_resolved_before_the_quota(
    gw_for: Callable[..., GatewayHandle], coercing: MockHandle
) -> None:
    """A request that names no model is the default model's: its per-model limit (2/min) applies."""
    config = base_config(coercing.url)
    config["upstreams"][0]["default_model"] = "mock-reasoner"
    quota = {"requests_per_minute": 100, "models": {"mock-reasoner": {"requests_per_minute": 2}}}
    gw = gw_for(
        upstreams=config["upstreams"],
        tiers=free_tier({"name": "quota", "config": quota}),
    )
    no_model = {"messages": CHAT["messages"]}
    statuses = [post(gw, "/v1/chat/completions", no_model).status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]
    assert [r["body"]["model"] for r in coercing.requests()] == ["mock-reasoner", "mock-reasoner"]
    assert post(gw, "/v1/chat/completions", CHAT).status_code == 200  # another model: its own limit


def test_default_model_meets_open_think_models(
    gw_for: Callable[..., GatewayHandle], coercing: MockHandle
) -> None:
    """An R1-style stream from the default model loses its reasoning: the glob sees the model's name."""
    config = base_config(coercing.url)
    config["upstreams"][0]["default_model"] = "deepseek-r1-mock"
    gw = gw_for(
        upstreams=config["upstreams"],
        tiers=free_tier({"name": "reasoning", "config": {"mode": "drop"}}),
    )
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=gw.key(), max_retries=0)
    raw = httpx.post(
        f"{coercing.url}/v1/chat/completions",
        json={**CHAT, "model": "deepseek-r1-mock"},
        headers={"x-mock-reasoning": "think-open"},
        timeout=10,
    ).json()["choices"][0]["message"]["content"]
    reasoning, answer = raw.split("</think>", 1)
    chunks = client.chat.completions.create(
        model=openai.NOT_GIVEN,  # type: ignore[arg-type]
        messages=CHAT["messages"],  # type: ignore[arg-type]
        stream=True,
        extra_headers={"x-mock-reasoning": "think-open"},
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed.strip() == answer.strip()
    assert reasoning.strip()[:40] not in streamed


def test_official_sdks_pass(gw: GatewayHandle, coercing: MockHandle) -> None:
    """What honest clients send through the official SDKs is declared and well typed."""
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=gw.key(), max_retries=0)
    messages: Any = CHAT["messages"]
    chat = client.chat.completions.create(
        model="mock-small",
        messages=messages,
        max_tokens=16,
        temperature=0.2,
        top_p=0.9,
        n=2,
        seed=7,
        stop=["\n\n"],
        presence_penalty=0.1,
        frequency_penalty=0.1,
        logprobs=True,
        top_logprobs=2,
        logit_bias={"5": 1},
        user="u-1",
        metadata={"k": "v"},
        response_format={"type": "text"},
        tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        tool_choice="none",
        reasoning_effort="low",
        extra_body={"top_k": 20, "min_p": 0.05, "repetition_penalty": 1.1},
    )
    assert len(chat.choices) == 2
    streamed = client.chat.completions.create(
        model="mock-small", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    assert [c for c in streamed if c.usage]
    completion = client.completions.create(
        model="mock-small", prompt=["hi", "there"], max_tokens=8, logprobs=2, echo=False, best_of=1, n=1
    )
    assert completion.choices
    response = client.responses.create(
        model="mock-small",
        input=[{"role": "user", "content": "hi"}],
        instructions="be brief",
        max_output_tokens=32,
        reasoning={"effort": "low"},
        include=["message.output_text.logprobs"],
        top_logprobs=2,
        store=False,
    )
    assert response.output
    claude = anthropic.Anthropic(base_url=gw.url, api_key=gw.key(), max_retries=0)
    message = claude.messages.create(
        model="claude-mock",
        max_tokens=2048,
        system="be brief",
        messages=messages,
        stop_sequences=["END"],
        extra_body={"temperature": 1.0, "top_k": 5},  # in the API reference, no longer in the SDK's types
        metadata={"user_id": "u-1"},
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=[{"name": "f", "input_schema": {"type": "object"}}],
    )
    assert message.content
    with claude.messages.stream(model="claude-mock", max_tokens=64, messages=messages) as stream:
        assert stream.get_final_message().content
    assert len(coercing.requests()) == 6

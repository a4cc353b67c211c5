"""End to end: the gateway on a real socket in front of the mock upstream, the official SDKs as clients.

One gateway serves a tier per mode (account name = tier name) plus a second sealed account, so
every test reuses it. The mock's reasoning is English like its answers; a leak is any 20-character
window of the reasoning that is not also in the answer.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from gateway.auth.keys import digest
from gateway.mock.generation import generate
from tests.policies.reasoning.support import SEAL_SECRET
from tests.support import GatewayHandle, MockHandle, base_config, metric_value

MODES = ("drop", "redact", "summary", "seal", "allow")
LIMITS = {"max_reasoning_effort": "low", "max_budget_tokens": 2000, "allow_encrypted_include": False}
TIERS: dict[str, dict[str, Any]] = {
    **{mode: {"mode": mode} for mode in MODES},
    "seal": {"mode": "seal", "seal": {"chat": "inline"}},  # the field delivery: test_chat_delivery.py
    "limited": {"mode": "drop", "limits": {**LIMITS, "on_limit": "reject"}},
    "clamped": {"mode": "drop", "limits": {**LIMITS, "on_limit": "clamp"}},
}
ACCOUNTS = {**{tier: tier for tier in TIERS}, "seal2": "seal"}
PROMPT = "Explain how a cache decides what to evict."


def key(account: str) -> str:
    return f"dg-test-reasoning-{account}-key"


@pytest.fixture(scope="module")
def gw(mock_upstream: MockHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayHandle]:
    import os

    os.environ.setdefault("DISTILLGUARD_SEAL_KEY", SEAL_SECRET)
    config = base_config(
        mock_upstream.url,
        default_tier="drop",
        tiers={
            tier: {"policies": [{"name": "reasoning", "config": config}]} for tier, config in TIERS.items()
        },
        auth={
            "keys": [
                {"sha256": digest(key(account)), "account": account, "tier": tier}
                for account, tier in ACCOUNTS.items()
            ]
        },
    )
    handle = GatewayHandle(config, Path(tmp_path_factory.mktemp("reasoning-gw"))).start()
    yield handle
    handle.stop()


def oai(gw: GatewayHandle, account: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key(account), max_retries=0)


def ant(gw: GatewayHandle, account: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=key(account), max_retries=0)


def expected(body: dict[str, Any]) -> tuple[str, str]:
    """(reasoning, answer) the mock generates for this request."""
    gen = generate(body, max_tokens=None, with_reasoning=True, top_logprobs=None)
    return gen.reasoning, gen.text


def leaked(reasoning: str, answer: str, received: str, window: int = 20) -> list[str]:
    pieces = {reasoning[i : i + window] for i in range(len(reasoning) - window + 1)}
    return sorted(p for p in pieces if p not in answer and p in received)


def last_upstream_body(mock: MockHandle) -> dict[str, Any]:
    return mock.requests()[-1]["body"]  # type: ignore[no-any-return]


# -- Chat Completions ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fmt", ["reasoning_content", "reasoning", "think", "think-open"])
def test_chat_sdk(gw: GatewayHandle, mode: str, fmt: str) -> None:
    client = oai(gw, mode)
    model = "deepseek-r1-mock" if fmt == "think-open" else "mock-reasoner"  # open_think_models glob
    messages = [{"role": "user", "content": PROMPT}]
    headers = {"x-mock-reasoning": fmt}
    whole = client.chat.completions.create(model=model, messages=messages, extra_headers=headers)  # type: ignore[arg-type]
    chunks = list(
        client.chat.completions.create(model=model, messages=messages, extra_headers=headers, stream=True)  # type: ignore[arg-type]
    )
    message = whole.choices[0].message
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasoning, answer = expected({"messages": messages})
    content = message.content or ""
    assert answer in content
    extra = {k: v for k, v in (message.model_extra or {}).items() if k.startswith("reasoning")}
    stream_extra: dict[str, str] = {}
    for chunk in chunks:
        for name, value in (chunk.choices[0].delta.model_extra or {}).items() if chunk.choices else ():
            if name.startswith("reasoning") and isinstance(value, str):
                stream_extra[name] = stream_extra.get(name, "") + value
    if mode == "seal":  # blobs differ by their nonce only
        assert set(stream_extra) == set(extra)
        assert content.split("</think>")[-1] == streamed.split("</think>")[-1]
    else:
        assert streamed == content and stream_extra == extra
    everything = whole.model_dump_json() + "".join(c.model_dump_json() for c in chunks)
    if mode == "allow":
        assert reasoning in content or reasoning in extra.values()
        return
    assert leaked(reasoning, answer, everything) == []
    if mode == "redact":
        assert "[reasoning withheld:" in (content + "".join(extra.values()))
    if mode == "seal":
        assert "dgs1." in (content + "".join(extra.values()))


def test_chat_seal_round_trip(gw: GatewayHandle, mock_upstream: MockHandle) -> None:
    client = oai(gw, "seal")
    first = [{"role": "user", "content": PROMPT}]
    reasoning, _ = expected({"messages": first})
    for fmt in ("reasoning_content", "think"):
        chunks = list(
            client.chat.completions.create(
                model="mock-reasoner",
                messages=first,
                stream=True,
                extra_headers={"x-mock-reasoning": fmt},  # type: ignore[arg-type]
            )
        )
        assistant: dict[str, Any] = {"role": "assistant", "content": ""}
        for chunk in chunks:
            for name, value in (
                chunk.choices[0].delta.model_dump(exclude_none=True) if chunk.choices else {}
            ).items():
                if isinstance(value, str) and name != "role":
                    assistant[name] = assistant.get(name, "") + value
        assert reasoning not in str(assistant)
        second = [*first, assistant, {"role": "user", "content": "Go on."}]
        client.chat.completions.create(
            model="mock-reasoner", messages=second, extra_headers={"x-mock-reasoning": fmt}
        )  # type: ignore[arg-type]
        received = last_upstream_body(mock_upstream)["messages"][1]
        if fmt == "think":
            assert received["content"].startswith(f"<think>{reasoning}</think>")
        else:
            assert received["reasoning_content"] == reasoning


def test_tampered_and_foreign_blobs_are_refused(gw: GatewayHandle) -> None:
    first = [{"role": "user", "content": PROMPT}]
    message = oai(gw, "seal").chat.completions.create(model="mock-reasoner", messages=first)  # type: ignore[arg-type]
    blob = (message.choices[0].message.model_extra or {})["reasoning_content"]
    before = metric_value(
        gw.metrics(), "distillguard_reasoning_unseal_failures_total", reason="wrong_account"
    )
    for account, value, words in (
        ("seal", blob[:-4] + ("AAAA" if not blob.endswith("AAAA") else "BBBB"), "altered"),
        ("seal2", blob, "different account"),
        ("drop", blob, None),  # the drop tier has the key too: it unseals for its own account only
    ):
        history = [*first, {"role": "assistant", "content": "x", "reasoning_content": value}, first[0]]
        if words is None:
            with pytest.raises(openai.BadRequestError) as info:
                oai(gw, account).chat.completions.create(model="mock-reasoner", messages=history)  # type: ignore[arg-type]
            assert "different account" in str(info.value)
            continue
        with pytest.raises(openai.BadRequestError) as info:
            oai(gw, account).chat.completions.create(model="mock-reasoner", messages=history)  # type: ignore[arg-type]
        body = info.value.body
        assert isinstance(body, dict) and body["param"] == "messages[1].reasoning_content"
        assert words in body["message"] and body["code"] == "invalid_sealed_reasoning"
    after = metric_value(gw.metrics(), "distillguard_reasoning_unseal_failures_total", reason="wrong_account")
    assert after - before == 2


# -- Responses -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_responses_sdk(gw: GatewayHandle, mode: str) -> None:
    client = oai(gw, mode)
    args: dict[str, Any] = {
        "model": "mock-reasoner",
        "input": PROMPT,
        "reasoning": {"effort": "low", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
    }
    whole = client.responses.create(**args)
    with client.responses.stream(**args) as stream:
        deltas = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    reasoning, answer = expected({"input": PROMPT})
    assert whole.output_text == final.output_text == deltas == answer
    kinds = [item.type for item in final.output]
    assert kinds == [item.type for item in whole.output]
    assert kinds == (["message"] if mode == "drop" else ["reasoning", "message"])
    if mode != "allow":
        assert leaked(reasoning, answer, whole.model_dump_json() + final.model_dump_json()) == []


def test_responses_seal_round_trip(gw: GatewayHandle, mock_upstream: MockHandle) -> None:
    client = oai(gw, "seal")
    reply = client.responses.create(
        model="mock-reasoner", input=PROMPT, reasoning={"effort": "low"}, store=False
    )
    reasoning, _ = expected({"input": PROMPT})
    items = [item.model_dump(exclude_none=True) for item in reply.output]
    assert items[0]["encrypted_content"].startswith("dgs1.")
    follow_up = [{"role": "user", "content": PROMPT}, *items, {"role": "user", "content": "Go on."}]
    client.responses.create(model="mock-reasoner", input=follow_up, reasoning={"effort": "low"}, store=False)  # type: ignore[arg-type]
    sent = last_upstream_body(mock_upstream)["input"][1]
    assert sent["content"] == [{"type": "reasoning_text", "text": reasoning}]


# -- Anthropic Messages --------------------------------------------------------------------------


def _blocks(message: Any) -> list[dict[str, Any]]:
    return [block.model_dump(exclude_none=True) for block in message.content]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("redacted", [False, True])
def test_anthropic_sdk(gw: GatewayHandle, mode: str, redacted: bool) -> None:
    client = ant(gw, mode)
    args: dict[str, Any] = {
        "model": "claude-mock",
        "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "messages": [{"role": "user", "content": PROMPT}],
        "extra_headers": {"x-mock-redacted": "1"} if redacted else {},
    }
    whole = client.messages.create(**args)
    with client.messages.stream(**args) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    reasoning, answer = expected({"messages": args["messages"]})
    assert text == answer == whole.content[-1].text  # type: ignore[union-attr]
    kinds = [block.type for block in final.content]
    assert kinds == [block.type for block in whole.content]
    if mode == "seal":
        for a, b in zip(_blocks(whole), _blocks(final), strict=True):
            assert a.keys() == b.keys()
    else:
        assert _blocks(whole) == _blocks(final)
    if mode != "allow":
        assert leaked(reasoning, answer, whole.model_dump_json() + final.model_dump_json()) == []
    # In drop and summary modes the upstream is asked for display "omitted": signature-only
    # thinking blocks come back and are kept, so the next turn keeps working.
    if mode in ("drop", "summary"):
        assert kinds == ["thinking", *(["redacted_thinking"] if redacted else []), "text"]
        assert whole.content[0].thinking == ""  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", ["seal", "drop", "redact", "allow"])
def test_anthropic_round_trip_signatures_verify(
    gw: GatewayHandle, mock_upstream: MockHandle, mode: str
) -> None:
    client = ant(gw, mode)
    first = [{"role": "user", "content": PROMPT}]
    args: dict[str, Any] = {
        "model": "claude-mock",
        "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
    }
    with client.messages.stream(messages=first, **args) as stream:  # type: ignore[arg-type]
        final = stream.get_final_message()
    assistant = {"role": "assistant", "content": _blocks(final)}
    second = [*first, copy.deepcopy(assistant), {"role": "user", "content": "Go on."}]
    reply = client.messages.create(messages=second, **args)  # the mock refuses altered thinking with 400
    assert reply.content[-1].type == "text"
    sent = last_upstream_body(mock_upstream)["messages"][1]["content"]
    reasoning, _ = expected({"messages": first})
    if mode in ("seal", "allow"):
        assert sent[0]["type"] == "thinking" and sent[0]["thinking"] == reasoning
    elif mode == "drop":
        assert sent[0] == {"type": "thinking", "thinking": "", "signature": final.content[0].signature}  # type: ignore[union-attr]
    else:  # redact: the placeholder block cannot be verified upstream and is left out
        assert [block["type"] for block in sent] == ["text"]


def test_anthropic_tampered_signature_is_refused(gw: GatewayHandle) -> None:
    client = ant(gw, "seal")
    first = [{"role": "user", "content": PROMPT}]
    args: dict[str, Any] = {
        "model": "claude-mock",
        "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
    }
    blocks = _blocks(client.messages.create(messages=first, **args))  # type: ignore[arg-type]
    blocks[0]["signature"] = blocks[0]["signature"][:-3] + "xyz"
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(messages=[*first, {"role": "assistant", "content": blocks}, first[0]], **args)  # type: ignore[arg-type]
    assert "messages[1].content[0].signature" in str(info.value) and "altered" in str(info.value)


# -- Request limits and metrics ------------------------------------------------------------------


def test_limits_reject_with_the_sdk_error(gw: GatewayHandle) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        oai(gw, "limited").chat.completions.create(
            model="mock-reasoner", messages=[{"role": "user", "content": "x"}], reasoning_effort="high"
        )
    assert isinstance(info.value.body, dict) and info.value.body["param"] == "reasoning_effort"
    assert "at most 'low'" in info.value.body["message"] and "tier 'limited'" in info.value.body["message"]
    with pytest.raises(anthropic.BadRequestError) as ainfo:
        ant(gw, "limited").messages.create(
            model="claude-mock",
            max_tokens=9000,
            thinking={"type": "enabled", "budget_tokens": 4000},
            messages=[{"role": "user", "content": "x"}],
        )
    assert "thinking.budget_tokens 4000" in str(ainfo.value) and "at most 2000" in str(ainfo.value)


def test_limits_clamp_what_the_upstream_receives(gw: GatewayHandle, mock_upstream: MockHandle) -> None:
    oai(gw, "clamped").responses.create(
        model="mock-reasoner",
        input="x",
        reasoning={"effort": "high"},
        include=["reasoning.encrypted_content"],
    )
    sent = last_upstream_body(mock_upstream)
    assert sent["reasoning"] == {"effort": "low"} and sent["include"] == []
    ant(gw, "clamped").messages.create(
        model="claude-mock",
        max_tokens=9000,
        thinking={"type": "enabled", "budget_tokens": 4000},
        messages=[{"role": "user", "content": "x"}],
    )
    assert last_upstream_body(mock_upstream)["thinking"] == {
        "type": "enabled",
        "budget_tokens": 2000,
        "display": "omitted",
    }


def test_withheld_tokens_metric(gw: GatewayHandle) -> None:
    text = gw.metrics()
    before = metric_value(text, "distillguard_reasoning_withheld_tokens_total", mode="redact", format="chat")
    oai(gw, "redact").chat.completions.create(
        model="mock-reasoner", messages=[{"role": "user", "content": PROMPT}]
    )
    after = metric_value(
        gw.metrics(), "distillguard_reasoning_withheld_tokens_total", mode="redact", format="chat"
    )
    reasoning_tokens = generate(
        {"messages": [{"role": "user", "content": PROMPT}]},
        max_tokens=None,
        with_reasoning=True,
        top_logprobs=None,
    ).reasoning_tokens
    assert after - before == reasoning_tokens  # the upstream's completion_tokens_details.reasoning_tokens
    assert httpx.get(f"{gw.ops_url}/metrics").status_code == 200


@pytest.mark.parametrize("mode", [mode for mode in MODES if mode != "allow"])
def test_whole_body_with_stray_close_is_judged_whole(gw: GatewayHandle, mode: str) -> None:
    """A non-streamed answer '...reasoning...</think>answer' from a model no glob matches loses its reasoning.

    The stream has to guess from the model's name (it cannot hold the answer back for a tag that may
    never come); the whole body is in hand, so the closing tag alone says what came before it.
    """
    model = "mock-reasoner"  # matches none of open_think_models
    messages = [{"role": "user", "content": PROMPT}]
    whole = oai(gw, mode).chat.completions.create(
        model=model,
        messages=messages,  # type: ignore[arg-type]
        extra_headers={"x-mock-reasoning": "think-open"},
    )
    reasoning, answer = expected({"messages": messages})
    content = whole.choices[0].message.content or ""
    assert answer in content
    assert leaked(reasoning, answer, whole.model_dump_json()) == []

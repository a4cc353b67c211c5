"""The policies on a real model's output (llama.cpp + SmolLM2-135M), through the gateway, with the openai SDK.

The server runs the DeepSeek-R1 chat template with ``--reasoning-format deepseek``, so a plain request gets
real ``reasoning_content``; a request with ``"reasoning_format": "none"`` gets the raw text, in which the
template's pre-filled ``<think>`` is never seen (the think-open case).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.llamacpp.server import LlamaServer
from tests.support import ROOT, GatewayHandle, metric_value

QUESTION = [{"role": "user", "content": "Explain in a few sentences why the sky is blue."}]
DETERMINISTIC = {"temperature": 0, "seed": 7}


def client(gw: GatewayHandle) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=gw.key(), max_retries=0, timeout=180)


def direct(server: LlamaServer, **body: Any) -> dict[str, Any]:
    payload = {"model": "smollm2", "messages": QUESTION, **DETERMINISTIC, **body}
    response = httpx.post(f"{server.url}/v1/chat/completions", json=payload, timeout=180)
    response.raise_for_status()
    return response.json()


def windows(text: str, size: int = 24) -> list[str]:
    """Substrings a leak would contain (whitespace-trimmed), every 12 characters."""
    return [
        text[i : i + size].strip()
        for i in range(0, max(1, len(text) - size), 12)
        if text[i : i + size].strip()
    ]


@pytest.fixture
def seal_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILLGUARD_SEAL_KEY", "llamacpp-test-seal-key-0123456789")


def test_real_reasoning_content_is_dropped(
    llama_gateway: Callable[..., GatewayHandle], llama_server: LlamaServer
) -> None:
    reference = direct(llama_server, max_tokens=48)["choices"][0]["message"]
    reasoning = reference.get("reasoning_content") or ""
    assert len(reasoning) > 40, "the template yields real reasoning_content"
    gw = llama_gateway({"free": [{"name": "reasoning", "config": {"mode": "drop"}}]})
    reply = client(gw).chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=48, **DETERMINISTIC
    )
    message = reply.choices[0].message.model_dump()
    assert not message.get("reasoning_content")
    chunks = list(
        client(gw).chat.completions.create(
            model="smollm2", messages=QUESTION, max_tokens=48, stream=True, **DETERMINISTIC
        )
    )
    received = json.dumps([c.model_dump() for c in chunks]) + json.dumps(message)
    assert not any(window in received for window in windows(reasoning))


def test_real_inline_think_text_is_dropped(
    llama_gateway: Callable[..., GatewayHandle], llama_server: LlamaServer
) -> None:
    raw = direct(llama_server, max_tokens=48, reasoning_format="none")["choices"][0]["message"]["content"]
    reasoning = raw.split("</think>")[0]
    assert len(reasoning) > 40
    gw = llama_gateway(
        {"free": [{"name": "reasoning", "config": {"mode": "drop", "assume_open_think": True}}]},
        extra_parameters=["reasoning_format"],  # refused unless the operator declares it
    )
    reply = client(gw).chat.completions.create(
        model="smollm2",
        messages=QUESTION,
        max_tokens=48,
        extra_body={"reasoning_format": "none"},
        **DETERMINISTIC,
    )
    visible = reply.choices[0].message.content or ""
    expected = raw.split("</think>", 1)[1].lstrip() if "</think>" in raw else ""
    assert visible.strip() == expected.strip()
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in client(gw).chat.completions.create(
            model="smollm2",
            messages=QUESTION,
            max_tokens=48,
            stream=True,
            extra_body={"reasoning_format": "none"},
            **DETERMINISTIC,
        )
        if c.choices
    )
    assert streamed.strip() == expected.strip()
    assert not any(window in visible + streamed for window in windows(reasoning))


def test_real_reasoning_sealed_and_sent_back(
    llama_gateway: Callable[..., GatewayHandle], llama_server: LlamaServer, seal_key: None
) -> None:
    reasoning = direct(llama_server, max_tokens=32)["choices"][0]["message"].get("reasoning_content") or ""
    gw = llama_gateway({"free": [{"name": "reasoning", "config": {"mode": "seal"}}]})
    first = client(gw).chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=32, **DETERMINISTIC
    )
    message = first.choices[0].message.model_dump()
    sealed = message["sealed_reasoning"]  # seal.chat: field, where no chat UI renders it
    assert not message.get("reasoning_content")
    assert sealed and not any(window in sealed for window in windows(reasoning))
    history = [
        *QUESTION,
        {"role": "assistant", "content": first.choices[0].message.content or "", "sealed_reasoning": sealed},
        {"role": "user", "content": "And at sunset?"},
    ]
    second = client(gw).chat.completions.create(
        model="smollm2", messages=history, max_tokens=16, **DETERMINISTIC
    )
    assert second.choices[0].finish_reason in ("stop", "length")
    tampered = [*history[:1], {**history[1], "sealed_reasoning": sealed[:-4] + "AAAA"}, history[2]]
    with pytest.raises(openai.BadRequestError, match="sealed"):
        client(gw).chat.completions.create(model="smollm2", messages=tampered, max_tokens=8)


def test_real_logprobs_capped_and_coarsened(llama_gateway: Callable[..., GatewayHandle]) -> None:
    gw = llama_gateway(
        {"free": [{"name": "logprobs", "config": {"top_k": 2, "grid": 0.5, "on_excess": "clamp"}}]}
    )
    reply = client(gw).chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=16, logprobs=True, top_logprobs=10, **DETERMINISTIC
    )
    content = reply.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content
    for token in content:
        assert len(token.top_logprobs) <= 2
        for value in [token.logprob, *(alt.logprob for alt in token.top_logprobs)]:
            assert value <= 0 and abs(value / 0.5 - round(value / 0.5)) < 1e-9
    chunks = list(
        client(gw).chat.completions.create(
            model="smollm2",
            messages=QUESTION,
            max_tokens=16,
            logprobs=True,
            top_logprobs=10,
            stream=True,
            **DETERMINISTIC,
        )
    )
    streamed = [
        t for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content or []
    ]
    assert [t.logprob for t in streamed] == [t.logprob for t in content]


def test_logit_bias_with_logprobs_is_refused(llama_gateway: Callable[..., GatewayHandle]) -> None:
    gw = llama_gateway({"free": [{"name": "logprobs", "config": {"logit_bias": {"mode": "exclusive"}}}]})
    with pytest.raises(openai.BadRequestError) as info:
        client(gw).chat.completions.create(
            model="smollm2",
            messages=QUESTION,
            max_tokens=4,
            logprobs=True,
            top_logprobs=2,
            logit_bias={"34": 50},
        )
    assert info.value.body["param"] == "logit_bias"  # type: ignore[index]


def test_token_quota_reconciled_with_reported_usage(llama_gateway: Callable[..., GatewayHandle]) -> None:
    gw = llama_gateway({"free": [{"name": "quota", "config": {"tokens_per_minute": 1_000_000}}]})
    before = metric_value(gw.metrics(), "distillguard_quota_tokens_total", kind="consumed")
    reply = client(gw).chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=24, **DETERMINISTIC
    )
    assert reply.usage is not None
    consumed = metric_value(gw.metrics(), "distillguard_quota_tokens_total", kind="consumed") - before
    assert consumed == reply.usage.prompt_tokens + reply.usage.completion_tokens
    before = consumed + before
    chunks = list(
        client(gw).chat.completions.create(
            model="smollm2",
            messages=QUESTION,
            max_tokens=24,
            stream=True,
            stream_options={"include_usage": True},
            **DETERMINISTIC,
        )
    )
    usage = chunks[-1].usage
    assert usage is not None
    consumed = metric_value(gw.metrics(), "distillguard_quota_tokens_total", kind="consumed") - before
    assert consumed == usage.prompt_tokens + usage.completion_tokens


PROMPTS = [
    "Write a short paragraph about why people enjoy gardening.",
    "Describe a typical morning routine for a busy student.",
    "Explain what makes a good friend, in plain words.",
    "Give some advice for someone learning to cook at home.",
    "Describe the weather in spring and how it makes people feel.",
    "Explain why reading books is useful for children.",
    "Write a few sentences about the benefits of walking every day.",
    "Describe what a library is like and why people visit one.",
    "Explain how to prepare for a job interview.",
    "Write about why it is important to drink water.",
    "Describe a small town you would like to live in.",
    "Explain why teamwork matters at school and at work.",
]


def _detect(path: Path, env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "watermark",
            "detect",
            "--keys",
            "k1=WM_TEST_KEY",
            "--account",
            "free",
            "--account",
            "someone-else",
            "--json",
            "--corpus-only",
            str(path),
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    assert result.returncode in (0, 1), result.stderr  # 0: something attributed, 1: nothing
    return json.loads(result.stdout)


def test_watermark_detected_on_real_answers_and_not_on_unmarked(
    llama_gateway: Callable[..., GatewayHandle],
    llama_plain_server: LlamaServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    secret = "llamacpp-watermark-master-key-0123456789"
    monkeypatch.setenv("WM_TEST_KEY", secret)
    # Plain answers: text inside a think block is never marked, and this template has none.
    gw = llama_gateway(
        {"free": [{"name": "watermark", "config": {"keys": [{"id": "k1", "env": "WM_TEST_KEY"}]}}]},
        server=llama_plain_server,
    )
    marked, plain = [], []
    for prompt in PROMPTS:
        messages = [{"role": "user", "content": prompt}]
        reply = client(gw).chat.completions.create(
            model="smollm2",
            messages=messages,
            max_tokens=160,
            **DETERMINISTIC,  # type: ignore[arg-type]
        )
        marked.append(reply.choices[0].message.content or "")
        body = {"model": "smollm2", "messages": messages, "max_tokens": 160, **DETERMINISTIC}
        raw = httpx.post(f"{llama_plain_server.url}/v1/chat/completions", json=body, timeout=180).json()
        plain.append(raw["choices"][0]["message"]["content"] or "")
    assert all(marked) and marked != plain, "answers came back, and the gateway changed some words"
    (tmp_path / "marked.txt").write_text("\n\n".join(marked))
    (tmp_path / "plain.txt").write_text("\n\n".join(plain))
    env = {"WM_TEST_KEY": secret}
    found = _detect(tmp_path / "marked.txt", env)["corpus"]
    assert [row["account"] for row in found["attributed"]] == ["free"], found["top"]
    clean = _detect(tmp_path / "plain.txt", env)["corpus"]
    assert clean["attributed"] == [], clean["top"]

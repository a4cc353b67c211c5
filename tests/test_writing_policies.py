"""docs/writing-policies.md's example policy is examples/shout.py, and it works in every API family.

The policy names no field of any API: the adapters' response views find the visible text. Run
through a real gateway in front of the mock upstream, it upper-cases the text of every operation,
whole and streamed, and leaves everything else as the upstream sent it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway.sse import SSEParser
from tests.support import ROOT, TEST_KEYS, GatewayHandle

OPERATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": (
        "/v1/chat/completions",
        {"model": "mock-small", "messages": [{"role": "user", "content": "Tell me"}]},
    ),
    "completions": ("/v1/completions", {"model": "mock-small", "prompt": "Once upon a time"}),
    "responses": ("/v1/responses", {"model": "mock-small", "input": "Tell me about rivers"}),
    "messages": (
        "/v1/messages",
        {"model": "claude-mock", "messages": [{"role": "user", "content": "Tell me"}]},
    ),
    # Gemini: the model is in the path, streaming is the verb (":streamGenerateContent?alt=sse").
    "gemini": (
        "/v1beta/models/gemini-mock:generateContent",
        {
            "contents": [{"role": "user", "parts": [{"text": "Tell me"}]}],
            "generationConfig": {"maxOutputTokens": 40},
        },
    ),
}


def _gemini_text(payload: dict[str, Any]) -> str:
    return "".join(
        part.get("text", "")
        for candidate in payload.get("candidates", [])
        for part in candidate["content"]["parts"]
        if not part.get("thought")
    )


def test_the_doc_shows_exactly_the_example_file() -> None:
    doc = (ROOT / "docs" / "writing-policies.md").read_text()
    block = re.search(r"```python\n(.*?)```", doc, re.S)
    assert block is not None
    example = (ROOT / "examples" / "shout.py").read_text()
    assert block.group(1) == example
    assert len(example.splitlines()) < 40


def _whole(kind: str, body: dict[str, Any]) -> str:
    if kind == "gemini":
        return _gemini_text(body)
    if kind == "chat":
        return "".join(c["message"]["content"] for c in body["choices"])
    if kind == "completions":
        return "".join(c["text"] for c in body["choices"])
    if kind == "responses":
        return "".join(
            p["text"] for item in body["output"] if item["type"] == "message" for p in item["content"]
        )
    return "".join(block["text"] for block in body["content"] if block["type"] == "text")


def _streamed(kind: str, raw: bytes) -> tuple[str, str | None]:
    """(the text of the deltas, the whole text the stream's final object repeats, if any)."""
    events = [e.json for e in SSEParser().feed(raw) if e.json is not None]
    deltas: list[str] = []
    final = None
    for payload in events:
        if kind == "gemini":
            deltas.append(_gemini_text(payload))
        elif kind == "chat":
            deltas += [c["delta"].get("content") or "" for c in payload.get("choices", [])]
        elif kind == "completions":
            deltas += [c.get("text") or "" for c in payload.get("choices", [])]
        elif kind == "responses":
            if payload["type"] == "response.output_text.delta":
                deltas.append(payload["delta"])
            elif payload["type"] == "response.completed":
                final = _whole("responses", payload["response"])
        elif payload["type"] == "content_block_delta" and payload["delta"]["type"] == "text_delta":
            deltas.append(payload["delta"]["text"])
    return "".join(deltas), final


@pytest.mark.parametrize("kind", list(OPERATIONS))
def test_the_example_upper_cases_visible_text_in_every_family(
    start_gateway: Callable[..., GatewayHandle], kind: str
) -> None:
    tiers: dict[str, Any] = {tier: {"policies": []} for tier in TEST_KEYS}
    tiers["free"] = {"policies": [{"name": "examples.shout:ShoutPolicy"}]}
    gw = start_gateway(tiers=tiers)
    path, body = OPERATIONS[kind]
    if kind != "gemini":
        body = {**body, "max_tokens" if kind != "responses" else "max_output_tokens": 40}

    def call(tier: str, stream: bool) -> httpx.Response:
        headers = {"authorization": f"Bearer {TEST_KEYS[tier]}", "anthropic-version": "2023-06-01"}
        target, payload = f"{gw.url}{path}", {**body, "stream": stream}
        if kind == "gemini":
            payload = body
            if stream:
                target = target.replace(":generateContent", ":streamGenerateContent?alt=sse")
        reply = httpx.post(target, json=payload, headers=headers, timeout=30)
        assert reply.status_code == 200, reply.text
        return reply

    plain = _whole(kind, call("pro", False).json())  # the same upstream answer, no policy
    assert plain != plain.upper()  # there is something to change
    assert _whole(kind, call("free", False).json()) == plain.upper()
    deltas, final = _streamed(kind, call("free", True).content)
    assert deltas == plain.upper()
    assert final in (None, plain.upper())  # the final object agrees with the deltas

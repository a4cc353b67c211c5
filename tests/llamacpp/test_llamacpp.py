"""Through the gateway to a real model server (llama.cpp + SmolLM2-135M), with the official SDK."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import openai

from tests.llamacpp.server import LlamaServer
from tests.support import GatewayHandle

QUESTION = [{"role": "user", "content": "Name three colours."}]


def client(gw: GatewayHandle, tier: str = "free") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=gw.key(tier), max_retries=0, timeout=120)


def test_chat_non_streaming_and_streaming(llama_gateway: Callable[..., GatewayHandle]) -> None:
    gw = llama_gateway()
    reply = client(gw).chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=24, seed=1, temperature=0
    )
    message = reply.choices[0].message
    assert (message.content or "") + (getattr(message, "reasoning_content", None) or "")
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    chunks = list(
        client(gw).chat.completions.create(
            model="smollm2", messages=QUESTION, max_tokens=24, seed=1, temperature=0, stream=True
        )
    )
    assert all(chunk.choices for chunk in chunks), "the usage chunk the gateway asked for is not leaked"
    streamed = "".join(
        (c.choices[0].delta.content or "") + (getattr(c.choices[0].delta, "reasoning_content", None) or "")
        for c in chunks
    )
    assert streamed


def test_timings_field_is_passed_through_deliberately(
    llama_gateway: Callable[..., GatewayHandle], llama_server: LlamaServer
) -> None:
    """llama.cpp adds a `timings` object; it describes server speed, not the model's outputs, so it passes."""
    gw = llama_gateway()
    body = {"model": "smollm2", "messages": QUESTION, "max_tokens": 8}
    direct = httpx.post(f"{llama_server.url}/v1/chat/completions", json=body, timeout=120).json()
    through = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json=body,
        timeout=120,
        headers={"authorization": f"Bearer {gw.key()}"},
    ).json()
    assert "timings" in direct and set(through["timings"]) == set(direct["timings"])


def test_native_completion_endpoint_is_not_reachable(llama_gateway: Callable[..., GatewayHandle]) -> None:
    """llama.cpp's native /completion returns n_probs; only the OpenAI-compatible routes are served."""
    gw = llama_gateway()
    for path in ("/completion", "/v1/completion", "/completions"):
        r = httpx.post(
            f"{gw.url}{path}",
            json={"prompt": "hi", "n_probs": 10},
            headers={"authorization": f"Bearer {gw.key()}"},
        )
        assert r.status_code == 404, path

"""End to end through the gateway with the official SDKs, streaming and not."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from tests.support import GatewayHandle, MockHandle


def _openai(gw: GatewayHandle, tier: str = "free") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=gw.key(tier), max_retries=0)


def _anthropic(gw: GatewayHandle, tier: str = "free") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=gw.key(tier), max_retries=0)


def test_chat_completion(gateway: GatewayHandle) -> None:
    reply = _openai(gateway).chat.completions.create(
        model="mock-small", messages=[{"role": "user", "content": "Tell me about caches."}]
    )
    assert reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.completion_tokens > 0


def test_chat_completion_stream(gateway: GatewayHandle) -> None:
    stream = _openai(gateway).chat.completions.create(
        model="mock-small", messages=[{"role": "user", "content": "Tell me about caches."}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    whole = _openai(gateway).chat.completions.create(
        model="mock-small", messages=[{"role": "user", "content": "Tell me about caches."}]
    )
    assert text == whole.choices[0].message.content


def test_stream_usage_chunk_only_when_asked(gateway: GatewayHandle, mock_upstream: MockHandle) -> None:
    client = _openai(gateway)
    chunks = list(
        client.chat.completions.create(
            model="mock-small", messages=[{"role": "user", "content": "x"}], stream=True
        )
    )
    assert all(chunk.choices for chunk in chunks), "the gateway's own usage request must not leak"
    assert mock_upstream.requests()[-1]["body"]["stream_options"] == {"include_usage": True}
    chunks = list(
        client.chat.completions.create(
            model="mock-small",
            messages=[{"role": "user", "content": "x"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage is not None and not chunks[-1].choices


def test_legacy_completions(gateway: GatewayHandle) -> None:
    client = _openai(gateway)
    reply = client.completions.create(model="mock-small", prompt="Once upon a time", max_tokens=10)
    assert reply.choices[0].text
    streamed = "".join(
        c.choices[0].text
        for c in client.completions.create(
            model="mock-small", prompt="Once upon a time", max_tokens=10, stream=True
        )
        if c.choices
    )
    assert streamed == reply.choices[0].text


def test_responses_api(gateway: GatewayHandle) -> None:
    client = _openai(gateway)
    reply = client.responses.create(model="mock-small", input="Explain queues.")
    assert reply.output_text
    events = list(client.responses.create(model="mock-small", input="Explain queues.", stream=True))
    assert events[-1].type == "response.completed"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == reply.output_text


def test_anthropic_messages(gateway: GatewayHandle) -> None:
    client = _anthropic(gateway)
    reply = client.messages.create(
        model="claude-mock", max_tokens=512, messages=[{"role": "user", "content": "Explain queues."}]
    )
    assert reply.content[-1].type == "text" and reply.content[-1].text
    with client.messages.stream(
        model="claude-mock", max_tokens=512, messages=[{"role": "user", "content": "Explain queues."}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == reply.content[-1].text
    assert final.usage.output_tokens > 0


def test_models_passthrough(gateway: GatewayHandle) -> None:
    models = _openai(gateway).models.list()
    assert "mock-small" in [m.id for m in models.data]


def test_client_credential_is_not_forwarded(gateway: GatewayHandle, mock_upstream: MockHandle) -> None:
    _openai(gateway).chat.completions.create(model="mock-small", messages=[{"role": "user", "content": "x"}])
    headers = mock_upstream.requests()[-1]["headers"]
    assert "authorization" not in headers and "x-api-key" not in headers
    assert headers["x-request-id"]


PROVIDER_ACCOUNT_HEADERS = ("openai-organization", "anthropic-organization-id")
PROVIDER_ACCOUNT_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-")


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"model": "mock-small", "messages": [{"role": "user", "content": "x"}]}),
        (
            "/v1/messages",
            {"model": "claude-mock", "max_tokens": 16, "messages": [{"role": "user", "content": "x"}]},
        ),
    ],
)
def test_the_upstream_accounts_organisation_and_rate_limits_are_not_forwarded(
    gateway: GatewayHandle, mock_upstream: MockHandle, path: str, body: dict[str, object], stream: bool
) -> None:
    payload = {**body, "stream": stream}
    direct = httpx.post(f"{mock_upstream.url}{path}", json=payload, timeout=30)
    assert any(name.startswith(PROVIDER_ACCOUNT_PREFIXES) for name in direct.headers)  # what providers send
    through = httpx.post(
        f"{gateway.url}{path}", json=payload, headers={"authorization": f"Bearer {gateway.key()}"}, timeout=30
    )
    assert through.status_code == 200
    assert not any(name.startswith(PROVIDER_ACCOUNT_PREFIXES) for name in through.headers)
    assert not any(name in through.headers for name in PROVIDER_ACCOUNT_HEADERS)

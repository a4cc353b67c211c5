"""Stream events no filter sees go out as the upstream wrote them; a filter's changes always go out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from gateway.asgi import read_body
from tests.support import GatewayHandle, ThreadedServer, base_config

# JSON as a server that does not write it compactly would: spaces the gateway's encoder never writes.
EVENTS = [
    b'data: {"id": "c1", "object": "chat.completion.chunk", "model": "m", '
    b'"choices": [{"index": 0, "delta": {"content": "hello "}, "finish_reason": null}]}\n\n',
    b'data: {"id": "c1", "object": "chat.completion.chunk", "model": "m", '
    b'"choices": [{"index": 0, "delta": {"content": "world"}, "finish_reason": "stop"}]}\n\n',
    b'data: {"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [], '
    b'"usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}\n\n',
    b"data: [DONE]\n\n",
]


async def spaced_upstream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await read_body(receive, 1 << 20, None)
    headers = [(b"content-type", b"text/event-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for event in EVENTS:
        await send({"type": "http.response.body", "body": event, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


@pytest.fixture(scope="module")
def upstream() -> Iterator[ThreadedServer]:
    server = ThreadedServer(spaced_upstream).start()
    yield server
    server.stop()


def stream_through(gateway: GatewayHandle) -> bytes:
    body = {
        "model": "m",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "hi"}],
    }
    headers = {"authorization": f"Bearer {gateway.key()}"}
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers, timeout=10)
    assert response.status_code == 200
    return response.content


def test_events_no_filter_sees_are_forwarded_as_the_upstream_wrote_them(
    start_gateway: Callable[..., GatewayHandle], upstream: ThreadedServer
) -> None:
    assert stream_through(start_gateway(base_config(upstream.url))) == b"".join(EVENTS)


def test_a_filter_that_changes_events_in_place_is_what_the_client_gets(
    start_gateway: Callable[..., GatewayHandle], upstream: ThreadedServer
) -> None:
    # The filter changes the parsed event and returns the same object: the upstream's text of it is
    # stale and must not be what goes out (the fast path is for events no filter saw).
    config = base_config(upstream.url)
    config["tiers"]["free"]["policies"] = [{"name": "tests.sample_policies:UppercasePolicy"}]
    forwarded = stream_through(start_gateway(config))
    assert b'"content":"HELLO "' in forwarded and b'"content":"WORLD"' in forwarded
    assert b"hello" not in forwarded and b"world" not in forwarded

"""What a held stream keeps of its request: the parsed body and the header map, not the raw bytes too.

A stream whose upstream has gone quiet (a model thinking) may be held for minutes, 10,000 of them per
worker (the performance issue's target). These hold real streams through the gateway over 127.0.0.1,
with the mock upstream sending one event and then nothing, and look at what stays.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Callable
from typing import Any

import orjson

from tests.support import TEST_KEYS, GatewayHandle, QuietUpstream, base_config

QUIET = {"connect": 2, "first_byte": 30, "idle": 60, "total": 120}


async def _quiet_gateway(start_gateway: Callable[..., GatewayHandle]) -> tuple[GatewayHandle, asyncio.Server]:
    """A gateway (no policies) in front of a :class:`QuietUpstream` served by this test's loop."""
    upstream = await asyncio.get_running_loop().create_server(QuietUpstream, "127.0.0.1", 0)
    port = upstream.sockets[0].getsockname()[1]
    config = base_config(f"http://127.0.0.1:{port}")
    for entry in config["upstreams"]:
        entry["timeouts"] = QUIET
    return await asyncio.to_thread(start_gateway, config), upstream


async def _open_stream(port: int, body: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A streaming chat request (its upstream sends one event, then nothing); read up to that event."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
        b"authorization: Bearer " + TEST_KEYS["free"].encode() + b"\r\n"
        b"x-held-test: " + b"h" * 4000 + b"\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    await writer.drain()
    received = b""
    while b"data: " not in received:
        chunk = await asyncio.wait_for(reader.read(65536), 20)
        assert chunk, received
        received += chunk
    assert received.startswith(b"HTTP/1.1 200"), received[:200]
    return reader, writer


def _body(index: int, prompt_chars: int) -> bytes:
    prompt = f"{index} " + "lorem ipsum " * (prompt_chars // 12)
    return orjson.dumps(
        {"model": "mock-small", "stream": True, "messages": [{"role": "user", "content": prompt}]}
    )


async def test_a_held_stream_keeps_its_request_body_once(start_gateway: Callable[..., GatewayHandle]) -> None:
    # Before: the raw body stayed referenced by the handler's frames next to the parsed one, so a held
    # stream kept its prompt twice (~2 x 100 KB here); now the bytes go once parsed.
    gateway, upstream = await _quiet_gateway(start_gateway)
    streams, prompt_chars = 8, 100_000
    bodies = [_body(i, prompt_chars) for i in range(streams)]
    writers: list[asyncio.StreamWriter] = []
    tracemalloc.start(1)
    try:
        before = tracemalloc.take_snapshot()
        for body in bodies:
            writers.append((await _open_stream(gateway.port, body))[1])
        await asyncio.sleep(0.2)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
        for writer in writers:
            writer.close()
        upstream.close()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown / streams < 1.5 * prompt_chars, f"{grown / streams:,.0f} bytes per held stream"


async def test_a_held_stream_does_not_keep_the_raw_request_headers(
    start_gateway: Callable[..., GatewayHandle],
) -> None:
    # The header map is what every phase and the upstream request read; the server's own list of the
    # raw (name, value) pairs, kept by the connection until its next request, is emptied once read.
    gateway, upstream = await _quiet_gateway(start_gateway)
    _, writer = await _open_stream(gateway.port, _body(0, 100))
    try:
        held: list[Any] = [  # the stream's connection (not a readiness probe's, if one is still open)
            protocol
            for protocol in gateway.server.server_state.connections
            if protocol.cycle is not None and protocol.cycle.scope["path"] == "/v1/chat/completions"
        ]
        assert held
        for protocol in held:
            assert protocol.headers == [], protocol.headers[:3]
            assert protocol.cycle.scope["headers"] == []
    finally:
        writer.close()
        upstream.close()

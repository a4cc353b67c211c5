"""The upstream HTTP/1.1 client against a scripted server on 127.0.0.1: framing, reuse, limits, attacks.

The server answers each request on a connection with the next of a list of raw responses (or closes
when the script says so), and records the connections and requests it saw.
"""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from gateway.config.schema import UpstreamConfig
from gateway.errors import UpstreamError
from gateway.http_client import request_head
from gateway.metrics import GatewayMetrics
from gateway.upstream import UpstreamPool, UpstreamResponse

CLOSE = b"<close>"  # a script entry: close the connection instead of answering
PAUSE = b"<pause>"  # in a script entry: send what came before, wait 50 ms, then the rest


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def chunked_gzip(body: bytes) -> bytes:
    """``body`` gzipped in two chunks 50 ms apart: the gzip header alone (no output yet), then the rest."""
    packed = gzip.compress(body)
    first, rest = packed[:10], packed[10:]
    return (
        b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n%s%x\r\n%s\r\n0\r\n\r\n" % (len(first), first, PAUSE, len(rest), rest)
    )


class Scripted:
    """A server answering the n-th request of each connection with ``script(n)``."""

    def __init__(self, script: Callable[[int], bytes]) -> None:
        self.script = script
        self.connections = 0
        self.open_now = 0
        self.most_open = 0
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            n = 0
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                self.requests.append(head + await reader.readexactly(length))
                answer = self.script(n)
                n += 1
                if answer == CLOSE:
                    break
                for index, part in enumerate(answer.split(PAUSE)):
                    if index:
                        await asyncio.sleep(0.05)
                    writer.write(part)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_now -= 1
            writer.close()


@asynccontextmanager
async def upstream(
    script: Callable[[int], bytes], **config: Any
) -> AsyncIterator[tuple[UpstreamPool, Scripted]]:
    server_state = Scripted(script)
    server = await asyncio.start_server(server_state.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    timeouts = {"connect": 2, "first_byte": 5, "idle": 5, "total": 30}
    cfg = UpstreamConfig(name="u", url=f"http://127.0.0.1:{port}", timeouts=timeouts, **config)
    pool = UpstreamPool([cfg], GatewayMetrics())
    try:
        yield pool, server_state
    finally:
        await pool.close()
        await asyncio.sleep(0.05)  # the handlers see the connections end
        server.close()


async def fetch(pool: UpstreamPool, method: str = "POST", body: bytes | None = b"{}") -> tuple[int, bytes]:
    response = await pool.open(
        pool.upstreams[0], method, "/v1/x?a=1", {"content-type": "application/json"}, body
    )
    try:
        return response.status, await response.read_all()
    finally:
        response.close()


async def test_a_connection_is_kept_and_reused_after_a_clean_response() -> None:
    async with upstream(lambda n: ok(b"one" if n == 0 else b"two")) as (pool, server):
        assert await fetch(pool) == (200, b"one")
        assert await fetch(pool) == (200, b"two")
        assert server.connections == 1
        first = server.requests[0]
        assert first.startswith(b"POST /v1/x?a=1 HTTP/1.1\r\nhost: 127.0.0.1:")
        assert b"\r\ncontent-length: 2\r\n" in first and first.endswith(b"\r\n\r\n{}")


async def test_connection_close_is_honoured() -> None:
    async with upstream(lambda n: ok(b"x", b"connection: close\r\n")) as (pool, server):
        assert await fetch(pool) == (200, b"x")
        assert await fetch(pool) == (200, b"x")
        assert server.connections == 2


@pytest.mark.parametrize(
    ("raw", "body"),
    [
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", b"abcde"),
        (b"HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n" + ok(b"after hints"), b"after hints"),
        (ok(gzip.compress(b"zipped"), b"content-encoding: gzip\r\n"), b"zipped"),
        (ok(zlib.compress(b"deflated"), b"content-encoding: deflate\r\n"), b"deflated"),
        (ok(zlib.compress(b"raw")[2:-4], b"content-encoding: deflate\r\n"), b"raw"),  # raw deflate
        (
            chunked_gzip(b"a piece that decodes to nothing comes first"),
            b"a piece that decodes to nothing comes first",
        ),
    ],
)
async def test_bodies_are_framed_and_decoded(raw: bytes, body: bytes) -> None:
    async with upstream(lambda n: raw) as (pool, _):
        assert await fetch(pool) == (200, body)


async def test_a_body_delimited_by_the_connection_end_is_read_whole() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n{}")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    cfg = UpstreamConfig(name="u", url=f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    pool = UpstreamPool([cfg], GatewayMetrics())
    try:
        assert await fetch(pool) == (200, b"until the end")
    finally:
        await pool.close()
        server.close()


async def test_an_unknown_content_coding_is_refused_not_passed_on() -> None:
    async with upstream(lambda n: ok(b"\x1b\x00", b"content-encoding: br\r\n")) as (pool, _):
        with pytest.raises(UpstreamError):
            await fetch(pool)


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_a_compression_bomb_is_refused(coding: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.http_client.DECODED_LIMIT", 1 << 20)
    bomb = gzip.compress(bytes(4 << 20)) if coding == "gzip" else zlib.compress(bytes(4 << 20))
    async with upstream(lambda n: ok(bomb, b"content-encoding: %s\r\n" % coding.encode())) as (pool, _):
        with pytest.raises(UpstreamError, match="connection to the upstream failed"):
            await fetch(pool)


async def test_an_upstream_that_hangs_up_mid_body_is_an_error_not_a_short_answer() -> None:
    raw = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n{}")
        writer.write(raw)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    cfg = UpstreamConfig(name="u", url=f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    pool = UpstreamPool([cfg], GatewayMetrics())
    try:
        with pytest.raises(UpstreamError, match="connection to the upstream failed"):
            await fetch(pool)
    finally:
        await pool.close()
        server.close()


async def test_a_malformed_response_is_an_error() -> None:
    async with upstream(lambda n: b"HTTP/1.1 200 OK\r\ncontent-length: nope\r\n\r\n") as (pool, _):
        with pytest.raises(UpstreamError):
            await fetch(pool)


async def test_a_kept_connection_closed_by_the_upstream_is_retried_for_get_only() -> None:
    # The second request on the kept connection meets a close with no answer (the upstream's idle cut).
    async with upstream(lambda n: ok(b"x") if n == 0 else CLOSE) as (pool, server):
        assert await fetch(pool, "GET", None) == (200, b"x")
        assert await fetch(pool, "GET", None) == (200, b"x")  # retried on a new connection
        assert server.connections == 2
        with pytest.raises(UpstreamError):
            await fetch(pool, "POST")  # never sent twice: the upstream may have started on it
        assert sum(r.startswith(b"POST") for r in server.requests) == 1


async def test_the_connection_limit_queues_requests() -> None:
    release = asyncio.Event()

    async def slow_then_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        state.open_now += 1
        state.most_open = max(state.most_open, state.open_now)
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n{}")
                await release.wait()
                writer.write(ok(b"done"))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            state.open_now -= 1
            writer.close()

    state = Scripted(lambda n: b"")
    server = await asyncio.start_server(slow_then_ok, "127.0.0.1", 0)
    cfg = UpstreamConfig(
        name="u", url=f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", max_connections=2
    )
    pool = UpstreamPool([cfg], GatewayMetrics())
    try:
        tasks = [asyncio.create_task(fetch(pool)) for _ in range(6)]
        await asyncio.sleep(0.2)
        assert state.most_open == 2
        release.set()
        assert await asyncio.wait_for(asyncio.gather(*tasks), 10) == [(200, b"done")] * 6
        assert state.connections == 2 and state.most_open == 2
    finally:
        await pool.close()
        server.close()


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        ("/v1/x", {"x-test": "a\r\nx-injected: 1"}),
        ("/v1/x", {"x-test": "a\nb"}),
        ("/v1/x", {"x-test\r\nx-injected": "1"}),
        ("/v1/x HTTP/1.1\r\nx-injected: 1\r\n\r\nGET /", {}),
        ("/v1/x y", {}),
    ],
)
def test_line_breaks_never_reach_the_upstream(target: str, headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="line break or control character"):
        request_head("POST", target, "up", headers, b"{}")


async def test_a_held_quiet_stream_costs_under_3_kb_of_client_objects() -> None:
    # The client side of an idle stream: the response object, its connection and parser, its timer.
    # aiohttp held 7.1 KB per response here (2.2 KB with this client).
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    event = b"data: {}\n\n"
    quiet = head + b"%x\r\n%s\r\n" % (len(event), event)
    async with upstream(lambda n: quiet, max_connections=400) as (pool, _):
        warm = [await pool.open(pool.upstreams[0], "POST", "/v1/x", {}, b"{}") for _ in range(20)]
        for response in warm:
            await response.read_chunk()
            response.close()
        held: list[UpstreamResponse] = []
        tracemalloc.start(1)
        try:
            before = tracemalloc.take_snapshot()
            for _ in range(200):
                response = await pool.open(pool.upstreams[0], "POST", "/v1/x", {}, b"{}")
                assert await response.read_chunk() == event
                held.append(response)
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        # The client's own objects (the scripted server's are asyncio's and this file's; the sockets'
        # transports are the same for any client and not counted).
        client = ("/gateway/", "aiohttp", "multidict", "yarl", "httptools")
        grown = sum(
            stat.size_diff
            for stat in after.compare_to(before, "filename")
            if any(part in stat.traceback[0].filename for part in client)
        )
        for response in held:
            response.close()
        assert grown / 200 < 3000, f"{grown / 200:.0f} bytes per held response"


async def test_an_operator_host_header_replaces_the_urls_and_a_closed_pool_reopens() -> None:
    async with upstream(lambda n: ok(b"x"), headers={"Host": "models.internal"}) as (pool, server):
        assert await fetch(pool) == (200, b"x")
        head = server.requests[0].split(b"\r\n\r\n")[0].lower()
        assert head.count(b"\r\nhost:") == 1 and b"\r\nhost: models.internal\r\n" in head + b"\r\n"
        await pool.close()  # a reload closes the old pool; a request still in hand opens a new one
        assert await fetch(pool) == (200, b"x")

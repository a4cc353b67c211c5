"""The front door under attack, over raw sockets: header floods, slowloris on headers and bodies, idle
connections. Each limit answers before the app (431, 408) and closes; honest requests are unaffected."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from gateway import asgi
from gateway.asgi import header_map
from gateway.config.schema import LimitsConfig
from tests.raw_http import parse_response
from tests.support import GatewayHandle

FAST = {"header_timeout_seconds": 1.0, "body_timeout_seconds": 1.0, "keep_alive_seconds": 1.0}


def connect(gw: GatewayHandle) -> socket.socket:
    return socket.create_connection(("127.0.0.1", gw.port), timeout=10)


def read_until_close(sock: socket.socket, limit: float) -> tuple[bytes, bool]:
    """Everything the server sends within ``limit`` seconds, and whether it closed the connection."""
    sock.settimeout(0.05)
    data = b""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def status_of(response: bytes) -> int:
    return parse_response(response).status if response.startswith(b"HTTP/1.1 ") else 0


def body_of(response: bytes) -> Any:
    return parse_response(response).json()


def test_header_map_is_linear_in_repeated_headers() -> None:
    scope = {"headers": [(b"x-a", b"a" * 20)] * 150_000 + [(b"x-b", b"1")]}
    started = time.perf_counter()
    headers = header_map(scope)
    assert time.perf_counter() - started < 1.0
    assert headers["x-a"] == ", ".join(["a" * 20] * 150_000)
    assert headers["x-b"] == "1"


def test_header_flood_gets_431_while_healthz_stays_fast(gateway: GatewayHandle) -> None:
    """150,000 repeated headers (4 MB) to a model route: 431 at once, the event loop never stalls."""
    flood = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer dg-test-free-key\r\n"
        + b"X-A: aaaaaaaaaaaaaaaaaaaaaa\r\n" * 150_000
        + b"Content-Length: 2\r\n\r\n{}"
    )
    sock = connect(gateway)

    def send() -> None:
        with contextlib.suppress(OSError):  # the gateway closes the connection: what it should do
            sock.sendall(flood)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    latencies = []
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        for _ in range(10):
            started = time.perf_counter()
            assert client.get("/healthz").status_code == 200
            latencies.append(time.perf_counter() - started)
            time.sleep(0.02)
    response, closed = read_until_close(sock, 5)
    sender.join(5)
    sock.close()
    assert max(latencies) < 0.1, latencies
    assert status_of(response) == 431, response[:200]
    assert closed


@pytest.mark.parametrize("count, status", [(19, 200), (40, 431)])
def test_header_count_limit(start_gateway: Callable[..., GatewayHandle], count: int, status: int) -> None:
    gw = start_gateway(limits={"max_headers": 20})
    sock = connect(gw)
    sock.sendall(b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(count)) + b"\r\n")
    response, _ = read_until_close(sock, 1)
    sock.close()
    assert status_of(response) == status, response[:200]
    if status == 431:
        assert b"more than 20 headers" in response


def test_header_count_default_limit(gateway: GatewayHandle) -> None:
    extra = {f"x-{i}": "v" for i in range(LimitsConfig().max_headers + 1)}
    assert httpx.get(f"{gateway.url}/healthz", headers=extra).status_code == 431
    assert httpx.get(f"{gateway.url}/healthz", headers=dict(list(extra.items())[:80])).status_code == 200


def test_header_bytes_limit(gateway: GatewayHandle) -> None:
    """Over 32 KiB of headers: 431, whether they arrive complete or as one header that never ends."""
    assert httpx.get(f"{gateway.url}/healthz", headers={"x-big": "a" * 20_000}).status_code == 200
    assert httpx.get(f"{gateway.url}/healthz", headers={"x-big": "a" * 40_000}).status_code == 431
    url = "/healthz?" + "q" * 40_000  # the request line counts too
    assert httpx.get(f"{gateway.url}{url}").status_code == 431
    sock = connect(gateway)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Endless: " + b"a" * 200_000)  # no end of line, ever
    response, closed = read_until_close(sock, 2)
    sock.close()
    assert status_of(response) == 431 and closed, response[:200]


def test_slowloris_headers_cut_at_the_deadline(start_gateway: Callable[..., GatewayHandle]) -> None:
    gw = start_gateway(limits=FAST)
    sock = connect(gw)
    started = time.monotonic()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    response = b""
    closed = False
    for _ in range(40):  # one byte every 0.1 s: each byte arrives well within any per-read timeout
        try:
            sock.sendall(b"X")
        except OSError:
            closed = True
            break
        chunk, closed = read_until_close(sock, 0.1)
        response += chunk
        if closed:
            break
    elapsed = time.monotonic() - started
    sock.close()
    assert closed and status_of(response) == 408, response[:200]
    assert 0.9 < elapsed < 2.0, elapsed


def test_silent_connection_closed_at_the_header_deadline(start_gateway: Callable[..., GatewayHandle]) -> None:
    gw = start_gateway(limits=FAST)
    sock = connect(gw)
    started = time.monotonic()
    response, closed = read_until_close(sock, 3)
    sock.close()
    assert closed and response == b""  # nothing was asked: nothing to answer
    assert 0.9 < time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    "path, shape",
    [("/v1/chat/completions", "openai"), ("/v1/messages", "anthropic")],
)
def test_slowloris_body_gets_408_in_the_api_shape(
    start_gateway: Callable[..., GatewayHandle], path: str, shape: str
) -> None:
    gw = start_gateway(limits=FAST)
    sock = connect(gw)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {gw.key()}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    started = time.monotonic()
    sock.sendall(head + b'{"model": ')
    response = b""
    closed = False
    for _ in range(40):
        try:
            sock.sendall(b" ")
        except OSError:
            break
        chunk, closed = read_until_close(sock, 0.1)
        response += chunk
        if closed:
            break
    more, closed = read_until_close(sock, 1)
    response += more
    elapsed = time.monotonic() - started
    sock.close()
    assert status_of(response) == 408, response[:300]
    assert closed and 0.9 < elapsed < 2.2, elapsed
    body = body_of(response)
    if shape == "openai":
        assert body["error"]["code"] == "request_timeout"
        assert body["error"]["type"] == "invalid_request_error"
    else:
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"


def test_body_trickled_after_an_early_answer_is_cut(start_gateway: Callable[..., GatewayHandle]) -> None:
    """Unauthenticated: 401 before the body is read; trickling the body on cannot hold the connection."""
    gw = start_gateway(limits=FAST)
    sock = connect(gw)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{")
    started = time.monotonic()
    response = b""
    closed = False
    for _ in range(60):
        try:
            sock.sendall(b" ")
        except OSError:
            closed = True
            break
        chunk, closed = read_until_close(sock, 0.1)
        response += chunk
        if closed:
            break
    sock.close()
    assert status_of(response) == 401
    assert closed and time.monotonic() - started < 3.5


def test_idle_keep_alive_closed_at_the_cap(start_gateway: Callable[..., GatewayHandle]) -> None:
    gw = start_gateway(limits=FAST)
    sock = connect(gw)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    response, closed = read_until_close(sock, 0.3)
    assert status_of(response) == 200 and not closed
    started = time.monotonic()
    more, closed = read_until_close(sock, 3)
    sock.close()
    assert closed and more == b""
    assert 0.6 < time.monotonic() - started < 1.6


def test_honest_keep_alive_requests_reuse_the_connection(start_gateway: Callable[..., GatewayHandle]) -> None:
    """Requests in quick succession, bodies sent in several writes: served on one connection."""
    gw = start_gateway(limits=FAST)
    sock = connect(gw)
    body = orjson.dumps({"model": "mock-small", "messages": [{"role": "user", "content": "hi"}]})
    for _ in range(3):
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer dg-test-free-key\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        time.sleep(0.2)  # the body in a later read than the headers: the body deadline is armed
        sock.sendall(body)
        response, closed = read_until_close(sock, 0.5)
        assert status_of(response) == 200 and not closed, response[:300]
        assert body_of(response)["choices"]
    sock.close()


def test_default_keep_alive_is_below_uvicorns_old_75_seconds() -> None:
    assert LimitsConfig().keep_alive_seconds < 75


def test_header_map_shares_the_strings_of_names_and_repeating_values() -> None:
    """A held stream keeps its header map: names and common values are one string for every request."""

    def scope() -> dict[str, Any]:
        # Fresh bytes each time (``lower`` copies), as the server gives them.
        return {
            "headers": [
                (b"content-type".lower(), b"application/json".lower()),
                (b"authorization".lower(), b"bearer sk-1".lower()),
            ]
        }

    first, second = header_map(scope()), header_map(scope())
    assert first == second == {"content-type": "application/json", "authorization": "bearer sk-1"}
    for name_a, name_b in zip(first, second, strict=True):
        assert name_a is name_b
    assert first["content-type"] is second["content-type"]
    # A client sending endless new names cannot grow the shared tables past their bound.
    header_map({"headers": [(f"x-junk-{i}".encode(), b"v") for i in range(3000)]})
    assert len(asgi._NAMES) <= asgi._SHARED_LIMIT and len(asgi._VALUES) <= asgi._SHARED_LIMIT


def test_a_websocket_upgrade_is_answered_as_plain_http(gateway: GatewayHandle) -> None:
    """No WebSocket route is declared and the server loads no WebSocket stack: an upgrade request is
    the HTTP request it is (auth, method and route checks in the API's shape), never a socket."""
    upgrade = (
        b"Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    )
    for request_line, status in (
        (b"GET /v1/chat/completions HTTP/1.1\r\n", 405),
        (b"GET /v1/models HTTP/1.1\r\n", 401),
    ):
        sock = connect(gateway)
        sock.sendall(request_line + upgrade + b"Authorization: Bearer not-a-key\r\n\r\n")
        response, _ = read_until_close(sock, 1)
        sock.close()
        assert status_of(response) == status, response[:200]
        assert b"101 Switching" not in response and "error" in body_of(response)

"""A lean HTTP/1.1 client for the upstream: keep-alive connections of one small protocol object each.

What the gateway needs of a client is narrow: send one request with a body it already holds, get the
status and headers, then read the body as it arrives (a stream may stay quiet for minutes), and keep
the connection for the next request when the response ended cleanly. aiohttp does this with about
10 KB of Python objects per open response (its protocol, parser, stream reader and their deques, the
request and response objects, the cookie and tracing machinery) and about 150 µs of CPU per request;
here one :class:`Connection` (a slotted ``asyncio.Protocol`` with httptools' response parser) holds a
response, and a :class:`~gateway.http_pool.ConnectionPool` keeps idle connections per origin.

Kept from aiohttp: gzip and deflate bodies are decoded (the gateway asks for ``identity``; an upstream
that ignores it is still read right) and any other content coding is refused; a response delimited by
the connection's end, interim (1xx) responses and HEAD responses are read right; a connection is
reused only after a response that ended cleanly with keep-alive. Request heads are checked for line
breaks and control characters (no header injection).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import httptools

if TYPE_CHECKING:
    from gateway.http_pool import ConnectionPool

# Body bytes buffered from the upstream before reading its socket pauses (the client reads slower).
HIGH_WATER = 256 * 1024
# The most one piece of compressed body may expand to: a few KB that inflate to gigabytes are refused.
DECODED_LIMIT = 64 * 1024 * 1024


class ConnectError(OSError):
    """No connection to the upstream could be opened (refused, unreachable, DNS, TLS handshake)."""


class ResponseError(Exception):
    """The upstream closed the connection or broke HTTP/1.1 before the response was complete."""


class ResponseHeaders(Mapping[str, str]):
    """A response's headers: lookups ignore case and give the first value; ``items`` gives every line."""

    __slots__ = ("_lines",)

    def __init__(self, lines: list[tuple[str, str]]) -> None:
        self._lines = lines  # (lower-cased name, value), in arrival order

    def __getitem__(self, name: str) -> str:
        name = name.lower()
        for key, value in self._lines:
            if key == name:
                return value
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self._lines)

    def __len__(self) -> int:
        return len(self._lines)

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        return list(self._lines)


# What a connection's ``headers`` become once the response head has been forwarded (see
# :meth:`Connection.forget_headers`): still not None (the head did arrive), and holding nothing.
_FORWARDED = ResponseHeaders([])


class Connection(asyncio.Protocol):
    """One keep-alive connection to an origin, carrying one exchange at a time."""

    __slots__ = (
        "_body",
        "_buffered",
        "_decoder",
        "_error",
        "_head",
        "_head_only",
        "_lines",
        "_loop",
        "_paused",
        "_until_close",
        "_waiter",
        "complete",
        "headers",
        "idle_since",
        "in_use",
        "key",
        "parser",
        "pool",
        "received",
        "reusable",
        "status",
        "transport",
    )

    def __init__(self, pool: ConnectionPool, key: tuple[str, str, int]) -> None:
        self.pool = pool
        self.key = key
        self._loop = asyncio.get_running_loop()
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.in_use = True
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: ResponseHeaders | None = None
        self.complete = False
        self.reusable = False
        self.received = False  # any byte of this exchange's response
        self._lines: list[tuple[str, str]] | None = []
        self._body: list[bytes] = []
        self._buffered = 0
        self._paused = False
        self._error: BaseException | None = None
        self._head: asyncio.Future[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._until_close = False
        self._head_only = False
        self._decoder: Any = None

    # ---- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.in_use:
            # Bytes with no request outstanding: the upstream broke the protocol; this connection is done.
            self.pool.discard(self)
            assert self.transport is not None
            self.transport.close()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ResponseError("the upstream switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(ResponseError(f"malformed response from the upstream: {exc}"))

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.in_use:
            self.pool.discard(self)
            return
        if not self.complete:
            if self._until_close and self.headers is not None and exc is None:
                self._finish_body()  # a body delimited by the connection's end
            else:
                self._fail(ResponseError("the upstream closed the connection before the response ended"))

    # ---- httptools callbacks ------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._lines is not None:
            self._lines.append((name.decode("latin-1").lower(), value.decode("latin-1").strip(" \t")))

    def on_headers_complete(self) -> None:
        if self.headers is not None:
            # A second response to one request: the upstream broke the protocol.
            self._fail(ResponseError("the upstream sent more than one response"))
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            self._lines = []  # an interim response (103 Early Hints): the real one follows
            return
        lines = self._lines or []
        self._lines = None
        self.status = status
        self.headers = headers = ResponseHeaders(lines)
        coding = headers.get("content-encoding", "identity").strip().lower()
        if coding in ("gzip", "x-gzip"):
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            self._decoder = _DeflateDecoder()
        elif coding not in ("identity", ""):
            self._fail(ResponseError(f"the upstream used an unsupported content coding ({coding})"))
            return
        self._until_close = (
            "content-length" not in headers
            and "chunked" not in headers.get("transfer-encoding", "").lower()
            and status not in (204, 304)
        )
        if self._head is not None and not self._head.done():
            self._head.set_result(None)
        if self._head_only:
            self.complete = True  # the head is all a HEAD response has; the connection is not reused

    def on_body(self, body: bytes) -> None:
        if self.complete or self.status == 0:
            return
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.status == 0:
            return  # the end of an interim response
        if not self.complete:
            self.reusable = self.parser.should_keep_alive() and not self._head_only
            self._finish_body()

    # ---- the exchange -------------------------------------------------------------------------

    def send(self, head: bytes, body: bytes | None, head_only: bool) -> None:
        """Write a request (its head, then its body); the response is awaited with :meth:`response`."""
        assert self.transport is not None
        self._reset()
        self._head_only = head_only
        self._head = self._loop.create_future()
        self.transport.write(head + body if body else head)

    def forget_headers(self) -> None:
        """The response head was forwarded and nothing reads it again: a held stream does not keep it."""
        if self.headers is not None:
            self.headers = _FORWARDED

    async def response(self) -> None:
        """Return once the status and headers are in; ResponseError if the connection failed first."""
        if self._error is not None:
            raise self._error
        assert self._head is not None
        try:
            await self._head
        finally:
            self._head = None

    async def read(self) -> bytes:
        """The body bytes received since the last read, waiting for some; b'' at the body's end."""
        while True:
            data = self.take()
            if data is not None:
                return data
            try:
                await self.readable()
            finally:
                self._waiter = None

    def take(self) -> bytes | None:
        """The body bytes received since the last take, without waiting: b'' at the body's end, None when
        there are none yet (await :meth:`readable`, then take again). ResponseError if the connection failed.
        """
        if self._body:
            data = self._body[0] if len(self._body) == 1 else b"".join(self._body)
            self._body = []
            self._buffered = 0
            if self._paused and self.transport is not None:
                self._paused = False
                self.transport.resume_reading()
            decoded = self._decode(data)
            if decoded:
                return decoded
            # A compressed piece that decoded to nothing yet: b'' would mean the end.
        if self._error is not None:
            raise self._error
        if self.complete:
            return self._flush()
        return None

    def readable(self) -> asyncio.Future[None]:
        """A future done once there is something to take (body bytes, the body's end, a failure).

        A future, not a coroutine: a held stream's reader waits on it directly, with no frame of its own.
        """
        self._waiter = waiter = self._loop.create_future()
        return waiter

    def _decode(self, data: bytes) -> bytes:
        if self._decoder is None:
            return data
        try:
            decoded = bytes(self._decoder.decompress(data, DECODED_LIMIT))
        except zlib.error as exc:
            raise ResponseError(f"the upstream's compressed body is corrupt ({exc})") from None
        if self._decoder.unconsumed_tail:
            raise ResponseError("the upstream's compressed body expands past what the gateway accepts")
        return decoded

    def _flush(self) -> bytes:
        decoder, self._decoder = self._decoder, None
        if decoder is None:
            return b""
        try:
            return bytes(decoder.flush())
        except zlib.error as exc:
            raise ResponseError(f"the upstream's compressed body is corrupt ({exc})") from None

    def _finish_body(self) -> None:
        self.complete = True
        self._wake()

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self.reusable = False
        if self._head is not None and not self._head.done():
            self._head.set_exception(error)
            self._head.exception()  # retrieved here: a caller gone by now must not log it
        self._wake()
        if self.transport is not None:
            self.transport.close()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._waiter = None  # the reader holds it while it waits; nothing else needs it

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _DeflateDecoder:
    """``Content-Encoding: deflate``: zlib-wrapped as the RFC says, or raw deflate as some servers send."""

    __slots__ = ("_inner",)

    def __init__(self) -> None:
        self._inner: Any = None

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if self._inner is None:
            wrapped = bool(data) and (data[0] & 0x0F) == 8
            self._inner = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        return bytes(self._inner.decompress(data, max_length))

    @property
    def unconsumed_tail(self) -> bytes:
        return bytes(self._inner.unconsumed_tail) if self._inner is not None else b""

    def flush(self) -> bytes:
        return bytes(self._inner.flush()) if self._inner is not None else b""


def request_head(
    method: str, target: str, host: str, headers: Mapping[str, str], body: bytes | None
) -> bytes:
    """The request line and headers, checked: no line break or NUL anywhere (no header injection)."""
    lines = [f"{method} {target} HTTP/1.1", f"host: {host}"]
    for name, value in headers.items():
        lines.append(f"{name}: {value}")
    if body is not None:
        lines.append(f"content-length: {len(body)}")
    elif method in ("POST", "PUT", "PATCH"):
        lines.append("content-length: 0")
    text = "\r\n".join(lines)
    breaks = len(lines) - 1  # the joins' own: any other CR or LF came from a value
    if text.count("\r") != breaks or text.count("\n") != breaks or "\0" in text or not _clean_target(target):
        raise ValueError("a header or the request target holds a line break or control character")
    return text.encode("latin-1") + b"\r\n\r\n"


def _clean_target(target: str) -> bool:
    return target.isprintable() and " " not in target

"""Small ASGI helpers for the proxy's hot path (no framework objects per request)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeGuard

import orjson

from gateway.errors import PayloadTooLargeError, RequestTimeoutError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Scope key: the event-loop time by which the request body must be in (set by the front door when the
# body did not arrive with the headers; see gateway.http_protocol).
BODY_DEADLINE = "distillguard.body_deadline"
# Scope key: the request's DisconnectSignal, fired by the front door when its client goes away (see
# gateway.http_protocol). An app served without it watches ``receive`` with a task instead.
DISCONNECT_SIGNAL = "distillguard.disconnect"

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


# Header names, and the values of headers that repeat from request to request, decoded once and then
# shared by every request's map (strings are immutable): a held stream keeps its map as long as it
# lasts, and most of it is the same few names and values. Bounded (new entries stop at the limit,
# nothing is evicted) and short entries only: whatever a client sends, the tables stay small.
_SHARED_LIMIT = 1024
_SHARED_LENGTH = 128
_SHARED_VALUES = frozenset(
    {"accept", "accept-encoding", "anthropic-version", "connection", "content-type", "host", "user-agent"}
)
_NAMES: dict[bytes, str] = {}
_VALUES: dict[bytes, str] = {}


def _shared(table: dict[bytes, str], raw: bytes, text: str) -> str:
    if len(table) < _SHARED_LIMIT and len(raw) <= _SHARED_LENGTH:
        table[raw] = text
    return text


def header_map(scope: Scope) -> dict[str, str]:
    """Lower-cased header names to values; repeated headers are joined with ', ' (in linear time)."""
    headers: dict[str, str] = {}
    repeated: dict[str, list[str]] | None = None
    names, values_of = _NAMES, _VALUES
    for raw_name, raw_value in scope["headers"]:
        name = names.get(raw_name) or _shared(names, raw_name, raw_name.decode("latin-1").lower())
        if name in _SHARED_VALUES:
            value = values_of.get(raw_value) or _shared(values_of, raw_value, raw_value.decode("latin-1"))
        else:
            value = raw_value.decode("latin-1")
        if name not in headers:
            headers[name] = value
        else:
            # Joined once at the end: joining per repeat copies the value so far each time (quadratic).
            if repeated is None:
                repeated = {}
            values = repeated.get(name)
            if values is None:
                repeated[name] = [headers[name], value]
            else:
                values.append(value)
    if repeated is not None:
        for name, values in repeated.items():
            headers[name] = ", ".join(values)
    return headers


def valid_request_id(value: str | None) -> TypeGuard[str]:
    return bool(value) and _REQUEST_ID.match(value) is not None  # type: ignore[arg-type]


def raw_path(scope: Scope) -> bytes:
    """The request path as the client sent it (before percent-decoding, without the query)."""
    raw: bytes | None = scope.get("raw_path")
    if raw is None:
        return str(scope["path"]).encode("utf-8")
    query = raw.find(b"?")
    return raw if query < 0 else raw[:query]


async def read_body(
    receive: Receive,
    limit: int,
    declared: str | None,
    *,
    seconds: float | None = None,
    deadline: float | None = None,
) -> bytes:
    """The whole request body; PayloadTooLargeError past ``limit`` bytes (checked early when declared).

    A body that is not in at the first read must be complete by ``deadline`` (event-loop time: the
    front door's, from the scope's ``BODY_DEADLINE``), else within ``seconds`` from then:
    RequestTimeoutError (408; the connection is closed). A body in at once costs no timer.
    """
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"The request body is larger than the {limit} bytes this gateway accepts.")
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnected
    first: bytes = message.get("body", b"")
    if len(first) > limit:
        raise PayloadTooLargeError(f"The request body is larger than the {limit} bytes this gateway accepts.")
    if not message.get("more_body", False):
        return first
    if deadline is None and seconds is not None:
        deadline = asyncio.get_running_loop().time() + seconds
    if deadline is None:
        return await _read_rest(receive, limit, first)
    try:
        async with asyncio.timeout_at(deadline):
            return await _read_rest(receive, limit, first)
    except TimeoutError:
        raise RequestTimeoutError(
            "The request body did not arrive in time.",
            code="request_timeout",
            headers={"connection": "close"},
        ) from None


async def _read_rest(receive: Receive, limit: int, first: bytes) -> bytes:
    parts = [first] if first else []
    size = len(first)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError(
                    f"The request body is larger than the {limit} bytes this gateway accepts."
                )
            parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


class ClientDisconnected(Exception):
    """The client went away; nothing more can be sent."""


async def send_bytes(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]], content_type: bytes
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_json(send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]]) -> int:
    body = orjson.dumps(payload)
    await send_bytes(send, status, body, headers, b"application/json")
    return len(body)


class DisconnectSignal:
    """Fired once by the front door when a request's client disconnects; calls back its one watcher.

    Costs one small object per request, where watching ``receive`` costs a task (about 1 KB
    held for as long as a stream lasts, and its creation and cancellation on every request).
    """

    __slots__ = ("_callback", "fired")

    def __init__(self) -> None:
        self.fired = False
        self._callback: Callable[[], None] | None = None

    def fire(self) -> None:
        if self.fired:
            return
        self.fired = True
        callback, self._callback = self._callback, None
        if callback is not None:
            callback()

    def watch(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` on disconnect (at once if the client has already gone)."""
        if self.fired:
            callback()
        else:
            self._callback = callback

    def unwatch(self) -> None:
        self._callback = None


class DisconnectWatcher:
    """Cancels the request's task when the client disconnects, so the upstream request is cancelled too.

    Started once the request body has been read: from then on the only message
    ``receive`` can deliver is ``http.disconnect``. With the front door's
    ``signal`` (the scope's ``DISCONNECT_SIGNAL``) nothing waits on ``receive``;
    without one a task does.
    """

    __slots__ = ("_signal", "_task", "_watch", "disconnected", "response_started")

    def __init__(self, receive: Receive, signal: DisconnectSignal | None = None) -> None:
        self.disconnected = False
        self.response_started = False
        self._task = asyncio.current_task()
        self._signal = signal
        if signal is not None:
            self._watch: asyncio.Task[None] | None = None
            signal.watch(self._disconnect)
        else:
            self._watch = asyncio.create_task(self._run(receive))

    def _disconnect(self) -> None:
        self.disconnected = True
        if self._task is not None:
            self._task.cancel()

    async def _run(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self._disconnect()
                return

    def guard(self, send: Send) -> Send:
        """Wrap ``send`` so that watching stops just before the response's last message."""

        async def guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.response_started = True
            elif not message.get("more_body", False):
                self.stop()
            await send(message)

        return guarded

    def stop(self) -> None:
        """Stop watching (call before the response completes: afterwards receive() reports a disconnect)."""
        if self._watch is not None:
            self._watch.cancel()
        if self._signal is not None:
            self._signal.unwatch()

"""uvicorn's httptools protocol: the front door's limits, and the writes of one loop iteration sent as one.

The front door (``limits:`` in the YAML, read from the app uvicorn serves, so a
reload applies to new connections) is enforced here, before any request
reaches the app: at most ``max_headers`` header lines and ``max_header_bytes``
of request line and headers (431, then close); the headers must be complete
within ``header_timeout_seconds`` of the connection or of the request's first
byte, and the body within ``body_timeout_seconds`` of the headers (408, then
close); an idle connection is closed after ``keep_alive_seconds``. The body
deadline goes to the app in the scope (``BODY_DEADLINE``) so that an app
reading the body answers 408 in its own error shape; this protocol closes the
connection a second later if it did not. No timer is set for a request whose
headers and body arrive in one read, the common case.

Writes:

uvicorn writes a response's status line and headers as soon as the app sends
``http.response.start`` and the body on ``http.response.body``: two socket
writes, two TCP segments, for every non-streaming response. On loopback and
in containers a write costs far more than the copy (the kernel delivers the
segment and wakes the reader inside the writer's system call), so the
gateway measured about an eighth of its CPU in that first write. Here writes
made in the same loop iteration are joined and sent once, just after the
iteration; a stream's events still go out as they are sent (each in its own
iteration), and closing flushes first.

Disconnects:

uvicorn tells an app that its client went away only through ``receive``, so
an app that must stop work at once (cancel the upstream request) needs a task
waiting on it for every request. Each request's scope carries a
:class:`~gateway.asgi.DisconnectSignal` (``DISCONNECT_SIGNAL``) that this
protocol fires when it marks the request disconnected, which the proxy
watches instead.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from gateway.asgi import BODY_DEADLINE, DISCONNECT_SIGNAL, DisconnectSignal
from gateway.config.schema import LimitsConfig
from gateway.lean_async import LeanEvent, LeanFlowControl, PipelineQueue

DEFAULT_LIMITS = LimitsConfig()
# How long after the body deadline the protocol closes a connection whose app did not answer the 408.
BODY_GRACE_SECONDS = 1.0


class CoalescingTransport:
    """Wraps a transport; ``write`` buffers until the end of the loop iteration."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._pending: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending = []
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def limits_of(app: Any) -> LimitsConfig:
    """The ``front_door_limits`` of the app uvicorn serves (through its middleware), else the defaults."""
    for _ in range(8):
        limits = getattr(app, "front_door_limits", None)
        if limits is not None:
            return limits  # type: ignore[no-any-return]
        app = getattr(app, "app", None)
        if app is None:
            break
    return DEFAULT_LIMITS


# The listening sockets' addresses and the clients' hosts seen, each kept once; bounded: past the
# limit a new one is used as it is, nothing is evicted.
T = TypeVar("T")
_SHARED: dict[object, object] = {}
_SHARED_LIMIT = 4096


def _shared(value: T) -> T:
    shared = _SHARED.get(value)
    if shared is not None:
        return shared  # type: ignore[return-value]
    if len(_SHARED) < _SHARED_LIMIT:
        _SHARED[value] = value
    return value


class HeadRefused(Exception):
    """Raised inside a parser callback to stop parsing a request head over the limits (431)."""


class HeadState:
    """The front door's limits, and where one connection's current request stands against them."""

    __slots__ = ("head_bytes", "head_received", "header_count", "in_body", "in_head", "limits", "read_timer")

    def __init__(self, limits: LimitsConfig) -> None:
        self.limits = limits
        self.in_head = True  # the next bytes belong to a request's head
        self.in_body = False  # the head is in, the body is not yet
        self.head_received = 0  # bytes received of the unfinished head
        self.head_bytes = 0  # bytes of its complete header lines
        self.header_count = 0
        self.read_timer: asyncio.TimerHandle | None = None


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with the front door's limits, whose transport coalesces a loop iteration's writes.

    It adds one attribute to uvicorn's 27, a :class:`HeadState` that holds the limits too; with the
    ``url`` uvicorn adds on the first request that makes 29. A 30th would make an instance's dict stop
    sharing its keys with its class's other instances (1,584 bytes instead of 296 per connection),
    which 10,000 held streams feel. For the same reason uvicorn's two ``asyncio.Event`` per
    connection (flow control's and the request cycle's, 760 bytes each with their deque) and its
    pipelined-request deque are replaced by the lighter ones of :mod:`gateway.lean_async`.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.head = HeadState(limits_of(self.app))
        self.timeout_keep_alive = self.head.limits.keep_alive_seconds  # type: ignore[assignment]  # uvicorn: int
        self.pipeline = PipelineQueue()  # type: ignore[assignment]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport))  # type: ignore[arg-type]
        # Every request's scope holds these two for its connection's life: the server's address is
        # the same for every connection and the client's host for many, so they are shared.
        if self.server is not None:
            self.server = _shared(self.server)
        if self.client is not None:
            self.client = (_shared(self.client[0]), self.client[1])
        self.flow = LeanFlowControl(self.transport)  # type: ignore[assignment]
        # A connection that sends nothing is held no longer than a slow head.
        head = self.head
        head.read_timer = self.loop.call_later(head.limits.header_timeout_seconds, self._head_expired)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_read_timer()
        super().connection_lost(exc)
        self._signal_disconnect()

    def _signal_disconnect(self) -> None:
        """Tell the app its client went away (uvicorn marks the cycle, which only ``receive`` reads)."""
        cycle = self.cycle
        if cycle is not None and cycle.disconnected:
            signal = cycle.scope.get(DISCONNECT_SIGNAL)
            if isinstance(signal, DisconnectSignal):
                signal.fire()

    def _unsupported_upgrade_warning(self) -> None:
        # The server loads no WebSocket stack (``ws: none``) and no route declares one: an upgrade
        # request is answered as the plain HTTP request it is, which is nothing to warn about (uvicorn's
        # warning would tell the operator to install a WebSocket library).
        self.logger.debug("Upgrade request answered as plain HTTP.")

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        head = self.head
        limits = head.limits
        if head.in_head:
            head.head_received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, HeadRefused):
                self._refuse(431, str(exc.__context__))
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserError:
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if head.in_head:
            if head.head_received > limits.max_header_bytes:
                # An unfinished header line is buffered by the parser: stop it growing.
                self._refuse(431, f"The request headers are larger than {limits.max_header_bytes} bytes.")
            elif head.read_timer is None and head.head_received:
                head.read_timer = self.loop.call_later(limits.header_timeout_seconds, self._head_expired)
        elif head.in_body and head.read_timer is None:
            deadline = self.loop.time() + limits.body_timeout_seconds
            self.scope[BODY_DEADLINE] = deadline  # type: ignore[literal-required]
            head.read_timer = self.loop.call_at(deadline + BODY_GRACE_SECONDS, self._body_expired)

    def on_header(self, name: bytes, value: bytes) -> None:
        head = self.head
        limits = head.limits
        head.header_count += 1
        head.head_bytes += len(name) + len(value) + 4  # ': ' and CRLF
        if head.header_count > limits.max_headers:
            raise HeadRefused(f"The request has more than {limits.max_headers} headers.")
        if head.head_bytes > limits.max_header_bytes:
            raise HeadRefused(f"The request headers are larger than {limits.max_header_bytes} bytes.")
        # As uvicorn's, in one frame: llhttp keeps trailing OWS, which RFC 9110 excludes from the value.
        name = name.lower()
        value = value.rstrip(b" \t")
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        limits = self.head.limits
        if len(self.url) + self.head.head_bytes > limits.max_header_bytes:
            raise HeadRefused(f"The request headers are larger than {limits.max_header_bytes} bytes.")
        self.head.in_head = False
        self.head.in_body = True
        self._cancel_read_timer()
        self.scope[DISCONNECT_SIGNAL] = DisconnectSignal()  # type: ignore[literal-required]
        previous = self.cycle
        super().on_headers_complete()
        if self.cycle is not previous:
            # A new cycle whose task has not run yet and whose event nothing has set: swap in the lighter one.
            self.cycle.message_event = LeanEvent()  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        super().on_message_complete()
        head = self.head
        head.in_body = False
        head.in_head = True
        head.head_received = head.head_bytes = head.header_count = 0
        self._cancel_read_timer()

    def _cancel_read_timer(self) -> None:
        head = self.head
        if head.read_timer is not None:
            head.read_timer.cancel()
            head.read_timer = None

    def _head_expired(self) -> None:
        self.head.read_timer = None
        if not self.head.in_head or self.transport.is_closing():
            return
        if not self.head.head_received:
            self.transport.close()  # idle, no request begun: nothing to answer
            return
        seconds = self.head.limits.header_timeout_seconds
        self._refuse(408, f"The request headers did not arrive within {seconds:g} seconds.")

    def _body_expired(self) -> None:
        self.head.read_timer = None
        if self.head.in_body and not self.transport.is_closing():
            seconds = self.head.limits.body_timeout_seconds
            self._refuse(408, f"The request body did not arrive within {seconds:g} seconds.")

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` with ``message`` unless that would mix with another response, then close.

        A refused head answers unless an earlier request's response is still under way; a late body
        answers unless its own response has started (an app can answer before reading the body).
        """
        cycle = self.cycle
        if self.head.in_head:
            answer = cycle is None or cycle.response_complete
        else:
            answer = cycle is not None and not cycle.response_started
        self._cancel_read_timer()
        self.head.in_head = self.head.in_body = False
        if answer:
            body = message.encode()
            content = [STATUS_LINE[status]]
            for name, value in self.server_state.default_headers:
                content.extend([name, b": ", value, b"\r\n"])
            content.extend(
                [
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: " + str(len(body)).encode() + b"\r\n",
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
            self.transport.write(b"".join(content))
        if cycle is not None and not cycle.response_complete:
            # The app, if still running, sees a disconnect, and what it sends now goes nowhere.
            cycle.disconnected = True
            cycle.message_event.set()
            self._signal_disconnect()
        self.transport.close()

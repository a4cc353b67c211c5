"""Relaying an upstream response to the client through the policies: whole JSON bodies and SSE streams.

Streams are forwarded event by event as they arrive; the only bytes held are
those a policy asks to hold. Response headers are sent with the first event
that survives the policies, so an error before any output still gets a proper
HTTP error status instead of a broken 200 stream.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.asgi import Send, send_bytes
from gateway.errors import GatewayError, ServerError, UpstreamError
from gateway.plugins.base import Exchange
from gateway.plugins.pipeline import Pipeline, StreamChain
from gateway.sse import SSEParser, StreamEvent
from gateway.upstream import UpstreamResponse

log = logging.getLogger("distillguard.relay")


@dataclass(slots=True)
class Timing:
    """Where a request's time went: ``upstream`` is spent waiting on the upstream, the rest is ours."""

    started: float = field(default_factory=time.perf_counter)
    upstream: float = 0.0
    first_event: float | None = None
    stream: bool = False

    def overhead(self, now: float) -> float:
        return max(0.0, now - self.started - self.upstream)


def response_headers(
    exchange: Exchange, upstream: UpstreamResponse | None, request_id: str
) -> list[tuple[bytes, bytes]]:
    headers = upstream.forwarded_headers() if upstream is not None else []
    headers.append((b"x-request-id", request_id.encode()))
    for name, value in exchange.response_headers.items():
        headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    return headers


async def relay_json(
    send: Send,
    exchange: Exchange,
    pipeline: Pipeline,
    upstream: UpstreamResponse,
    timing: Timing,
    request_id: str,
) -> int:
    """A non-streaming response: read it whole, run the response phase, send it. Returns bytes sent."""
    waited = time.perf_counter()
    raw = await upstream.read_all()
    timing.upstream += time.perf_counter() - waited
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamError("The upstream returned a response that is not valid JSON.") from None
    if not isinstance(body, dict):
        raise UpstreamError("The upstream returned JSON that is not an object.")
    adapter = exchange.operation.adapter
    exchange.usage = adapter.usage_from_body(exchange.operation.name, body)
    await pipeline.run_response(exchange, body)
    payload = orjson.dumps(body)
    headers = response_headers(exchange, upstream, request_id)
    overhead = timing.overhead(time.perf_counter())
    headers.append((b"x-distillguard-overhead-ms", f"{overhead * 1000:.3f}".encode()))
    await send_bytes(send, upstream.status, payload, headers, b"application/json")
    return len(payload)


class StreamRelay:
    """Pumps one SSE stream from the upstream through the policies to the client."""

    def __init__(
        self,
        send: Send,
        exchange: Exchange,
        pipeline: Pipeline,
        upstream: UpstreamResponse,
        timing: Timing,
        request_id: str,
        strip_injected_usage: bool,
    ) -> None:
        self.send = send
        self.exchange = exchange
        self.upstream = upstream
        self.timing = timing
        self.request_id = request_id
        self.strip_injected_usage = strip_injected_usage
        self.chain: StreamChain = pipeline.open_stream(exchange)
        self.adapter = exchange.operation.adapter
        self.operation = exchange.operation.name
        self.started = False
        self.bytes_sent = 0
        self.events_sent = 0
        self.terminal_seen = False

    async def run(self) -> None:
        parser = SSEParser()
        try:
            while await self._relay_next(parser):
                pass
            try:
                tail = parser.close()
            except (ValueError, UnicodeDecodeError) as exc:
                raise UpstreamError(f"The upstream sent a malformed event stream ({exc}).") from None
            out = self._process(tail)
            if not self.terminal_seen:
                out.extend(self.chain.end())
            await self._send(out, final=True)
        except GatewayError as error:
            self.chain.abort()
            await self.fail(error)
        except Exception:
            self.chain.abort()
            log.exception("stream relay failed for request %s", self.request_id)
            await self.fail(ServerError("The gateway failed while streaming.", code="internal_error"))
        except BaseException:
            self.chain.abort()
            raise

    async def _relay_next(self, parser: SSEParser) -> bool:
        """Relay the upstream's next piece of body; False at its end.

        A method of its own so that nothing of one piece (its bytes, events, output) stays referenced
        while the next is awaited: an idle stream holds only the parser's unfinished event.
        """
        waited = time.perf_counter()
        chunk = await self.upstream.read_chunk()
        self.timing.upstream += time.perf_counter() - waited
        if not chunk:
            return False
        try:
            events = parser.feed(chunk)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UpstreamError(f"The upstream sent a malformed event stream ({exc}).") from None
        out = self._process(events)
        if out:
            await self._send(out)
        return True

    def _process(self, events: list[StreamEvent]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        usage = self.exchange.usage
        adapter, operation, chain, strip = self.adapter, self.operation, self.chain, self.strip_injected_usage
        empty = chain.empty
        for event in events:
            adapter.observe_usage(operation, event, usage)
            if strip and adapter.is_injected_usage_event(operation, event):
                continue
            if adapter.is_terminal(event, operation):
                self.terminal_seen = True
                out.extend(chain.end(event))
            elif empty:
                out.append(event)
            else:
                out.extend(chain.process(event))
        return out

    async def _start(self) -> None:
        if self.started:
            return
        self.started = True
        headers = response_headers(self.exchange, self.upstream, self.request_id)
        # Sent with the head and read by nothing after it: a held stream does not keep them.
        self.exchange.response_headers.clear()
        self.upstream.forget_headers()
        headers.extend(
            [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"),
            ]
        )
        await self.send({"type": "http.response.start", "status": self.upstream.status, "headers": headers})

    async def _send(self, events: list[StreamEvent], final: bool = False) -> None:
        if not events and not final:
            return
        if not self.started:
            await self._start()
        if events and self.timing.first_event is None:
            self.timing.first_event = time.perf_counter()
        if self.chain.empty:
            # No filter has seen these events: forward the upstream's text of them as parsed.
            payload = b"".join([event.wire or event.encode() for event in events])
        else:
            payload = b"".join([event.encode() for event in events])
        self.bytes_sent += len(payload)
        self.events_sent += len(events)
        await self.send({"type": "http.response.body", "body": payload, "more_body": not final})

    async def fail(self, error: GatewayError) -> None:
        """End the stream with ``error``: as an HTTP error if nothing was sent yet, else as an error event."""
        if not self.started:
            raise error
        event = self.adapter.stream_error_event(error, self.request_id, self.operation)
        await self._send([event], final=True)

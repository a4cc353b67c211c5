"""The proxy endpoint: authenticate, run the policies, forward, relay, account. Raw ASGI for speed.

Every way a request can end passes through ``ProxyHandler.__call__``'s
``finally``: the policies' after_response phase runs (concurrency slots are
released, tokens reconciled), metrics are counted and one access-log line is
written. Errors become the protocol's own error shape; nothing else ever
reaches the client (no tracebacks).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import orjson

from gateway.asgi import (
    BODY_DEADLINE,
    DISCONNECT_SIGNAL,
    ClientDisconnected,
    DisconnectWatcher,
    Receive,
    Scope,
    Send,
    header_map,
    raw_path,
    read_body,
    send_bytes,
    send_json,
    valid_request_id,
)
from gateway.auth import AuthFailure
from gateway.eager_shield import shielded
from gateway.engine import Gateway
from gateway.errors import (
    GatewayError,
    InvalidRequestError,
    PermissionDeniedError,
    ServerError,
    UpstreamError,
)
from gateway.headers import upstream_request_headers
from gateway.plugins.base import Account, Exchange
from gateway.plugins.pipeline import Pipeline
from gateway.protocols import ADAPTERS, protocol_for_path
from gateway.relay import StreamRelay, relay_json
from gateway.request_state import RequestState, access_record
from gateway.routes import BODY_METHODS, RouteMatch
from gateway.runtime import Runtime
from gateway.upstream import UpstreamResponse

log = logging.getLogger("distillguard.proxy")


class ProxyHandler:
    """ASGI app for the API: declared routes only (gateway.routes); every request passes the policies."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.metrics = gateway.metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = self.gateway.runtime
        headers = header_map(scope)
        _release_raw_headers(scope)
        supplied = headers.get("x-request-id")
        request_id = supplied if valid_request_id(supplied) else os.urandom(12).hex()
        state = RequestState(request_id, scope["path"], "unmatched")
        runtime.enter()
        in_flight: Any = None
        watcher: DisconnectWatcher | None = None
        try:
            match = runtime.routes.resolve(scope["method"], raw_path(scope), scope.get("query_string", b""))
            route = match.route
            state.path, state.route, state.protocol = match.path, route.name, route.protocol
            in_flight = self.metrics.in_flight.labels(state.route)
            in_flight.inc()
            account = await runtime.auth.authenticate(headers, route.operation.adapter, match.credential)
            state.account = account
            # Held in a list that hands it over (pop): the handler is its only owner, so the raw bytes
            # go once parsed and sent, not at the end of a stream that may last minutes.
            body = [
                await read_body(
                    receive,
                    runtime.max_body,
                    headers.get("content-length"),
                    seconds=runtime.body_timeout,
                    deadline=scope.get(BODY_DEADLINE),
                )
            ]
            watcher = DisconnectWatcher(receive, scope.get(DISCONNECT_SIGNAL))
            send = watcher.guard(send)
            if route.is_model_operation:
                await self._operation(state, runtime, match, account, headers, scope, body.pop(), send)
            else:
                await self._passthrough(state, runtime, match, account, headers, scope, body.pop(), send)
        except asyncio.CancelledError:
            if watcher is None or not watcher.disconnected:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            state.outcome.status = 499  # the client closed the request (nginx's convention)
        except ClientDisconnected:
            state.outcome.status = 499
        except GatewayError as error:
            await self._send_error(state, send, error, watcher)
        except Exception:
            log.exception("unexpected error handling request %s", request_id)
            await self._send_error(
                state,
                send,
                ServerError("The gateway failed to handle the request.", code="internal_error"),
                watcher,
            )
        finally:
            if watcher is not None:
                watcher.stop()
            if in_flight is not None:
                in_flight.dec()
            runtime.leave()
            await self._finish(state)

    def _admit(
        self,
        state: RequestState,
        runtime: Runtime,
        match: RouteMatch,
        account: Account,
        headers: dict[str, str],
        scope: Scope,
        body: dict[str, Any],
    ) -> tuple[Exchange, Pipeline]:
        """The account's pipeline and the exchange the policies see; a blocked account stops here."""
        operation = match.route.operation
        level = self.gateway.risk.level(account.id)
        pipeline = runtime.pipeline_for(account, level)
        if pipeline.blocked:
            raise PermissionDeniedError(pipeline.block_message, code="account_blocked")
        if operation.name != "passthrough":
            pipeline.check_operation(operation)
        exchange = Exchange(
            request_id=state.request_id,
            operation=operation,
            account=account,
            body=body,
            headers=headers,
            client_ip=runtime.trusted_proxies.of(scope, headers),
            risk_level=level,
            outcome=state.outcome,
            params=match.params,
        )
        # The engine's reading of the body, built here for every request (the engine picks the upstream
        # by its model after the policies): the policy that reads it first is not charged for it.
        _ = exchange.request
        state.exchange, state.pipeline = exchange, pipeline
        return exchange, pipeline

    async def _operation(
        self,
        state: RequestState,
        runtime: Runtime,
        match: RouteMatch,
        account: Account,
        headers: dict[str, str],
        scope: Scope,
        raw_body: bytes,
        send: Send,
    ) -> None:
        operation = match.route.operation
        body = _json_object(raw_body)
        del raw_body  # parsed: the policies and the upstream see ``body``
        operation.adapter.check_request(
            operation.name,
            body,
            lambda model: runtime.pool.select(operation.protocol, model).config,
            match.params,
        )
        exchange, pipeline = self._admit(state, runtime, match, account, headers, scope, body)
        await pipeline.run_request(exchange)
        upstream = runtime.pool.select(operation.protocol, exchange.model)
        stream = exchange.stream
        state.timing.stream = stream
        adapter = operation.adapter
        inject = adapter.prepare_stream_request(operation.name, exchange.body) if stream else False
        forward = upstream_request_headers(headers, state.request_id, exchange.client_ip)
        forward.update(upstream.client_headers(headers))
        forward["content-type"] = "application/json"
        waited = time.perf_counter()
        response = await runtime.pool.open(
            upstream, "POST", match.path_qs, forward, orjson.dumps(exchange.body)
        )
        del forward  # sent: this frame lives as long as the stream, and a held stream does not keep it
        state.timing.upstream += time.perf_counter() - waited
        exchange.outcome.upstream_reached = True
        try:
            if response.status >= 400:
                await self._upstream_failure(state, response, send, exchange)
            elif response.is_event_stream:
                exchange.outcome.streamed = True
                relay = StreamRelay(
                    send, exchange, pipeline, response, state.timing, state.request_id, inject
                )
                try:
                    await relay.run()
                finally:
                    state.outcome.response_bytes, state.outcome.stream_events = (
                        relay.bytes_sent,
                        relay.events_sent,
                    )
                    if relay.started:
                        state.outcome.status = response.status
            else:
                state.outcome.response_bytes = await relay_json(
                    send, exchange, pipeline, response, state.timing, state.request_id
                )
                state.outcome.status = response.status
        finally:
            response.close()

    async def _upstream_failure(
        self, state: RequestState, response: UpstreamResponse, send: Send, exchange: Exchange | None
    ) -> None:
        """An upstream 4xx/5xx: forward its JSON error (it carries no model output), or map garbage to 502.

        Errors about the gateway's own account with the upstream are not the client's and would leak it
        (a key's last digits, the provider's organisation and limits): a refused credential becomes a
        502, the upstream's rate limit a 429 of the gateway's own with the upstream's Retry-After.
        """
        waited = time.perf_counter()
        raw = await response.read_all(limit=1024 * 1024)
        state.timing.upstream += time.perf_counter() - waited
        account_error = response.account_error()
        if account_error is not None:
            raise account_error
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            self.metrics.upstream_errors.labels(response.upstream.name, f"http_{response.status}").inc()
            raise UpstreamError(f"The upstream answered HTTP {response.status} with a body that is not JSON.")
        headers = response.forwarded_headers()
        headers.append((b"x-request-id", state.request_id.encode()))
        if exchange is not None:
            headers.extend(
                (k.encode("latin-1"), v.encode("latin-1")) for k, v in exchange.response_headers.items()
            )
        state.outcome.status = response.status
        state.outcome.response_bytes = await send_json(send, response.status, payload, headers)

    async def _passthrough(
        self,
        state: RequestState,
        runtime: Runtime,
        match: RouteMatch,
        account: Account,
        headers: dict[str, str],
        scope: Scope,
        raw_body: bytes,
        send: Send,
    ) -> None:
        """A declared non-model route: block, quota and detector apply; the body is relayed as written.

        A JSON body is parsed and re-encoded, so the upstream receives what the policies saw.
        """
        method = scope["method"]
        if raw_body and method not in BODY_METHODS:
            raise InvalidRequestError(f"A {method} request carries no body.", code="unexpected_body")
        body = _json_object(raw_body) if raw_body else {}
        route = match.route
        exchange, pipeline = self._admit(state, runtime, match, account, headers, scope, body)
        await pipeline.run_request(exchange)
        upstream = runtime.pool.select(route.protocol, exchange.model)
        forward = upstream_request_headers(headers, state.request_id, exchange.client_ip)
        forward.update(upstream.client_headers(headers))
        payload = None
        if raw_body:
            forward["content-type"] = "application/json"
            payload = orjson.dumps(exchange.body)
        waited = time.perf_counter()
        response = await runtime.pool.open(upstream, method, match.path_qs, forward, payload)
        state.timing.upstream += time.perf_counter() - waited
        exchange.outcome.upstream_reached = True
        try:
            if response.status >= 400:
                await self._upstream_failure(state, response, send, exchange)
                return
            waited = time.perf_counter()
            raw = await response.read_all()
            state.timing.upstream += time.perf_counter() - waited
            out = response.forwarded_headers()
            out.append((b"x-request-id", state.request_id.encode()))
            out.extend(
                (k.encode("latin-1"), v.encode("latin-1")) for k, v in exchange.response_headers.items()
            )
            content_type = response.headers.get("content-type", "application/octet-stream").encode("latin-1")
            await send_bytes(send, response.status, raw, out, content_type)
            state.outcome.status, state.outcome.response_bytes = response.status, len(raw)
        finally:
            response.close()

    async def _send_error(
        self, state: RequestState, send: Send, error: GatewayError, watcher: DisconnectWatcher | None
    ) -> None:
        state.outcome.error = error
        if watcher is not None and watcher.response_started:
            log.error("request %s failed after its response started: %s", state.request_id, error.message)
            return
        state.outcome.status = error.status
        if isinstance(error, AuthFailure):
            self.metrics.auth_failures.labels(error.reason).inc()
        if watcher is not None:
            watcher.stop()
        adapter = ADAPTERS[state.protocol or protocol_for_path(state.path)]
        headers = [(b"x-request-id", state.request_id.encode())]
        headers.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items())
        if state.exchange is not None:
            headers.extend(
                (k.lower().encode("latin-1"), v.encode("latin-1"))
                for k, v in state.exchange.response_headers.items()
                if k.lower() not in error.headers
            )
        if error.status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="distillguard"'))
        state.outcome.response_bytes = await send_json(
            send, error.status, adapter.error_body(error, state.request_id), headers
        )

    async def _finish(self, state: RequestState) -> None:
        now = time.perf_counter()
        exchange = state.exchange
        timing = state.timing
        if exchange is not None and state.pipeline is not None:
            state.outcome.aborted = state.outcome.status == 499
            try:
                await shielded(state.pipeline.run_after(exchange))  # no task unless it waits
            except asyncio.CancelledError:
                log.warning("after_response interrupted for request %s", state.request_id)
        tier = state.account.tier if state.account else "-"
        metrics = self.metrics
        route = state.route
        stream_label = "true" if timing.stream else "false"
        metrics.requests.labels(route, str(state.outcome.status), tier).inc()
        if metrics.per_account_labels and state.account is not None:
            metrics.account_requests.labels(state.account.id).inc()
        metrics.request_duration.labels(route, stream_label).observe(now - timing.started)
        metrics.overhead.labels(route, stream_label).observe(timing.overhead(now))
        if timing.upstream:
            metrics.upstream_duration.labels(route, stream_label).observe(timing.upstream)
        if timing.first_event is not None:
            metrics.ttft.labels(route).observe(timing.first_event - timing.started)
        if state.outcome.stream_events:
            metrics.stream_events.labels(route).inc(state.outcome.stream_events)
        if exchange is not None and exchange.usage.known:
            usage = exchange.usage
            metrics.tokens.labels(route, "input", tier).inc(usage.input_tokens)
            metrics.tokens.labels(route, "output", tier).inc(usage.output_tokens)
            if usage.reasoning_tokens:
                metrics.tokens.labels(route, "reasoning", tier).inc(usage.reasoning_tokens)
        if self.gateway.runtime.access_log:
            self.gateway.access_log.write(access_record(state, now))


def _release_raw_headers(scope: Scope) -> None:
    """Empty the server's list of raw request headers once read into the header map, and drop what is unread.

    The protocol keeps that list (as ``scope["headers"]``) until the connection's next request; nothing
    reads it after the map is built (every phase and the upstream request use the map), and a held
    stream would otherwise keep every header twice.
    """
    raw = scope.get("headers")
    if type(raw) is list:
        raw.clear()
    # Nor are the server's ASGI version and its copy of the lifespan state read (the proxy keeps none).
    scope.pop("asgi", None)
    scope.pop("state", None)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"The request body is not valid JSON: {exc}.", code="invalid_json"
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.", code="invalid_json")
    return body

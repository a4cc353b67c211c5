"""Driving policies without servers: build a pipeline from config dicts and feed it exchanges and streams.

Used by the policy unit tests and the re-chunking property tests::

    harness = PolicyHarness([("reasoning", {"mode": "drop"})])
    exchange = harness.exchange("chat.completions", {"model": "m", "messages": [...], "stream": True})
    await harness.request(exchange)
    out_bytes = harness.stream(exchange, upstream_bytes, chunks=[17, 3, 250])  # re-chunked at those sizes

End-to-end behaviour is tested through real sockets elsewhere; this is for the
many-cases tests where a server per case would be too slow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from gateway.config.loader import PipelineSpec, ResolvedPolicy
from gateway.metrics import GatewayMetrics
from gateway.plugins.base import Account, Exchange, PolicyMode, RiskLevel
from gateway.plugins.pipeline import Pipeline
from gateway.plugins.registry import resolve_policy
from gateway.plugins.services import PolicyServices, SharedObjects
from gateway.protocols import OPERATIONS, Operation
from gateway.risk import RiskBoard
from gateway.sse import SSEParser, StreamEvent
from gateway.state.base import StateStore
from gateway.state.memory import MemoryStore

OPERATION_BY_NAME: dict[str, Operation] = {op.name: op for op in OPERATIONS.values()}


def services(store: StateStore | None = None) -> PolicyServices:
    return PolicyServices(
        store=store if store is not None else MemoryStore("test"),  # an empty MemoryStore is falsy
        metrics=GatewayMetrics(),
        risk=RiskBoard(),
        shared=SharedObjects(),
    )


class PolicyHarness:
    def __init__(
        self,
        policies: Sequence[tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], PolicyMode]],
        *,
        tier: str = "free",
        store: StateStore | None = None,
        shared_services: PolicyServices | None = None,
    ) -> None:
        resolved = []
        for entry in policies:
            name, config = entry[0], entry[1]
            mode: PolicyMode = entry[2] if len(entry) > 2 else "enforce"  # type: ignore[misc]
            cls = resolve_policy(name)
            resolved.append(ResolvedPolicy(name, cls, cls.config_model.model_validate(config), mode))
        self.services = shared_services or services(store)
        self.pipeline = Pipeline(PipelineSpec(tier, tuple(resolved)), self.services)
        self.tier = tier
        if not _loop_running():
            asyncio.run(self.pipeline.startup())

    async def start(self) -> None:
        """Call from async tests (the constructor cannot start policies inside a running loop)."""
        await self.pipeline.startup()

    def exchange(
        self,
        operation: str,
        body: dict[str, Any],
        *,
        account: str = "acct-1",
        risk_level: RiskLevel = "none",
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> Exchange:
        """An exchange of ``operation``; ``params`` are the route's path parameters (Gemini's model)."""
        return Exchange(
            request_id="req-test",
            operation=OPERATION_BY_NAME[operation],
            account=Account(account, self.tier, "dg-test"),
            body=body,
            headers=headers or {},
            client_ip="127.0.0.1",
            risk_level=risk_level,
            params=params,
        )

    async def request(self, exchange: Exchange) -> None:
        await self.pipeline.run_request(exchange)

    async def response(self, exchange: Exchange, body: dict[str, Any]) -> dict[str, Any]:
        exchange.usage = exchange.operation.adapter.usage_from_body(exchange.operation.name, body)
        await self.pipeline.run_response(exchange, body)
        return body

    async def after(self, exchange: Exchange) -> None:
        await self.pipeline.run_after(exchange)

    def stream_events(self, exchange: Exchange, events: Iterable[StreamEvent]) -> list[StreamEvent]:
        """Run parsed events through the stream phase (terminal events trigger on_end, as in the engine)."""
        chain = self.pipeline.open_stream(exchange)
        adapter = exchange.operation.adapter
        name = exchange.operation.name
        out: list[StreamEvent] = []
        terminal = False
        for event in events:
            adapter.observe_usage(name, event, exchange.usage)
            if adapter.is_terminal(event, name):
                terminal = True
                out.extend(chain.end(event))
            else:
                out.extend(chain.process(event))
        if not terminal:
            out.extend(chain.end())
        return out

    def stream(self, exchange: Exchange, upstream: bytes, chunks: Sequence[int] = ()) -> list[StreamEvent]:
        """Parse ``upstream`` split into pieces of the given sizes (rest in one piece), then filter."""
        parser = SSEParser()
        events: list[StreamEvent] = []
        position = 0
        for size in chunks:
            if position >= len(upstream):
                break
            events.extend(parser.feed(upstream[position : position + max(1, size)]))
            position += max(1, size)
        if position < len(upstream):
            events.extend(parser.feed(upstream[position:]))
        events.extend(parser.close())
        return self.stream_events(exchange, events)


def encode_events(events: Iterable[tuple[str | None, dict[str, Any] | str]]) -> bytes:
    """Upstream wire bytes for (event name, data) pairs, as the mock's shape generators yield them."""
    out = []
    for name, data in events:
        event = StreamEvent(data, event=name) if isinstance(data, str) else StreamEvent.of(data, event=name)
        out.append(event.encode())
    return b"".join(out)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True

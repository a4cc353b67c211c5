"""One request's book-keeping in the proxy, and the access-log record made from it."""

from __future__ import annotations

from typing import Any

from gateway.plugins.base import Account, Exchange, Outcome
from gateway.plugins.pipeline import Pipeline
from gateway.protocols import ProtocolName
from gateway.relay import Timing


class RequestState:
    """Book-keeping for one request, filled in as it progresses.

    ``outcome`` is the one record of how the request ended (status, error, bytes and events sent):
    the exchange the policies see shares it, so after_response reads what the metrics and the
    access log record.
    """

    __slots__ = (
        "account",
        "exchange",
        "outcome",
        "path",
        "pipeline",
        "protocol",
        "request_id",
        "route",
        "timing",
    )

    def __init__(self, request_id: str, path: str, route: str) -> None:
        self.request_id = request_id
        self.path = path
        self.route = route
        self.timing = Timing()
        self.outcome = Outcome()
        self.account: Account | None = None
        self.exchange: Exchange | None = None
        self.pipeline: Pipeline | None = None
        self.protocol: ProtocolName | None = None


def access_record(state: RequestState, now: float) -> dict[str, Any]:
    """One access-log record: no credential and no prompt text, ever."""
    timing = state.timing
    record: dict[str, Any] = {
        "request_id": state.request_id,
        "path": state.path,
        "route": state.route,
        "status": state.outcome.status,
        "duration_ms": round((now - timing.started) * 1000, 3),
        "upstream_ms": round(timing.upstream * 1000, 3),
        "overhead_ms": round(timing.overhead(now) * 1000, 3),
        "bytes": state.outcome.response_bytes,
    }
    if state.account is not None:
        record["account"] = state.account.id
        record["tier"] = state.account.tier
        record["key_id"] = state.account.key_id
    exchange = state.exchange
    if exchange is not None:
        record["model"] = exchange.model
        record["stream"] = timing.stream
        record["risk_level"] = exchange.risk_level
        if exchange.usage.known:
            record["tokens_in"] = exchange.usage.input_tokens
            record["tokens_out"] = exchange.usage.output_tokens
        if exchange.actions:
            record["actions"] = [f"{a.policy}:{a.action}:{a.mode}:{a.count}" for a in exchange.actions]
    if state.outcome.error is not None:
        record["error"] = state.outcome.error.code or state.outcome.error.kind
    if timing.first_event is not None:
        record["ttft_ms"] = round((timing.first_event - timing.started) * 1000, 3)
    return record

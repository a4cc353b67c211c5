"""Anthropic Messages API (`/v1/messages`)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from types import MappingProxyType
from typing import Any

from gateway.errors import GatewayError
from gateway.protocols.anthropic_response import MessagesNumbering, MessagesStreamView, MessageView
from gateway.protocols.anthropic_view import MessagesView
from gateway.protocols.base import NO_PARAMS, OperationName, ProtocolAdapter, Usage, int_or_zero
from gateway.protocols.messages_reasoning import MessagesReasoning
from gateway.protocols.ratelimit import anthropic_rate_limit_headers
from gateway.protocols.reasoning import ReasoningRewriter, ReasoningTreatment
from gateway.protocols.request_view import RequestView
from gateway.protocols.response_view import PART_KINDS, ResponseView, StreamNumbering, StreamView
from gateway.sse import StreamEvent

# The part kinds this adapter's response views read completely (media: not yet read).
READ_PARTS = frozenset(PART_KINDS - {"media"})

# Error kinds of gateway.errors -> Anthropic's `error.type` strings (anthropic-sdk types/shared).
_ERROR_TYPES = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "request_too_large": "request_too_large",
    "rate_limit": "rate_limit_error",
    "server_error": "api_error",
    "unavailable": "overloaded_error",
    "upstream": "api_error",
    "timeout": "timeout_error",
}


class AnthropicAdapter(ProtocolAdapter):
    name = "anthropic"
    client_headers = frozenset({"anthropic-version"})
    # Anthropic's API refuses a request without a version header.
    default_headers = MappingProxyType({"anthropic-version": "2023-06-01"})

    def error_body(self, error: GatewayError, request_id: str) -> dict[str, Any]:
        return {
            "type": "error",
            "error": {"type": _ERROR_TYPES.get(error.kind, "api_error"), "message": error.message},
            "request_id": request_id,
        }

    def stream_error_event(
        self, error: GatewayError, request_id: str, operation: OperationName
    ) -> StreamEvent:
        return StreamEvent.of(self.error_body(error, request_id), event="error")

    def is_terminal(self, event: StreamEvent, operation: OperationName) -> bool:
        payload = event.json
        return payload is not None and payload.get("type") in ("message_stop", "error")

    def usage_from_body(self, operation: OperationName, body: dict[str, Any]) -> Usage:
        raw = body.get("usage")
        if not isinstance(raw, dict):
            return Usage()
        return Usage(
            input_tokens=_input_tokens(raw),
            output_tokens=int_or_zero(raw.get("output_tokens")),
            known=True,
        )

    def observe_usage(self, operation: OperationName, event: StreamEvent, usage: Usage) -> None:
        payload = event.json
        if payload is None:
            return
        kind = payload.get("type")
        if kind == "message_start":
            message = payload.get("message")
            raw = message.get("usage") if isinstance(message, dict) else None
            if isinstance(raw, dict):
                usage.input_tokens = _input_tokens(raw)
                usage.output_tokens = int_or_zero(raw.get("output_tokens"))
                usage.known = True
        elif kind == "message_delta":
            raw = payload.get("usage")
            if isinstance(raw, dict):
                # message_delta usage is cumulative (anthropic-sdk MessageDeltaUsage).
                usage.output_tokens = int_or_zero(raw.get("output_tokens")) or usage.output_tokens
                if raw.get("input_tokens") is not None:
                    usage.input_tokens = _input_tokens(raw)
                usage.known = True

    def request_view(
        self, operation: OperationName, body: dict[str, Any], params: Mapping[str, str] = NO_PARAMS
    ) -> RequestView:
        return MessagesView(body) if operation == "messages" else RequestView(body)

    def response_parts(self, operation: OperationName) -> frozenset[str]:
        # Messages responses carry no log-probabilities: the kind is read (there is none to miss).
        return READ_PARTS if operation == "messages" else frozenset()

    def carries(self, operation: OperationName, kind: str) -> bool:
        return kind != "logprobs" and kind in self.response_parts(operation)

    def response_view(self, operation: OperationName, body: dict[str, Any]) -> ResponseView:
        if operation != "messages":
            return ResponseView(body)
        return MessageView(body, usage=partial(self.usage_from_body, operation, body))

    def stream_view(self, operation: OperationName) -> StreamView:
        return MessagesStreamView() if operation == "messages" else StreamView()

    def stream_numbering(self, operation: OperationName) -> StreamNumbering | None:
        return MessagesNumbering() if operation == "messages" else None

    def reasoning(self, operation: OperationName, treatment: ReasoningTreatment) -> ReasoningRewriter | None:
        return MessagesReasoning(treatment) if operation == "messages" else None

    def rate_limit_headers(
        self, kind: str, limit: int, remaining: int, reset_us: int, now: float
    ) -> dict[str, str]:
        return anthropic_rate_limit_headers(kind, limit, remaining, reset_us, now)

    def upstream_auth_headers(self, credential: str) -> dict[str, str]:
        return {"x-api-key": credential}


def _input_tokens(raw: dict[str, Any]) -> int:
    return (
        int_or_zero(raw.get("input_tokens"))
        + int_or_zero(raw.get("cache_creation_input_tokens"))
        + int_or_zero(raw.get("cache_read_input_tokens"))
    )

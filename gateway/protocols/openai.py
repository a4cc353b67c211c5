"""OpenAI-compatible APIs: Chat Completions, legacy Completions, Responses (OpenAI, vLLM, llama.cpp)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from gateway.errors import GatewayError
from gateway.protocols.base import NO_PARAMS, OperationName, ProtocolAdapter, Usage, int_or_zero
from gateway.protocols.chat_reasoning import ChatReasoning
from gateway.protocols.openai_response import ChoicesStreamView, ChoicesView
from gateway.protocols.openai_view import ChatView, CompletionsView, ResponsesView
from gateway.protocols.ratelimit import rate_limit_headers
from gateway.protocols.reasoning import ReasoningRewriter, ReasoningTreatment
from gateway.protocols.request_view import RequestView
from gateway.protocols.response_view import PART_KINDS, ResponseView, StreamNumbering, StreamView
from gateway.protocols.responses_reasoning import ResponsesReasoning
from gateway.protocols.responses_response import ResponsesBodyView, ResponsesNumbering, ResponsesStreamView
from gateway.sse import StreamEvent

# The part kinds this adapter's response views read completely (media: not yet read). Chat reads a
# whole message's citation annotations but not those of a streamed delta, so it does not claim them.
READ_PARTS = frozenset(PART_KINDS - {"media"})
_CHAT_READ_PARTS = READ_PARTS - {"annotation"}

# Error kinds of gateway.errors -> OpenAI's `error.type` strings.
_ERROR_TYPES = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "request_too_large": "invalid_request_error",
    "rate_limit": "rate_limit_error",
    "server_error": "server_error",
    "unavailable": "service_unavailable_error",
    "upstream": "upstream_error",
    "timeout": "timeout_error",
}

_VIEWS: dict[str, type[RequestView]] = {
    "chat.completions": ChatView,
    "completions": CompletionsView,
    "responses": ResponsesView,
}

_TERMINAL_RESPONSE_EVENTS = frozenset(
    {"response.completed", "response.failed", "response.incomplete", "error"}
)


class OpenAIAdapter(ProtocolAdapter):
    name = "openai"

    def error_body(self, error: GatewayError, request_id: str) -> dict[str, Any]:
        return {
            "error": {
                "message": error.message,
                "type": _ERROR_TYPES.get(error.kind, "server_error"),
                "param": error.param,
                "code": error.code,
            }
        }

    def stream_error_event(
        self, error: GatewayError, request_id: str, operation: OperationName
    ) -> StreamEvent:
        body = self.error_body(error, request_id)
        if operation == "responses":
            # Responses streams name their events; carry the ResponseErrorEvent fields
            # and the classic `error` object, which makes the SDK raise APIError.
            body.update(
                type="error",
                code=error.code or body["error"]["type"],
                message=error.message,
                param=error.param,
                sequence_number=0,
            )
            return StreamEvent.of(body, event="error")
        return StreamEvent.of(body)

    def is_terminal(self, event: StreamEvent, operation: OperationName) -> bool:
        if operation == "responses":
            payload = event.json
            return payload is not None and payload.get("type") in _TERMINAL_RESPONSE_EVENTS
        return event.json is None and event.data.strip() == "[DONE]"

    def usage_from_body(self, operation: OperationName, body: dict[str, Any]) -> Usage:
        return _usage(operation, body.get("usage"))

    def observe_usage(self, operation: OperationName, event: StreamEvent, usage: Usage) -> None:
        payload = event.json
        if payload is None:
            return
        if operation == "responses":
            response = payload.get("response")
            if isinstance(response, dict) and response.get("usage"):
                found = _usage(operation, response["usage"])
                if found.known:
                    _copy(found, usage)
            return
        raw = payload.get("usage")
        if raw:
            found = _usage(operation, raw)
            if found.known:
                _copy(found, usage)

    def request_view(
        self, operation: OperationName, body: dict[str, Any], params: Mapping[str, str] = NO_PARAMS
    ) -> RequestView:
        return _VIEWS.get(operation, RequestView)(body)

    def response_parts(self, operation: OperationName) -> frozenset[str]:
        if operation == "chat.completions":
            return _CHAT_READ_PARTS
        return READ_PARTS if operation in ("completions", "responses") else frozenset()

    def response_view(self, operation: OperationName, body: dict[str, Any]) -> ResponseView:
        usage = partial(self.usage_from_body, operation, body)
        if operation in ("chat.completions", "completions"):
            return ChoicesView(body, chat=operation == "chat.completions", usage=usage)
        if operation == "responses":
            return ResponsesBodyView(body, usage=usage)
        return ResponseView(body)

    def stream_view(self, operation: OperationName) -> StreamView:
        if operation in ("chat.completions", "completions"):
            return ChoicesStreamView(chat=operation == "chat.completions")
        if operation == "responses":
            return ResponsesStreamView()
        return StreamView()

    def stream_numbering(self, operation: OperationName) -> StreamNumbering | None:
        return ResponsesNumbering() if operation == "responses" else None

    def reasoning(self, operation: OperationName, treatment: ReasoningTreatment) -> ReasoningRewriter | None:
        if operation == "responses":
            return ResponsesReasoning(treatment)
        if operation in ("chat.completions", "completions"):
            return ChatReasoning(treatment, chat=operation == "chat.completions")
        return None

    def rate_limit_headers(
        self, kind: str, limit: int, remaining: int, reset_us: int, now: float
    ) -> dict[str, str]:
        return rate_limit_headers(kind, limit, remaining, reset_us)

    def upstream_auth_headers(self, credential: str) -> dict[str, str]:
        return {"authorization": f"Bearer {credential}"}

    def prepare_stream_request(self, operation: OperationName, body: dict[str, Any]) -> bool:
        if operation not in ("chat.completions", "completions"):
            return False  # Responses streams carry usage in response.completed.
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage") is True:
            return False
        merged = dict(options) if isinstance(options, dict) else {}
        merged["include_usage"] = True
        body["stream_options"] = merged
        return True

    def is_injected_usage_event(self, operation: OperationName, event: StreamEvent) -> bool:
        payload = event.json
        return payload is not None and payload.get("choices") == [] and "usage" in payload


def _usage(operation: OperationName, raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    if operation == "responses":
        details = raw.get("output_tokens_details") or {}
        return Usage(
            input_tokens=int_or_zero(raw.get("input_tokens")),
            output_tokens=int_or_zero(raw.get("output_tokens")),
            reasoning_tokens=int_or_zero(details.get("reasoning_tokens") if isinstance(details, dict) else 0),
            known=True,
        )
    details = raw.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=int_or_zero(raw.get("prompt_tokens")),
        output_tokens=int_or_zero(raw.get("completion_tokens")),
        reasoning_tokens=int_or_zero(details.get("reasoning_tokens") if isinstance(details, dict) else 0),
        known=True,
    )


def _copy(source: Usage, target: Usage) -> None:
    target.input_tokens = source.input_tokens
    target.output_tokens = source.output_tokens
    target.reasoning_tokens = source.reasoning_tokens
    target.known = True

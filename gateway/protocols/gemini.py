"""Google's Gemini API (``/v1beta/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``).

Shapes, from the ``google-genai`` SDK (``types.py``, ``models.py``, ``errors.py``) and the REST reference:

* the client's key travels in ``x-goog-api-key`` (what the SDK sends) or in the ``?key=`` query
  parameter; the upstream gets the gateway's own key in ``x-goog-api-key``, never the client's query;
* errors are ``{"error": {"code": 400, "message": ..., "status": "INVALID_ARGUMENT", "details": [...]}}``,
  ``status`` being the ``google.rpc.Code`` name Google pairs with the HTTP status; in a stream the
  same object is one ``data:`` event, which the SDK raises as ``APIError`` (it checks for a chunk
  starting ``{"error":``);
* a stream is a series of ``GenerateContentResponse`` chunks and has no terminal event: it ends at
  EOF (the engine then runs the policies' end of stream); each chunk may carry ``usageMetadata``
  (``promptTokenCount``, ``candidatesTokenCount``, ``thoughtsTokenCount``, cumulative);
* thought tokens are billed as output: ``candidatesTokenCount`` excludes them, so output tokens
  here are candidates plus thoughts (what OpenAI's ``completion_tokens`` counts).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from gateway.errors import GatewayError, RateLimitError
from gateway.protocols.base import NO_PARAMS, OperationName, ProtocolAdapter, Usage, int_or_zero
from gateway.protocols.gemini_params import check_generate_content
from gateway.protocols.gemini_reasoning import GeminiReasoning
from gateway.protocols.gemini_response import GeminiChunks, GenerateContentBodyView, GenerateContentStreamView
from gateway.protocols.gemini_view import GenerateContentView, StreamGenerateContentView
from gateway.protocols.params import UpstreamFor
from gateway.protocols.ratelimit import rate_limit_headers
from gateway.protocols.reasoning import ReasoningRewriter, ReasoningTreatment
from gateway.protocols.request_view import RequestView
from gateway.protocols.response_view import ResponseView, StreamNumbering, StreamView
from gateway.sse import StreamEvent

# HTTP status -> the google.rpc.Code name Google's APIs answer it with (google/rpc/code.proto's mapping;
# 405 and 413, which that mapping lacks, as the nearest code: a method the path does not implement, an
# argument too large).
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"

# The part kinds the response views read completely: Gemini has no refusal text (nothing to miss);
# grounding and citation offsets (annotation) and generated media are not read. Reasoning (thought
# parts and thought signatures) is read by the views and rewritten by the reasoning capability
# (gemini_reasoning).
READ_PARTS = frozenset({"text", "tool_arguments", "refusal", "reasoning", "logprobs", "usage"})

_VIEWS: dict[str, type[GenerateContentView]] = {
    "generateContent": GenerateContentView,
    "streamGenerateContent": StreamGenerateContentView,
}


def status_name(status: int) -> str:
    """The ``google.rpc.Code`` name for an HTTP status (unknown ones: the class's generic code)."""
    return _STATUS_NAMES.get(status) or ("FAILED_PRECONDITION" if status < 500 else "UNKNOWN")


class GeminiAdapter(ProtocolAdapter):
    name = "gemini"
    credential_headers = ("x-goog-api-key",)
    credential_query = "key"
    default_passthrough = (
        {"path": "/v1beta/models", "methods": ["GET"], "query": ["pageSize", "pageToken"]},
        {"path": "/v1beta/models/{model}", "methods": ["GET"]},
    )

    def error_body(self, error: GatewayError, request_id: str) -> dict[str, Any]:
        details: list[dict[str, Any]] = []
        if error.code:
            details.append(
                {
                    "@type": _ERROR_INFO,
                    "reason": error.code.upper(),
                    "domain": "distillguard",
                    "metadata": {"request_id": request_id},
                }
            )
        if error.param:
            details.append(
                {
                    "@type": _BAD_REQUEST,
                    "fieldViolations": [{"field": error.param, "description": error.message}],
                }
            )
        if isinstance(error, RateLimitError):
            details.append({"@type": _RETRY_INFO, "retryDelay": f"{max(1, -(-error.retry_after // 1)):.0f}s"})
        payload: dict[str, Any] = {
            "code": error.status,
            "message": error.message,
            "status": status_name(error.status),
        }
        if details:
            payload["details"] = details
        return {"error": payload}

    def stream_error_event(
        self, error: GatewayError, request_id: str, operation: OperationName
    ) -> StreamEvent:
        return StreamEvent.of(self.error_body(error, request_id))

    def is_terminal(self, event: StreamEvent, operation: OperationName) -> bool:
        # No terminal event: a Gemini stream ends at EOF, and its last chunk may still carry text.
        return False

    def usage_from_body(self, operation: OperationName, body: dict[str, Any]) -> Usage:
        return _usage(body.get("usageMetadata"))

    def observe_usage(self, operation: OperationName, event: StreamEvent, usage: Usage) -> None:
        payload = event.json
        if payload is None:
            return
        raw = payload.get("usageMetadata")
        if raw:
            found = _usage(raw)
            if found.known:  # cumulative: the last chunk's counts are the exchange's
                usage.input_tokens = found.input_tokens
                usage.output_tokens = found.output_tokens
                usage.reasoning_tokens = found.reasoning_tokens
                usage.known = True

    def request_view(
        self, operation: OperationName, body: dict[str, Any], params: Mapping[str, str] = NO_PARAMS
    ) -> RequestView:
        view = _VIEWS.get(operation)
        return RequestView(body) if view is None else view(body, params.get("model"))

    def check_request(
        self,
        operation: OperationName,
        body: dict[str, Any],
        upstream_for: UpstreamFor,
        params: Mapping[str, str] = NO_PARAMS,
    ) -> None:
        check_generate_content(body, params.get("model"), upstream_for)

    def response_parts(self, operation: OperationName) -> frozenset[str]:
        return READ_PARTS if operation in _VIEWS else frozenset()

    def carries(self, operation: OperationName, kind: str) -> bool:
        return kind != "refusal" and kind in self.response_parts(operation)

    def response_view(self, operation: OperationName, body: dict[str, Any]) -> ResponseView:
        if operation not in _VIEWS:
            return ResponseView(body)
        return GenerateContentBodyView(body, usage=partial(self.usage_from_body, operation, body))

    def stream_view(self, operation: OperationName) -> StreamView:
        return GenerateContentStreamView() if operation in _VIEWS else StreamView()

    def stream_numbering(self, operation: OperationName) -> StreamNumbering | None:
        return GeminiChunks() if operation in _VIEWS else None

    def reasoning(self, operation: OperationName, treatment: ReasoningTreatment) -> ReasoningRewriter | None:
        return GeminiReasoning(treatment) if operation in _VIEWS else None

    def rate_limit_headers(
        self, kind: str, limit: int, remaining: int, reset_us: int, now: float
    ) -> dict[str, str]:
        # Google's API sends no rate-limit headers (its 429 carries RetryInfo, written by error_body);
        # the gateway's own limits are told in the widely read x-ratelimit-* convention.
        return rate_limit_headers(kind, limit, remaining, reset_us)

    def upstream_auth_headers(self, credential: str) -> dict[str, str]:
        return {"x-goog-api-key": credential}


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    thoughts = int_or_zero(raw.get("thoughtsTokenCount"))
    return Usage(
        # Tool-use prompts (search results, fetched pages) are input the model read.
        input_tokens=int_or_zero(raw.get("promptTokenCount"))
        + int_or_zero(raw.get("toolUsePromptTokenCount")),
        output_tokens=int_or_zero(raw.get("candidatesTokenCount")) + thoughts,
        reasoning_tokens=thoughts,
        known=True,
    )

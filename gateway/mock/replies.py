"""How the mock writes whole replies: JSON bodies, each API's error shape, the provider's account headers."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.asgi import Send, send_bytes

# What real providers send about the provider's own account on every model response (the gateway must not
# pass these on to its clients).
OPENAI_ACCOUNT_HEADERS = [
    (b"openai-organization", b"mock-provider-org"),
    (b"x-ratelimit-limit-requests", b"10000"),
    (b"x-ratelimit-remaining-requests", b"9999"),
    (b"x-ratelimit-reset-requests", b"6ms"),
]
ANTHROPIC_ACCOUNT_HEADERS = [
    (b"anthropic-organization-id", b"mock-provider-org-id"),
    (b"anthropic-ratelimit-requests-limit", b"4000"),
    (b"anthropic-ratelimit-requests-remaining", b"3999"),
    (b"anthropic-ratelimit-requests-reset", b"2026-01-01T00:00:00Z"),
]


async def json_reply(
    send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send_bytes(send, status, orjson.dumps(payload), headers or [], b"application/json")


# What real providers say about the provider's own account (its key, its organisation's limits).
PROVIDER_ERROR_MESSAGES = {
    401: "Incorrect API key provided: sk-mock-************1234.",
    429: "Rate limit reached for mock-small in organization org-mockprovider on requests per min (RPM).",
}


async def error_reply(
    send: Send,
    status: int,
    message: str,
    anthropic: bool,
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    gemini: bool = False,
) -> None:
    if gemini:
        from gateway.mock.gemini_shapes import error_body

        await json_reply(send, status, error_body(status, message), headers)
    elif anthropic:
        kind = {
            400: "invalid_request_error",
            401: "authentication_error",
            404: "not_found_error",
            429: "rate_limit_error",
            529: "overloaded_error",
        }.get(status, "api_error")
        await json_reply(
            send, status, {"type": "error", "error": {"type": kind, "message": message}}, headers
        )
    else:
        await json_reply(
            send,
            status,
            {"error": {"message": message, "type": "mock_error", "param": None, "code": str(status)}},
            headers,
        )

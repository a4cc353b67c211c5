"""Protocol adapters, one module per API family, and the route table that picks them."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.protocols.anthropic import AnthropicAdapter
from gateway.protocols.base import NO_PARAMS, OperationName, ProtocolAdapter, ProtocolName, Usage
from gateway.protocols.gemini import GeminiAdapter
from gateway.protocols.openai import OpenAIAdapter

ADAPTERS: dict[ProtocolName, ProtocolAdapter] = {
    "openai": OpenAIAdapter(),
    "anthropic": AnthropicAdapter(),
    "gemini": GeminiAdapter(),
}

# Every header any family's clients put their credential in: never forwarded upstream.
CLIENT_CREDENTIAL_HEADERS = frozenset(name for a in ADAPTERS.values() for name in a.credential_headers)


@dataclass(frozen=True, slots=True)
class Operation:
    """A model operation the gateway applies policies to.

    ``path`` is a route template (``/v1beta/models/{model}:generateContent``: a parameter matches
    one segment, or the part of it before a literal suffix); ``query`` the query parameters the
    route accepts: ``name`` with any value, ``name=value`` required with exactly that value.
    """

    name: OperationName
    path: str
    protocol: ProtocolName
    query: tuple[str, ...] = ()

    @property
    def adapter(self) -> ProtocolAdapter:
        return ADAPTERS[self.protocol]


OPERATIONS: dict[str, Operation] = {
    op.path: op
    for op in (
        Operation("chat.completions", "/v1/chat/completions", "openai"),
        Operation("completions", "/v1/completions", "openai"),
        Operation("responses", "/v1/responses", "openai"),
        # Anthropic's SDK adds ?beta=true for its beta surface.
        Operation("messages", "/v1/messages", "anthropic", ("beta",)),
        # Gemini: v1 (what the google-genai SDK calls by default) and v1beta (new features first).
        *(
            op
            for version in ("v1beta", "v1")
            for op in (
                Operation("generateContent", f"/{version}/models/{{model}}:generateContent", "gemini"),
                # Without alt=sse Gemini streams one JSON array, which is not an event stream.
                Operation(
                    "streamGenerateContent",
                    f"/{version}/models/{{model}}:streamGenerateContent",
                    "gemini",
                    ("alt=sse",),
                ),
            )
        ),
    )
}

# The names of the model operations (what a policy may name in its config to single operations out).
OPERATION_NAMES: frozenset[str] = frozenset(op.name for op in OPERATIONS.values())

# Path prefixes whose errors are written in a family's shape even when no route matched.
_PATH_PROTOCOLS: tuple[tuple[str, ProtocolName], ...] = (
    ("/v1/messages", "anthropic"),
    ("/v1beta/", "gemini"),
)


def protocol_for_path(path: str) -> ProtocolName:
    """The error shape for a path that is not a model operation (Anthropic's live under /v1/messages,
    Gemini's under /v1beta/); OpenAI's otherwise."""
    for prefix, protocol in _PATH_PROTOCOLS:
        if path.startswith(prefix) or path == prefix.rstrip("/"):
            return protocol
    return "openai"


__all__ = [
    "ADAPTERS",
    "CLIENT_CREDENTIAL_HEADERS",
    "NO_PARAMS",
    "OPERATIONS",
    "OPERATION_NAMES",
    "Operation",
    "OperationName",
    "ProtocolAdapter",
    "ProtocolName",
    "Usage",
    "protocol_for_path",
]

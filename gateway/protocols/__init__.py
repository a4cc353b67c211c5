"""Protocol adapters, one module per API family, and the route table that picks them."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.protocols.anthropic import AnthropicAdapter
from gateway.protocols.base import OperationName, ProtocolAdapter, ProtocolName, Usage
from gateway.protocols.openai import OpenAIAdapter

ADAPTERS: dict[ProtocolName, ProtocolAdapter] = {"openai": OpenAIAdapter(), "anthropic": AnthropicAdapter()}


@dataclass(frozen=True, slots=True)
class Operation:
    """A model operation the gateway applies policies to."""

    name: OperationName
    path: str
    protocol: ProtocolName

    @property
    def adapter(self) -> ProtocolAdapter:
        return ADAPTERS[self.protocol]


OPERATIONS: dict[str, Operation] = {
    op.path: op
    for op in (
        Operation("chat.completions", "/v1/chat/completions", "openai"),
        Operation("completions", "/v1/completions", "openai"),
        Operation("responses", "/v1/responses", "openai"),
        Operation("messages", "/v1/messages", "anthropic"),
    )
}


def protocol_for_path(path: str) -> ProtocolName:
    """The error shape for a path that is not a model operation (Anthropic's live under /v1/messages)."""
    return "anthropic" if path.startswith("/v1/messages") else "openai"


__all__ = [
    "ADAPTERS",
    "OPERATIONS",
    "Operation",
    "OperationName",
    "ProtocolAdapter",
    "ProtocolName",
    "Usage",
    "protocol_for_path",
]

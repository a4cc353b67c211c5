"""The protocol-adapter interface: what differs between API families.

An adapter knows its API's error shapes (JSON body and in-stream event), how a
stream ends, where token usage lives, and how the upstream expects its
credential. The engine and the policies ask the adapter instead of testing the
protocol name, so a new API family is one new module here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from gateway.errors import GatewayError, NotFoundError
from gateway.protocols.declared import DECLARATIONS
from gateway.protocols.params import UpstreamFor, check_body
from gateway.protocols.reasoning import ReasoningRewriter, ReasoningTreatment
from gateway.protocols.request_view import RequestView
from gateway.protocols.response_view import ResponseView, StreamNumbering, StreamView
from gateway.sse import StreamEvent

ProtocolName = Literal["openai", "anthropic", "gemini"]
OperationName = Literal[
    "chat.completions",
    "completions",
    "responses",
    "messages",
    "generateContent",
    "streamGenerateContent",
    "passthrough",
]
# The parameters a route template binds from the path (``{model}``): none for most operations.
NO_PARAMS: Mapping[str, str] = MappingProxyType({})


@dataclass(slots=True)
class Usage:
    """Token counts of one exchange, as the upstream reported them (or ``known=False``)."""

    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    known: bool = False

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class ProtocolAdapter(ABC):
    """One API family (OpenAI-compatible, Anthropic Messages, Google Gemini).

    Besides the methods, an adapter declares where its clients put their credential
    (``credential_headers`` after ``Authorization: Bearer``, then the query parameter
    ``credential_query``, which is never forwarded upstream) and which client headers its
    upstreams receive (``client_headers``, with ``default_headers`` set when the client sent none).
    """

    name: ProtocolName
    credential_headers: ClassVar[tuple[str, ...]] = ("x-api-key",)
    credential_query: ClassVar[str | None] = None
    client_headers: ClassVar[frozenset[str]] = frozenset()
    default_headers: ClassVar[Mapping[str, str]] = MappingProxyType({})
    # Routes of this family served by default as passthrough (``passthrough_routes`` entries without
    # the protocol): model listings, which carry no model output.
    default_passthrough: ClassVar[tuple[Mapping[str, Any], ...]] = ()

    @abstractmethod
    def error_body(self, error: GatewayError, request_id: str) -> dict[str, Any]:
        """The JSON error body for ``error`` in this API's shape."""

    @abstractmethod
    def stream_error_event(
        self, error: GatewayError, request_id: str, operation: OperationName
    ) -> StreamEvent:
        """The event that ends a stream with ``error`` so that the official SDKs raise."""

    @abstractmethod
    def is_terminal(self, event: StreamEvent, operation: OperationName) -> bool:
        """Whether ``event`` ends the stream (``[DONE]``, ``message_stop``, ``response.completed``...)."""

    @abstractmethod
    def usage_from_body(self, operation: OperationName, body: dict[str, Any]) -> Usage:
        """Token usage of a non-streaming response body."""

    @abstractmethod
    def observe_usage(self, operation: OperationName, event: StreamEvent, usage: Usage) -> None:
        """Update ``usage`` from one upstream stream event (before policies see it)."""

    @abstractmethod
    def request_view(
        self, operation: OperationName, body: dict[str, Any], params: Mapping[str, str] = NO_PARAMS
    ) -> RequestView:
        """The format-neutral view of a (checked) request body: what it asks for, and edits to it.

        ``params`` are what the route template bound from the path (Gemini's ``{model}``).
        """

    @abstractmethod
    def rate_limit_headers(
        self, kind: str, limit: int, remaining: int, reset_us: int, now: float
    ) -> dict[str, str]:
        """The API's rate-limit headers for one ``kind`` ("requests" or "tokens") of a client's limit.

        ``remaining`` is what is left after this request, ``reset_us`` the time until the limit is back
        to full, ``now`` the Unix time in seconds.
        """

    @abstractmethod
    def upstream_auth_headers(self, credential: str) -> dict[str, str]:
        """Headers carrying the upstream credential."""

    def check_request(
        self,
        operation: OperationName,
        body: dict[str, Any],
        upstream_for: UpstreamFor,
        params: Mapping[str, str] = NO_PARAMS,
    ) -> None:
        """Validate a request body before any policy runs (see :mod:`gateway.protocols.params`).

        Raises :class:`~gateway.errors.InvalidRequestError` naming the parameter at fault; sets a
        missing ``model`` to the serving upstream's ``default_model``. ``upstream_for(model)`` is the
        configuration of the upstream that serves ``model`` (None: the protocol's first); ``params``
        are the route's path parameters.
        """
        declaration = DECLARATIONS.get(operation)
        if declaration is None:
            raise NotFoundError(f"The operation {operation} takes no request body here.")
        check_body(declaration, body, upstream_for)

    def client_credential(self, headers: Mapping[str, str], query_credential: str | None) -> str | None:
        """The credential the client sent: ``Authorization: Bearer``, else the first of
        ``credential_headers``, else the ``credential_query`` parameter's value (None: none sent).

        A malformed ``Authorization`` header is no credential (never a fallback to another place).
        """
        value = headers.get("authorization")
        if value:
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
        for name in self.credential_headers:
            found = headers.get(name)
            if found and found.strip():
                return found.strip()
        if query_credential and query_credential.strip():
            return query_credential.strip()
        return None

    def prepare_stream_request(self, operation: OperationName, body: dict[str, Any]) -> bool:
        """Adjust a streaming request before forwarding so that usage is reported.

        Returns True when the adapter asked the upstream for something the
        client did not, so that :meth:`is_injected_usage_event` must filter it.
        """
        return False

    def is_injected_usage_event(self, operation: OperationName, event: StreamEvent) -> bool:
        """Whether ``event`` exists only because :meth:`prepare_stream_request` asked for it."""
        return False

    # -- the response view (see gateway.protocols.response_view) ---------------------------------

    def response_parts(self, operation: OperationName) -> frozenset[str]:
        """The part kinds this adapter reads completely in ``operation``'s responses.

        A kind the format cannot carry at all (log-probabilities in Anthropic's Messages API)
        counts as read: there is nothing of it to miss. A policy whose ``needs_parts`` are not
        all here is refused for the operation (fail closed). The default reads nothing.
        """
        return frozenset()

    def carries(self, operation: OperationName, kind: str) -> bool:
        """Whether ``operation``'s responses can carry parts of ``kind`` at all (a policy may skip them)."""
        return kind in self.response_parts(operation)

    def response_view(self, operation: OperationName, body: dict[str, Any]) -> ResponseView:
        """The content parts of a whole response body, with edits in place."""
        return ResponseView(body)

    def stream_view(self, operation: OperationName) -> StreamView:
        """A reader of one response stream's events (one per stream filter: it may keep state)."""
        return StreamView()

    def stream_numbering(self, operation: OperationName) -> StreamNumbering | None:
        """The renumbering pass the engine runs on a stream after every policy filter (None: none needed)."""
        return None

    def reasoning(self, operation: OperationName, treatment: ReasoningTreatment) -> ReasoningRewriter | None:
        """The withholding of reasoning in ``operation``'s responses, as ``treatment`` decides
        (see :mod:`gateway.protocols.reasoning`); None: the adapter cannot rewrite it."""
        return None


def int_or_zero(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

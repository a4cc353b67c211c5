"""The policy-plugin interface: one base class with five explicit phases.

A policy is a class with a typed config schema (a pydantic model) and phase
methods; every phase has a no-op default, so a policy overrides only what it
needs. The engine builds one instance per (tier, account override, risk level)
pipeline, calls the phases in the YAML's order, and never calls a policy by
name::

    request          async on_request(exchange)            inspect, modify exchange.body, or raise to reject
    response         async on_response(exchange, body)      modify a whole non-streaming body in place
    stream event     stream_filter(exchange).on_event(ev)   pass [ev], modify, drop [], hold, emit several
    end of stream    stream_filter(exchange).on_end()       flush what was held back (also on abort)
    after response   async after_response(exchange)         accounting; runs however the exchange ended

Rejections are raised as :class:`gateway.errors.GatewayError` subclasses. Any
other exception is a policy failure: in ``enforce`` mode the engine fails
closed (the client gets a protocol error and no unfiltered content), in
``shadow`` mode it is counted and ignored. In shadow mode the engine gives the
policy copies, so whatever it does is recorded (``record``) but changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from gateway.protocols import NO_PARAMS, Operation, Usage
from gateway.protocols.request_view import RequestView
from gateway.protocols.response_view import ResponseView, StreamView
from gateway.risk import RISK_LEVELS as RISK_LEVELS  # re-exported: part of the plugin interface
from gateway.risk import RiskLevel as RiskLevel
from gateway.risk import is_risk_level as is_risk_level
from gateway.sse import StreamEvent

if TYPE_CHECKING:
    from gateway.errors import GatewayError
    from gateway.plugins.services import PolicyServices

PolicyMode = Literal["enforce", "shadow"]


class PolicyConfig(BaseModel):
    """Base of every policy's config schema: unknown keys are refused, values validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


ConfigT = TypeVar("ConfigT", bound=PolicyConfig)


@dataclass(frozen=True, slots=True)
class Account:
    """The authenticated caller. ``id`` is the account, ``key_id`` names the credential used."""

    id: str
    tier: str
    key_id: str = ""
    via: Literal["api_key", "jwt", "anonymous"] = "api_key"


@dataclass(slots=True)
class Outcome:
    """How an exchange ended, as after_response sees it."""

    status: int = 0
    error: GatewayError | None = None
    aborted: bool = False  # the client went away before the end
    upstream_reached: bool = False
    streamed: bool = False
    response_bytes: int = 0
    stream_events: int = 0


@dataclass(slots=True)
class PolicyAction:
    policy: str
    action: str
    mode: PolicyMode
    count: int = 1


@dataclass(slots=True)
class Exchange:
    """One client request and its response, shared by all phases of all policies.

    ``body`` is the parsed request JSON; request-phase policies may change it,
    and what they leave is what the upstream receives. ``response_headers`` are
    added to the client's response (a stream's are emptied once its head is
    sent). ``usage`` is filled by the engine from the upstream's report.
    ``scratch`` holds per-exchange state a policy carries from one phase to
    the next (key it by the policy's name); it is the policies' alone.
    ``entered`` is the engine's: the policies whose request phase ran, so
    their after_response runs however the exchange ends.
    """

    request_id: str
    operation: Operation
    account: Account
    body: dict[str, Any]
    headers: Mapping[str, str]
    client_ip: str
    risk_level: RiskLevel = "none"
    started: float = field(default_factory=time.monotonic)
    response_headers: dict[str, str] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    outcome: Outcome = field(default_factory=Outcome)
    actions: list[PolicyAction] = field(default_factory=list)
    scratch: dict[str, Any] = field(default_factory=dict)
    entered: list[Policy[Any]] = field(default_factory=list, repr=False)
    params: Mapping[str, str] | None = None  # the route's path parameters (Gemini's {model}), if any

    _view: RequestView | None = field(default=None, repr=False)

    @property
    def request(self) -> RequestView:
        """The format-neutral view of ``body`` (the adapter's reading; edits go to ``body``)."""
        view = self._view
        if view is None or view.body is not self.body:
            view = self._view = self.operation.adapter.request_view(
                self.operation.name, self.body, self.params or NO_PARAMS
            )
        return view

    def response_view(self, body: dict[str, Any]) -> ResponseView:
        """The adapter's view of a whole response body: its content parts, edited in place."""
        return self.operation.adapter.response_view(self.operation.name, body)

    def stream_view(self) -> StreamView:
        """A new reader of this exchange's response stream (one per stream filter)."""
        return self.operation.adapter.stream_view(self.operation.name)

    def carries(self, kind: str) -> bool:
        """Whether this operation's responses can carry parts of ``kind`` at all."""
        return self.operation.adapter.carries(self.operation.name, kind)

    @property
    def model(self) -> str | None:
        return self.request.model

    @property
    def stream(self) -> bool:
        return self.request.stream


class StreamFilter:
    """Per-stream state of one policy. The default passes every event through.

    ``on_event`` returns the events to forward in place of the one given: the
    event itself (pass or modified), nothing (drop or hold back), or several.
    ``on_end`` is called once when the upstream stream ends, before the
    protocol's terminal event is forwarded, and also when the exchange aborts
    (its output is then discarded); it returns what was held back. The terminal
    event itself (``[DONE]``, ``message_stop``, ``response.completed``, which
    holds the whole response) then goes through ``on_event`` too.
    """

    def on_event(self, event: StreamEvent) -> list[StreamEvent]:
        return [event]

    def on_end(self) -> list[StreamEvent]:
        return []


@dataclass(frozen=True, slots=True)
class PolicyContext:
    """What the engine hands a policy at construction."""

    name: str
    mode: PolicyMode
    services: PolicyServices
    tier: str


class Policy(Generic[ConfigT]):
    """Base class of all policies. Subclasses set ``config_model`` and override phases."""

    config_model: ClassVar[type[PolicyConfig]] = PolicyConfig
    # True when the policy is only correct if every process sees the same state (a quota): the
    # engine then refuses several workers on the in-process memory backend (limits would multiply).
    shared_state_required: ClassVar[bool] = False
    # The response part kinds (gateway.protocols.response_view.PartKind) this policy reads or
    # rewrites. An operation whose adapter cannot provide them all is refused (403) for every
    # pipeline that enforces this policy, so content the policy cannot see never passes through it
    # unfiltered; only a route the operator declares passthrough skips policies. Empty: the policy
    # reads only the request view, which every operation has.
    needs_parts: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: ConfigT, context: PolicyContext) -> None:
        self.config = config
        self.name = context.name
        self.mode: PolicyMode = context.mode
        self.services = context.services
        self.tier = context.tier

    async def startup(self) -> None:
        """Called once after the pipeline is built, before it serves (open connections, warm caches)."""

    async def shutdown(self) -> None:
        """Called when a reload retires this instance or the gateway stops."""

    async def on_request(self, exchange: Exchange) -> None:
        """Request phase: inspect or modify ``exchange.body``; raise a GatewayError to reject."""

    async def on_response(self, exchange: Exchange, body: dict[str, Any]) -> None:
        """Response phase: modify a whole non-streaming response body in place."""

    def stream_filter(self, exchange: Exchange) -> StreamFilter | None:
        """Stream phase: a filter with this stream's state, or None to leave the stream alone."""
        return None

    async def after_response(self, exchange: Exchange) -> None:
        """After-response phase: accounting. Runs for every policy whose on_request ran."""

    def record(self, exchange: Exchange, action: str, count: int = 1) -> None:
        """Record an action (counted in metrics with this policy's name and mode, and logged)."""
        if count <= 0:
            return
        exchange.actions.append(PolicyAction(self.name, action, self.mode, count))
        self.services.metrics.policy_action(self.name, action, self.mode, count)

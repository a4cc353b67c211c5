"""Running an ordered list of policies over one exchange, with shadow mode and fail-closed errors."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from gateway.errors import GatewayError, PermissionDeniedError, PolicyFailureError, UpstreamError
from gateway.plugins.base import Exchange, Policy, PolicyContext, StreamFilter
from gateway.plugins.services import PolicyServices
from gateway.sse import StreamEvent

if TYPE_CHECKING:
    # Only the spec's type: the plugin interface loads without the config machinery built on it.
    from gateway.config.loader import PipelineSpec
    from gateway.protocols import Operation
    from gateway.protocols.response_view import StreamNumbering

# A stream filter's ``on_event``, bound once per stream.
OnEvent = Callable[[StreamEvent], Iterable[StreamEvent]]

log = logging.getLogger("distillguard.pipeline")


def _overrides(policy: Policy, method: str) -> bool:  # type: ignore[type-arg]
    return getattr(type(policy), method) is not getattr(Policy, method)


class Pipeline:
    """The policies of one (tier, account override, risk level), instantiated and ordered."""

    def __init__(self, spec: PipelineSpec, services: PolicyServices) -> None:
        self.spec = spec
        self.services = services
        self.blocked = spec.blocked
        self.block_message = spec.block_message
        self.policies: list[Policy] = [  # type: ignore[type-arg]
            entry.cls(entry.config, PolicyContext(entry.name, entry.mode, services, spec.tier))
            for entry in spec.policies
        ]
        self._request = [p for p in self.policies if _overrides(p, "on_request")]
        self._response = [p for p in self.policies if _overrides(p, "on_response")]
        self._stream = [p for p in self.policies if _overrides(p, "stream_filter")]
        self._after = [p for p in self.policies if _overrides(p, "after_response")]
        self._blind: dict[str, str] = {}  # operation -> the first enforcing policy that cannot read it
        metrics = services.metrics
        self._failures = metrics.policy_failures
        # Each policy's phase histograms, looked up once: three observations per policy per request.
        duration = metrics.policy_duration
        self._timed = {
            phase: {id(p): duration.labels(p.name, phase) for p in self.policies}
            for phase in ("request", "response", "after_response")
        }

    async def startup(self) -> None:
        for policy in self.policies:
            await policy.startup()

    def check_operation(self, operation: Operation) -> None:
        """Refuse ``operation`` when an enforcing policy needs response parts its adapter cannot provide.

        Fail closed: content a policy cannot see never passes through it unfiltered. The answer
        is cached per operation (pipelines are rebuilt on reload).
        """
        blind = self._blind.get(operation.name)
        if blind is None:
            provided = operation.adapter.response_parts(operation.name)
            blind = self._blind[operation.name] = next(
                (
                    f"policy '{p.name}' cannot see its {', '.join(sorted(p.needs_parts - provided))} parts"
                    for p in self.policies
                    if p.mode == "enforce" and not p.needs_parts <= provided
                ),
                "",
            )
        if blind:
            raise PermissionDeniedError(
                f"The operation {operation.name} is not available on this tier: {blind}.",
                code="operation_not_supported",
            )

    async def shutdown(self) -> None:
        for policy in self.policies:
            try:
                await policy.shutdown()
            except Exception:
                log.exception("policy %s failed to shut down", policy.name)

    def _failed(self, policy: Policy, phase: str) -> PolicyFailureError | None:  # type: ignore[type-arg]
        """Count and log a policy failure; return the error to raise (enforce) or None (shadow)."""
        self._failures.labels(policy.name, phase, policy.mode).inc()
        log.error("policy %s failed in phase %s (%s mode)", policy.name, phase, policy.mode, exc_info=True)
        return PolicyFailureError(policy.name, phase) if policy.mode == "enforce" else None

    async def run_request(self, exchange: Exchange) -> None:
        """Request phase, in order. Every policy reached gets its after_response later."""
        entered = exchange.entered
        timed = self._timed["request"]
        for policy in self._request:
            entered.append(policy)
            started = time.perf_counter()
            if policy.mode == "shadow":
                await self._shadow_request(policy, exchange)
            else:
                try:
                    await policy.on_request(exchange)
                except GatewayError:
                    raise
                except Exception:
                    raise self._failed(policy, "request") from None  # type: ignore[misc]
            timed[id(policy)].observe(time.perf_counter() - started)

    async def _shadow_request(self, policy: Policy, exchange: Exchange) -> None:  # type: ignore[type-arg]
        real_body, real_headers = exchange.body, exchange.response_headers
        exchange.body = copy.deepcopy(real_body)
        exchange.response_headers = dict(real_headers)
        try:
            await policy.on_request(exchange)
        except GatewayError as exc:
            policy.record(exchange, f"would_reject:{exc.kind}")
        except Exception:
            self._failed(policy, "request")
        finally:
            exchange.body, exchange.response_headers = real_body, real_headers

    async def run_response(self, exchange: Exchange, body: dict[str, Any]) -> None:
        timed = self._timed["response"]
        for policy in self._response:
            started = time.perf_counter()
            if policy.mode == "shadow":
                try:
                    await policy.on_response(exchange, copy.deepcopy(body))
                except Exception:
                    self._failed(policy, "response")
            else:
                try:
                    await policy.on_response(exchange, body)
                except Exception:
                    raise self._failed(policy, "response") from None  # type: ignore[misc]
            timed[id(policy)].observe(time.perf_counter() - started)

    def open_stream(self, exchange: Exchange) -> StreamChain:
        stages: list[tuple[Policy, StreamFilter]] = []  # type: ignore[type-arg]
        for policy in self._stream:
            try:
                stream_filter = policy.stream_filter(exchange)
            except Exception:
                error = self._failed(policy, "stream")
                if error is not None:
                    raise error from None
                continue
            if stream_filter is not None:
                stages.append((policy, stream_filter))
        numbering = exchange.operation.adapter.stream_numbering(exchange.operation.name) if stages else None
        return StreamChain(self, stages, numbering)

    async def run_after(self, exchange: Exchange) -> None:
        """After-response phase, in reverse order; failures are logged and counted, never raised."""
        reached = set(map(id, exchange.entered))
        timed = self._timed["after_response"]
        for policy in reversed(self._after):
            if policy not in self._request or id(policy) in reached:
                started = time.perf_counter()
                try:
                    await policy.after_response(exchange)
                except Exception:
                    self._failed(policy, "after_response")
                timed[id(policy)].observe(time.perf_counter() - started)


class StreamChain:
    """The stream filters of one exchange, composed: each filter's output feeds the next."""

    __slots__ = ("_enforced", "_numbering", "_pipeline", "_stages", "ended")

    def __init__(
        self,
        pipeline: Pipeline,
        stages: list[tuple[Policy, StreamFilter]],  # type: ignore[type-arg]
        numbering: StreamNumbering | None = None,
    ) -> None:
        self._pipeline = pipeline
        # One tuple for the chain's life (a held stream keeps it): each stage with its ``on_event``
        # bound once, which ``process`` calls directly when every filter enforces (a stream's hot loop).
        self._stages: tuple[tuple[Policy, StreamFilter, OnEvent], ...] = tuple(  # type: ignore[type-arg]
            (policy, stream_filter, stream_filter.on_event) for policy, stream_filter in stages
        )
        # Every filter enforces (the usual chain): ``process`` skips ``_apply``, one event at a time.
        self._enforced = all(policy.mode == "enforce" for policy, _ in stages)
        # The adapter's renumbering, run once on what the last filter emits: filters may drop,
        # hold and insert events, and the client still sees consecutive numbers and indexes.
        self._numbering = numbering
        self.ended = False

    @property
    def empty(self) -> bool:
        return not self._stages

    @property
    def filters(self) -> int:
        """How many stream filters the chain runs."""
        return len(self._stages)

    def process(self, event: StreamEvent) -> list[StreamEvent]:
        """Run ``event`` through every filter; raises PolicyFailureError when an enforcing filter fails."""
        if not self._enforced:
            staged = [event]
            for index in range(len(self._stages)):
                staged = self._apply(index, staged)
                if not staged:
                    return staged
            return self._renumber(staged)
        events: list[StreamEvent] | None = None
        for policy, _, on_event in self._stages:
            if events is None:  # one event so far: the usual case, no list to walk
                try:
                    out = on_event(event)
                    if type(out) is not list:  # any iterable of events, as _apply takes
                        out = list(out)
                except Exception:
                    raise self._pipeline._failed(policy, "stream") from None  # type: ignore[misc]
                if len(out) == 1:
                    event = out[0]
                    continue
                events = out
            else:
                out = []
                for each in events:
                    try:
                        out.extend(on_event(each))
                    except Exception:
                        raise self._pipeline._failed(policy, "stream") from None  # type: ignore[misc]
                events = out
            if not events:
                return events
        if events is None:
            events = [event]
        if self._numbering is None:
            return events
        return self._renumber(events)

    def end(self, terminal: StreamEvent | None = None) -> list[StreamEvent]:
        """End of stream: each filter flushes, and what it flushes runs through the filters after it.

        ``terminal`` (the protocol's last event: ``[DONE]``, ``message_stop``,
        ``response.completed``...) then goes through each filter's ``on_event``
        after that filter's ``on_end``, and comes out after everything flushed:
        it can carry content (``response.completed`` holds the whole response),
        so no filter may be bypassed.
        """
        if self.ended:
            # A second terminal event (a confused upstream) is still filtered like any event.
            return self.process(terminal) if terminal is not None else []
        self.ended = True
        out: list[StreamEvent] = []
        last: list[StreamEvent] = [terminal] if terminal is not None else []
        for index, (policy, stream_filter, _) in enumerate(self._stages):
            if out:
                out = self._apply(index, out)
            try:
                flushed = stream_filter.on_end()
            except Exception:
                error = self._pipeline._failed(policy, "stream_end")
                if error is not None:
                    raise error from None
                flushed = []
            if policy.mode == "enforce":
                out.extend(flushed)
            if last:
                last = self._apply(index, last)
        return self._renumber(out + last)

    def _renumber(self, events: list[StreamEvent]) -> list[StreamEvent]:
        if self._numbering is None or not events:
            return events
        try:
            return self._numbering.apply(events)
        except ValueError as exc:
            raise UpstreamError(f"The upstream sent an inconsistent event stream ({exc}).") from None

    def abort(self) -> None:
        """The exchange ended early: let filters release state; their output is discarded."""
        if self.ended:
            return
        self.ended = True
        for _, stream_filter, _ in self._stages:
            try:
                stream_filter.on_end()
            except Exception:
                log.debug("stream filter failed while aborting", exc_info=True)

    def _apply(self, index: int, events: list[StreamEvent]) -> list[StreamEvent]:
        policy, stream_filter, on_event = self._stages[index]
        out: list[StreamEvent] = []
        if policy.mode == "shadow":
            for event in events:
                try:
                    stream_filter.on_event(event.copy())
                except Exception:
                    self._pipeline._failed(policy, "stream")
            return events
        for event in events:
            try:
                out.extend(on_event(event))
            except Exception:
                raise self._pipeline._failed(policy, "stream") from None  # type: ignore[misc]
        return out

"""Policies used only by the engine's tests (referenced in YAML as ``tests.sample_policies:Name``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from gateway.errors import PolicyViolationError
from gateway.plugins import (
    FALSE_IS_STRICTER,
    HIGHER_IS_STRICTER,
    KEYED,
    LOWER_IS_STRICTER,
    NEUTRAL,
    SUPERSET_IS_STRICTER,
    TRUE_IS_STRICTER,
    Exchange,
    Policy,
    PolicyConfig,
    Ranked,
    StreamFilter,
)
from gateway.sse import StreamEvent


class FailingConfig(PolicyConfig):
    phase: Literal["request", "response", "stream", "stream_end", "after_response"] = "stream"
    after_events: int = Field(0, ge=0)


class FailingPolicy(Policy[FailingConfig]):
    """Raises RuntimeError in the configured phase (after ``after_events`` stream events)."""

    config_model = FailingConfig

    async def on_request(self, exchange: Exchange) -> None:
        if self.config.phase == "request":
            raise RuntimeError("boom in request")

    async def on_response(self, exchange: Exchange, body: dict[str, Any]) -> None:
        if self.config.phase == "response":
            raise RuntimeError("boom in response")

    def stream_filter(self, exchange: Exchange) -> StreamFilter | None:
        policy = self

        class Boom(StreamFilter):
            seen = 0

            def on_event(self, event: StreamEvent) -> list[StreamEvent]:
                self.seen += 1
                if policy.config.phase == "stream" and self.seen > policy.config.after_events:
                    raise RuntimeError("boom in stream")
                return [event]

            def on_end(self) -> list[StreamEvent]:
                if policy.config.phase == "stream_end":
                    raise RuntimeError("boom at end")
                return []

        return Boom()

    async def after_response(self, exchange: Exchange) -> None:
        if self.config.phase == "after_response":
            raise RuntimeError("boom after")


class UppercaseConfig(PolicyConfig):
    marker: Annotated[str, NEUTRAL] = "UPPER"  # a label: risk levels may set it to show which pipeline served


class UppercasePolicy(Policy[UppercaseConfig]):
    """Upper-cases chat content (whole and streamed) and records it: a visible change for shadow tests."""

    config_model = UppercaseConfig

    async def on_request(self, exchange: Exchange) -> None:
        exchange.body["metadata_marker"] = self.config.marker
        exchange.response_headers["x-test-marker"] = self.config.marker

    async def on_response(self, exchange: Exchange, body: dict[str, Any]) -> None:
        for choice in body.get("choices", []):
            message = choice.get("message") or {}
            if isinstance(message.get("content"), str):
                message["content"] = message["content"].upper()
                self.record(exchange, "uppercase")

    def stream_filter(self, exchange: Exchange) -> StreamFilter | None:
        policy = self

        class Upper(StreamFilter):
            def on_event(self, event: StreamEvent) -> list[StreamEvent]:
                for choice in (event.json or {}).get("choices", []):
                    delta = choice.get("delta") or {}
                    if isinstance(delta.get("content"), str) and delta["content"]:
                        delta["content"] = delta["content"].upper()
                        policy.record(exchange, "uppercase")
                return [event]

        return Upper()


class RejectConfig(PolicyConfig):
    forbidden_param: str = "logit_bias"


class RejectPolicy(Policy[RejectConfig]):
    config_model = RejectConfig

    async def on_request(self, exchange: Exchange) -> None:
        if self.config.forbidden_param in exchange.body:
            raise PolicyViolationError(
                f"'{self.config.forbidden_param}' is not allowed on tier '{self.tier}'.",
                param=self.config.forbidden_param,
                policy=self.name,
            )


class CountingPolicy(Policy[PolicyConfig]):
    """Counts phases into a shared dict, to check after_response runs however a request ends."""

    config_model = PolicyConfig
    calls: dict[str, int] = {}

    async def on_request(self, exchange: Exchange) -> None:
        CountingPolicy.calls["request"] = CountingPolicy.calls.get("request", 0) + 1

    async def after_response(self, exchange: Exchange) -> None:
        key = "aborted" if exchange.outcome.aborted else f"after_{exchange.outcome.status}"
        CountingPolicy.calls[key] = CountingPolicy.calls.get(key, 0) + 1


class StrictSub(PolicyConfig):
    cap: Annotated[int | None, LOWER_IS_STRICTER] = None
    label: Annotated[str, NEUTRAL] = "sub"


class StrictnessConfig(PolicyConfig):
    """One field per kind of strictness declaration, for the loader's tightening tests."""

    cap: Annotated[int | None, LOWER_IS_STRICTER] = None
    floor: Annotated[float | None, HIGHER_IS_STRICTER] = None
    mode: Annotated[Literal["open", "guarded", "closed"], Ranked("open", "guarded", "closed")] = "open"
    unranked: Annotated[Literal["a", "b", "c"], Ranked("a", "b")] = "a"  # a schema bug: "c" has no rank
    strict: Annotated[bool, TRUE_IS_STRICTER] = False
    verbose: Annotated[bool, FALSE_IS_STRICTER] = True
    tags: Annotated[list[str], SUPERSET_IS_STRICTER] = Field(default_factory=lambda: ["a"])
    limits: Annotated[dict[str, StrictSub], KEYED] = Field(default_factory=dict)
    nested: StrictSub = StrictSub()
    optional: StrictSub | None = None
    note: Annotated[str, NEUTRAL] = "note"
    undeclared: str = "fixed"
    settings: Annotated[StrictSub, NEUTRAL] = StrictSub()


class StrictnessPolicy(Policy[StrictnessConfig]):
    """Does nothing: its config exists to be merged across risk levels."""

    config_model = StrictnessConfig


class MediaPolicy(Policy[PolicyConfig]):
    """A policy that needs generated media, which no adapter reads yet: every operation is refused."""

    needs_parts = frozenset({"text", "media"})

    async def on_response(self, exchange: Exchange, body: dict[str, Any]) -> None:
        self.record(exchange, "read")


class ScratchWiperPolicy(Policy[PolicyConfig]):
    """A policy that treats ``exchange.scratch`` as its own: it replaces it and forges engine-like keys."""

    config_model = PolicyConfig

    async def on_request(self, exchange: Exchange) -> None:
        exchange.scratch.clear()
        exchange.scratch["_entered"] = []  # the key the pipeline once kept its bookkeeping under
        exchange.scratch = {"_entered": []}


class DropBlocksConfig(PolicyConfig):
    kind: Literal["reasoning", "text", "tool_arguments"] = "reasoning"


class DropBlocksPolicy(Policy[DropBlocksConfig]):
    """Withholds every block or item of one kind through the response view; leaves numbering to the engine."""

    config_model = DropBlocksConfig
    needs_parts = frozenset({"text", "reasoning"})

    async def on_response(self, exchange: Exchange, body: dict[str, Any]) -> None:
        for block in list(exchange.response_view(body).blocks()):
            if block.kind == self.config.kind:
                block.drop()

    def stream_filter(self, exchange: Exchange) -> StreamFilter | None:
        reader, kind = exchange.stream_view(), self.config.kind

        class Drop(StreamFilter):
            def on_event(self, event: StreamEvent) -> list[StreamEvent]:
                view = reader.event(event)
                block = view.block
                return [] if block is not None and block.kind == kind else view.events()

        return Drop()

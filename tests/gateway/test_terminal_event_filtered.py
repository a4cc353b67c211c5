"""Regression: a terminal event that carries content goes through the stream filters.

Responses' ``response.completed`` repeats the whole response (text, logprobs,
reasoning); when it bypassed the filters, a policy's edits to the deltas were
undone by the final event the SDKs read.
"""

from __future__ import annotations

from collections.abc import Callable

import openai

from gateway.plugins.base import Exchange, Policy, PolicyConfig, StreamFilter
from gateway.sse import StreamEvent
from tests.support import GatewayHandle, MockHandle, base_config


class _MarkCompleted(StreamFilter):
    """Marks response.completed and holds the last output_item.done back until the end."""

    def __init__(self) -> None:
        self.held: list[StreamEvent] = []

    def on_event(self, event: StreamEvent) -> list[StreamEvent]:
        payload = event.json or {}
        if payload.get("type") == "response.completed":
            payload["response"]["metadata"] = {"seen_by": "filter"}
        elif payload.get("type") == "response.output_item.done":
            self.held = [event]
            return []
        return [event]

    def on_end(self) -> list[StreamEvent]:
        return self.held


class MarkCompletedPolicy(Policy[PolicyConfig]):
    def stream_filter(self, exchange: Exchange) -> StreamFilter | None:
        return _MarkCompleted()


def test_response_completed_goes_through_filters(
    start_gateway: Callable[..., GatewayHandle], mock_upstream: MockHandle
) -> None:
    config = base_config(mock_upstream.url)
    config["tiers"]["free"]["policies"] = [{"name": f"{__name__}:MarkCompletedPolicy"}]
    gateway = start_gateway(config)
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key("free"), max_retries=0)
    events = list(client.responses.create(model="mock-small", input="Explain queues.", stream=True))
    assert [e.type for e in events[-2:]] == ["response.output_item.done", "response.completed"]
    assert events[-1].response.metadata == {"seen_by": "filter"}

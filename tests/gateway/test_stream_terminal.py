"""Engine: stream filters see the protocol's terminal event (on_terminal) after on_end."""

from __future__ import annotations

from gateway.mock.generation import generate
from gateway.mock.openai_shapes import response_stream
from gateway.plugins.base import Exchange, Policy, StreamFilter
from gateway.sse import StreamEvent
from tests.policy_harness import PolicyHarness, encode_events


class _Marks(StreamFilter):
    def __init__(self) -> None:
        self.ended = False

    def on_end(self) -> list[StreamEvent]:
        self.ended = True
        return []

    def on_terminal(self, event: StreamEvent) -> None:
        assert self.ended, "on_end runs first"
        assert event.json is not None
        event.json["response"]["metadata"] = {"seen": "yes"}


class TerminalPolicy(Policy):  # type: ignore[type-arg]
    def stream_filter(self, exchange: Exchange) -> StreamFilter:
        return _Marks()


def test_terminal_event_reaches_on_terminal() -> None:
    harness = PolicyHarness([("tests.gateway.test_stream_terminal:TerminalPolicy", {})])
    body = {"model": "m", "input": "hello", "stream": True}
    gen = generate(body, max_tokens=None, with_reasoning=False, top_logprobs=None)
    events = harness.stream(
        harness.exchange("responses", body), encode_events(response_stream(gen, "m", False, 3))
    )
    assert events[-1].json is not None and events[-1].json["type"] == "response.completed"
    assert events[-1].json["response"]["metadata"] == {"seen": "yes"}

"""The stream chain: terminal events go through the filters, after what the filters flush."""

from __future__ import annotations

from typing import Any

import httpx

from gateway.plugins.base import Exchange, Policy, PolicyConfig, StreamFilter
from gateway.sse import StreamEvent
from tests.policy_harness import PolicyHarness, encode_events


class _HoldAndMark(StreamFilter):
    """Holds every event until the end and marks the terminal event it is given."""

    def __init__(self) -> None:
        self.held: list[StreamEvent] = []

    def on_event(self, event: StreamEvent) -> list[StreamEvent]:
        if event.json is not None and event.json.get("type") == "response.completed":
            event.json["response"]["marked"] = True
            return [event]
        self.held.append(event)
        return []

    def on_end(self) -> list[StreamEvent]:
        held, self.held = self.held, []
        return held


class HoldAndMarkPolicy(Policy[PolicyConfig]):
    def stream_filter(self, exchange: Exchange) -> StreamFilter:
        return _HoldAndMark()


POLICY = "tests.gateway.plugins.test_stream_chain:HoldAndMarkPolicy"


def _responses_stream() -> bytes:
    events: list[tuple[str | None, dict[str, Any] | str]] = [
        ("response.created", {"type": "response.created", "sequence_number": 0, "response": {"id": "r"}}),
        (
            "response.output_text.delta",
            {"type": "response.output_text.delta", "sequence_number": 1, "delta": "hi"},
        ),
        (
            "response.completed",
            {"type": "response.completed", "sequence_number": 2, "response": {"id": "r", "output": []}},
        ),
    ]
    return encode_events(events)


def test_terminal_event_goes_through_filters_after_their_flush() -> None:
    harness = PolicyHarness([(POLICY, {})])
    exchange = harness.exchange("responses", {"model": "m", "input": "x", "stream": True})
    out = harness.stream(exchange, _responses_stream())
    kinds = [event.json["type"] for event in out if event.json]
    assert kinds == ["response.created", "response.output_text.delta", "response.completed"]
    assert out[-1].json is not None and out[-1].json["response"]["marked"] is True


def test_terminal_event_of_a_shadow_filter_is_unchanged() -> None:
    harness = PolicyHarness([(POLICY, {}, "shadow")])
    exchange = harness.exchange("responses", {"model": "m", "input": "x", "stream": True})
    out = harness.stream(exchange, _responses_stream())
    assert [event.json["type"] for event in out if event.json][-1] == "response.completed"
    assert out[-1].json is not None and "marked" not in out[-1].json["response"]


def test_terminal_event_through_the_gateway(start_gateway: Any) -> None:
    gw = start_gateway(tiers={t: {"policies": [{"name": POLICY}]} for t in ("free", "pro", "trusted")})
    with httpx.stream(
        "POST",
        f"{gw.url}/v1/responses",
        headers={"authorization": f"Bearer {gw.key()}"},
        json={"model": "mock-small", "input": "Explain queues.", "stream": True},
        timeout=10,
    ) as reply:
        body = b"".join(reply.iter_bytes())
    assert b'"marked":true' in body
    assert body.rstrip().endswith(b"}") and body.index(b"output_text.delta") < body.index(b'"marked"')


def test_a_second_terminal_event_is_still_filtered() -> None:
    """Regression: a terminal event arriving after the chain ended bypassed the filters."""
    harness = PolicyHarness([(POLICY, {})])
    exchange = harness.exchange("responses", {"model": "m", "input": "x", "stream": True})
    doubled = _responses_stream() + encode_events(
        [
            (
                "response.completed",
                {"type": "response.completed", "sequence_number": 3, "response": {"id": "r2"}},
            )
        ]
    )
    out = harness.stream(exchange, doubled)
    completed = [e.json for e in out if e.json and e.json["type"] == "response.completed"]
    assert len(completed) == 2 and all(c["response"]["marked"] is True for c in completed)


class _Split(StreamFilter):
    """Splits each text delta into two events (returned as a tuple, not a list)."""

    def on_event(self, event: StreamEvent) -> list[StreamEvent]:
        delta = event.json.get("delta") if event.json else None
        if not isinstance(delta, str) or len(delta) < 2:
            return [event]
        half = len(delta) // 2
        first = StreamEvent.of({**event.json, "delta": delta[:half]}, event=event.event)  # type: ignore[dict-item]
        event.json["delta"] = delta[half:]  # type: ignore[index]
        return (first, event)  # type: ignore[return-value]


class _Shout(StreamFilter):
    """Upper-cases each text delta, and drops deltas of a single character (a generator)."""

    def on_event(self, event: StreamEvent) -> list[StreamEvent]:
        def out() -> Any:
            delta = event.json.get("delta") if event.json else None
            if isinstance(delta, str):
                if len(delta) < 2:
                    return
                event.json["delta"] = delta.upper()  # type: ignore[index]
            yield event

        return out()  # type: ignore[return-value]


class SplitPolicy(Policy[PolicyConfig]):
    def stream_filter(self, exchange: Exchange) -> StreamFilter:
        return _Split()


class ShoutPolicy(Policy[PolicyConfig]):
    def stream_filter(self, exchange: Exchange) -> StreamFilter:
        return _Shout()


def test_each_filter_gets_every_event_the_one_before_it_emits_in_order() -> None:
    # The chain of enforcing filters calls each filter once per event it is given; what one
    # returns (any iterable: a list, a tuple, a generator) feeds the next, in order, and the
    # adapter renumbers what comes out.
    module = "tests.gateway.plugins.test_stream_chain"
    harness = PolicyHarness([(f"{module}:SplitPolicy", {}), (f"{module}:ShoutPolicy", {})])
    exchange = harness.exchange("responses", {"model": "m", "input": "x", "stream": True})
    kind = "response.output_text.delta"
    deltas: list[tuple[str | None, dict[str, Any] | str]] = [
        (kind, {"type": kind, "sequence_number": n, "delta": d})
        for n, d in enumerate(["hello", "abc", "xy"], start=1)
    ]
    out = harness.stream(exchange, encode_events(deltas))
    texts = [(e.json["sequence_number"], e.json["delta"]) for e in out if e.json and "delta" in e.json]
    assert texts == [(1, "HE"), (2, "LLO"), (3, "BC")]

"""The detector policy in a pipeline: it changes nothing, and what it observes ignores stream chunking."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.mock.generation import generate
from gateway.mock.openai_shapes import chat_completion, chat_stream
from policies.detector.policy import SCRATCH
from tests.policy_harness import PolicyHarness, encode_events

BODY = {"model": "mock-small", "messages": [{"role": "user", "content": "Explain caches step by step."}]}
GEN = generate(BODY, max_tokens=None, with_reasoning=True, top_logprobs=None)
UPSTREAM = encode_events(chat_stream(GEN, "mock-small", "reasoning_content", True, 1))
WHOLE = chat_completion(GEN, "mock-small", "reasoning_content", 1, [GEN])


def _observe_stream(chunks: list[int]) -> tuple[tuple[int, int, int], list[bytes]]:
    async def run() -> tuple[tuple[int, int, int], list[bytes]]:
        harness = PolicyHarness([("detector", {})])
        await harness.start()
        exchange = harness.exchange("chat.completions", {**BODY, "stream": True})
        await harness.request(exchange)
        out = harness.stream(exchange, UPSTREAM, chunks=chunks)
        exchange.outcome.response_bytes = len(UPSTREAM)
        await harness.after(exchange)
        observation = exchange.scratch[SCRATCH]
        return (observation.input_tokens, observation.output_tokens, observation.response_bytes), [
            event.encode() for event in out
        ]

    return asyncio.run(run())


REFERENCE, REFERENCE_EVENTS = _observe_stream([])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 64), max_size=200))
def test_observation_is_independent_of_stream_chunking(chunks: list[int]) -> None:
    observed, events = _observe_stream(chunks)
    assert observed == REFERENCE
    assert events == REFERENCE_EVENTS, "the detector must pass every event through unchanged"


async def test_streamed_and_whole_responses_give_the_same_usage() -> None:
    harness = PolicyHarness([("detector", {})])
    await harness.start()
    exchange = harness.exchange("chat.completions", dict(BODY))
    await harness.request(exchange)
    body = await harness.response(exchange, dict(WHOLE))
    assert body == WHOLE, "the detector never changes a response"
    await harness.after(exchange)
    observation = exchange.scratch[SCRATCH]
    assert (observation.input_tokens, observation.output_tokens) == REFERENCE[:2]
    assert REFERENCE[1] > 0


async def test_the_request_body_is_left_as_sent() -> None:
    harness = PolicyHarness([("detector", {})])
    await harness.start()
    body = {**BODY, "logprobs": True, "top_logprobs": 5, "n": 3}
    exchange = harness.exchange("chat.completions", dict(body))
    await harness.request(exchange)
    assert exchange.body == body
    observation = exchange.scratch[SCRATCH]
    assert observation.logprobs and observation.samples == 3 and observation.turns == 1

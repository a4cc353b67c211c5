"""The detector policy in a pipeline: it changes nothing, and what it observes ignores stream chunking."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.metrics import render_metrics
from gateway.mock.generation import generate
from gateway.mock.openai_shapes import chat_completion, chat_stream
from policies.detector.policy import SCRATCH, TIMED_EVERY
from tests.policy_harness import PolicyHarness, encode_events
from tests.support import metric_value

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


def _seconds_counts() -> dict[str, float]:
    text = render_metrics()[0].decode()
    return {
        stage: metric_value(text, "distillguard_detector_seconds_count", stage=stage)
        for stage in ("inline", "analysis", "total")
    }


async def test_cpu_time_is_measured_on_one_request_in_timed_every() -> None:
    # Reading the thread CPU clock costs ~6 µs a call on some VMs: only a sample of requests pays it,
    # and every request is still observed and analysed.
    harness = PolicyHarness([("detector", {})])
    await harness.start()
    core = harness.pipeline.policies[0].core  # type: ignore[attr-defined]
    await core.drain()
    before = _seconds_counts()
    requests = 4 * TIMED_EVERY
    for index in range(requests):
        exchange = harness.exchange("chat.completions", dict(BODY), account=f"timed-{index}")
        await harness.request(exchange)
        await harness.response(exchange, dict(WHOLE))
        await harness.after(exchange)
        assert exchange.scratch[SCRATCH].output_tokens == REFERENCE[1]  # observed whether timed or not
    await core.drain()
    after = _seconds_counts()
    added = {stage: after[stage] - before[stage] for stage in after}
    assert added == dict.fromkeys(after, requests / TIMED_EVERY)
    assert all(core.accounts.get(f"timed-{index}") is not None for index in range(requests))  # all analysed

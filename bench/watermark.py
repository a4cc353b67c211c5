"""Cost of the watermark on a stream: time per streamed word, against passthrough in the same run.

    python -m bench.watermark

Feeds the same answers, split into one-token deltas as a model streams them,
through (a) a passthrough stream filter and (b) the watermark's stream filter
at each strength (exact, near), for a chat completion stream; prints
microseconds per word for each and the ratio. Both paths parse nothing (the
events are pre-built), so the figure is the policy's own added cost per word.
"""

from __future__ import annotations

import copy
import os
import statistics
import time

from gateway.mock.text import answer_text, tokenize
from gateway.plugins.base import StreamFilter
from gateway.protocols import ADAPTERS
from gateway.sse import StreamEvent
from policies.watermark.marker import LexicalSettings, TextMarker
from policies.watermark.streams import WatermarkStreamFilter
from policies.watermark.text_stream import TextStream

ROUNDS = 5


def _events(text: str) -> list[StreamEvent]:
    base = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    out = [
        StreamEvent.of(
            {**base, "choices": [{"index": 0, "delta": {"content": token}, "finish_reason": None}]}
        )
        for token in tokenize(text)
    ]
    out.append(StreamEvent.of({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    return out


def _run(make_filter: object, streams: list[list[StreamEvent]]) -> float:
    copies = [[StreamEvent.of(copy.deepcopy(e.json)) for e in events] for events in streams]  # type: ignore[arg-type]
    started = time.perf_counter()
    for events in copies:
        stream_filter = make_filter()  # type: ignore[operator]
        for event in events:
            stream_filter.on_event(event)
        stream_filter.on_end()
    return time.perf_counter() - started


def main() -> None:
    key = os.urandom(32)
    texts = [answer_text(f"bench {i}", sentences=30) for i in range(200)]
    streams = [_events(t) for t in texts]
    words = sum(len(t.split()) for t in texts)

    def watermark(strength: str) -> object:
        settings = LexicalSettings(strength=strength)

        def make() -> StreamFilter:
            return WatermarkStreamFilter(
                ADAPTERS["openai"].stream_view("chat.completions"),
                lambda _part: TextStream(TextMarker(key, settings), None),
                True,
            )

        return make

    times: dict[str, list[float]] = {"passthrough": [], "exact": [], "near": []}
    for _ in range(ROUNDS):
        times["passthrough"].append(_run(StreamFilter, streams))
        for strength in ("exact", "near"):
            times[strength].append(_run(watermark(strength), streams))
    base = statistics.median(times["passthrough"]) / words * 1e6
    print(f"{words} words in {sum(len(s) for s in streams)} one-token deltas, median of {ROUNDS} rounds")
    print(f"passthrough filter: {base:.2f} us/word")
    for strength in ("exact", "near"):
        marked = statistics.median(times[strength]) / words * 1e6
        added = marked - base
        print(f"watermark ({strength}): {marked:.2f} us/word; added {added:.2f} us/word, "
              f"{marked / base:.1f}x passthrough, {added * 256 / 1000:.3f} ms per 256 tokens")  # fmt: skip


if __name__ == "__main__":
    main()

"""Cost of the watermark on a stream: time per streamed word, against passthrough in the same run.

    python -m bench.watermark

Feeds the same answers, split into one-token deltas as a model streams them,
through (a) a passthrough stream filter and (b) the watermark's stream filter
at each strength (exact, near) with every class, and at the default preset's
tier (exact, connectives and compounds), for a chat completion stream; prints
microseconds of process CPU time per word for each and the ratio. Both paths
parse nothing (the events are pre-built), so the figure is the policy's own
added cost per word.
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
VARIANTS = {  # every class at each strength, and the default preset's tier (policies/default.yaml)
    "exact": LexicalSettings(strength="exact"),
    "near": LexicalSettings(strength="near"),
    "default tier": LexicalSettings(classes=frozenset({"connective", "compound"})),
}


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
    started = time.process_time()  # CPU time: the machine is shared
    for events in copies:
        stream_filter = make_filter()  # type: ignore[operator]
        for event in events:
            stream_filter.on_event(event)
        stream_filter.on_end()
    return time.process_time() - started


def main() -> None:
    key = os.urandom(32)
    texts = [answer_text(f"bench {i}", sentences=30) for i in range(200)]
    streams = [_events(t) for t in texts]
    words = sum(len(t.split()) for t in texts)

    def watermark(variant: str) -> object:
        settings = VARIANTS[variant]

        def make() -> StreamFilter:
            return WatermarkStreamFilter(
                ADAPTERS["openai"].stream_view("chat.completions"),
                lambda _part: TextStream(TextMarker(key, settings), None),
                True,
            )

        return make

    times: dict[str, list[float]] = {"passthrough": [], **{variant: [] for variant in VARIANTS}}
    for _ in range(ROUNDS):
        times["passthrough"].append(_run(StreamFilter, streams))
        for variant in VARIANTS:
            times[variant].append(_run(watermark(variant), streams))
    base = statistics.median(times["passthrough"]) / words * 1e6
    print(f"{words} words in {sum(len(s) for s in streams)} one-token deltas, median of {ROUNDS} rounds")
    print(f"passthrough filter: {base:.2f} us/word")
    for variant in VARIANTS:
        marked = statistics.median(times[variant]) / words * 1e6
        added = marked - base
        print(f"watermark ({variant}): {marked:.2f} us/word; added {added:.2f} us/word, "
              f"{marked / base:.1f}x passthrough, {added * 256 / 1000:.3f} ms per 256 tokens")  # fmt: skip


if __name__ == "__main__":
    main()

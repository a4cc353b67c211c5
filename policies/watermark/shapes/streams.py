"""What every API shape's stream handling shares: one :class:`TextStream` per key, flushed at the end.

Each shape module subclasses :class:`ShapeStreams` with how its events carry
text (``on_event``) and how held-back text is sent in its own shape
(``flush_event``); :class:`~policies.watermark.shapes.WatermarkStreamFilter`
picks the subclass for the operation.
"""

from __future__ import annotations

from typing import Any

from gateway.plugins import StreamEvent
from policies.watermark.shapes.text_stream import Factory, StreamKey, TextStream


class ShapeStreams:
    """The text streams of one streamed response, made by ``factory`` when their first text arrives."""

    def __init__(self, factory: Factory, strip_logprobs: bool) -> None:
        self.factory = factory
        self.strip_logprobs = strip_logprobs
        self.streams: dict[StreamKey, TextStream] = {}

    def _stream(self, key: StreamKey) -> TextStream:
        stream = self.streams.get(key)
        if stream is None:
            stream = self.streams[key] = self.factory(key)
        return stream

    def on_event(self, event: StreamEvent, payload: dict[str, Any]) -> list[StreamEvent]:
        """The events to send for ``event`` (whose JSON is ``payload``), with their text marked."""
        raise NotImplementedError

    def on_end(self) -> list[StreamEvent]:
        """Events carrying the text still held back by streams the upstream never closed."""
        out: list[StreamEvent] = []
        for key, stream in self.streams.items():
            if not stream.done:
                tail = stream.finish()
                if tail:
                    out.append(self._flush_event(key, tail))
        return out

    def _flush_event(self, key: StreamKey, text: str) -> StreamEvent:
        """A delta event carrying held-back text, in the stream's own shape."""
        raise NotImplementedError

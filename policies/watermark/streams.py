"""Marking the visible text of a response, whole or streamed, through the adapter's response view.

Each key of visible text (a chat choice, a Responses output_text part, an Anthropic text block,
whatever the family calls it) gets its own :class:`TextStream`, made when its first text
arrives; ``n`` > 1 choices and several blocks keep separate state. A stream is flushed where the
view says the key's content ends (``closes``): the text still held back goes out there, in the
stream's own shape (``EventView.add_text``). Parts that repeat a key's whole text (final objects)
are given the marked text, and anchors into it (citations) are moved with it; an event that only
carries anchors waits until the text it points into is no longer held back. Tool-call arguments,
reasoning and refusals are never touched. Dropping and inserting events is safe: the engine
renumbers the stream after every policy.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.plugins import (
    EventView,
    LogprobsPart,
    Part,
    PartKey,
    ResponseView,
    StreamEvent,
    StreamFilter,
    StreamView,
)
from policies.watermark.text_stream import Factory, TextStream, mark_whole

_TEXT = frozenset({"text"})
_TEXT_AND_ANCHORS = frozenset({"text", "annotation"})
_TEXT_ANCHORS_LOGPROBS = frozenset({"text", "annotation", "logprobs"})


def mark_body(view: ResponseView, factory: Factory, strip_logprobs: bool) -> None:
    """Mark every visible text of a whole response body in place."""
    for part in view.text_parts(_TEXT):
        stream = factory(part)
        part.set_text(mark_whole(stream, part.text))
        stream.map_anchors(part.anchors())
    if strip_logprobs:
        _strip_logprobs(view.logprobs())


def _strip_logprobs(parts: Iterable[LogprobsPart]) -> None:
    for run in parts:
        if not run.prompt:  # the prompt's logprobs say nothing about the marked text
            run.drop()


class WatermarkStreamFilter(StreamFilter):
    """Marks the visible text of one streamed response, whatever its format."""

    __slots__ = ("factory", "kinds", "reader", "streams", "waiting")

    def __init__(self, reader: StreamView, factory: Factory, strip_logprobs: bool) -> None:
        self.reader = reader
        self.factory = factory
        self.kinds = _TEXT_ANCHORS_LOGPROBS if strip_logprobs else _TEXT_AND_ANCHORS
        self.streams: dict[PartKey, TextStream] = {}
        # Events carrying anchors into text still held back, per key, in order.
        self.waiting: dict[PartKey, list[tuple[StreamEvent, Part]]] = {}

    def on_event(self, event: StreamEvent) -> list[StreamEvent]:
        if event.json is None:
            return [event]
        parts, closes = self.reader.read(event, self.kinds)
        if len(parts) == 1 and not closes and not self.waiting:
            part = parts[0]
            if part.kind == "text" and part.delta:  # the usual event: one delta of one key's text
                stream = self.streams.get(part.key)
                if stream is None:
                    stream = self.streams[part.key] = self.factory(part)
                text = part.text
                marked = stream.feed(text)
                if marked != text:
                    part.set_text(marked)
                return [event]
        finals: list[Part] = []
        after: list[StreamEvent] = []
        streams = self.streams
        for part in parts:
            kind = part.kind
            if kind == "text":
                if not part.delta:
                    finals.append(part)  # type: ignore[arg-type]
                    continue
                stream = streams.get(part.key)
                if stream is None:
                    stream = streams[part.key] = self.factory(part)  # type: ignore[arg-type]
                part.set_text(stream.feed(part.text))  # type: ignore[union-attr]
                if self.waiting:
                    after += self._ready(part.key)
            elif kind == "logprobs":
                if not part.prompt:  # type: ignore[union-attr]
                    part.drop()
            else:  # annotation: anchors into a text
                stream = streams.get(part.key)
                if stream is None or not stream.map_anchors(part.anchors()):  # type: ignore[union-attr]
                    self.waiting.setdefault(part.key, []).append((event, part))  # type: ignore[arg-type]
                    return []  # forwarded when its text is final (the engine renumbers the stream)
        if not closes and not finals:
            return [event, *after] if after else [event]  # the usual delta: nothing to add
        view = EventView(self.reader, event, self.kinds, parts, closes)
        for key in closes:
            self._close(view, key)
        for part in finals:
            stream = streams.get(part.key)
            if stream is not None:
                part.set_text(stream.text)
                stream.map_anchors(part.anchors())
        out = view.events()
        return out + after if after else out

    def _close(self, view: EventView, key: PartKey) -> None:
        stream = self.streams.get(key)
        if stream is None or stream.done:
            return
        view.add_text(key, stream.finish())
        for event in self._ready(key):
            view.insert_before(event)

    def _ready(self, key: PartKey) -> list[StreamEvent]:
        """Waiting anchor events of ``key`` whose text is now final enough to place them."""
        waiting = self.waiting.get(key)
        if not waiting:
            return []
        stream = self.streams[key]
        ready: list[StreamEvent] = []
        still: list[tuple[StreamEvent, Part]] = []
        for event, part in waiting:
            if not stream.map_anchors(part.anchors()):
                still.append((event, part))
            else:
                ready.append(event)
        self.waiting[key] = still
        return ready

    def on_end(self) -> list[StreamEvent]:
        """Text still held back by keys the upstream never closed, then anchor events still waiting."""
        out: list[StreamEvent] = []
        for key, stream in self.streams.items():
            if not stream.done:
                tail = stream.finish()
                if tail:
                    out.append(self.reader.text_event(key, tail))
        for key, waiting in self.waiting.items():
            held = self.streams.get(key)
            for event, part in waiting:
                if held is not None:
                    held.map_anchors(part.anchors())
                out.append(event)
        self.waiting = {}
        return out

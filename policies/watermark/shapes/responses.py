"""OpenAI Responses: the ``output_text`` parts of message items, whole and streamed.

Each part (item id, content index) is its own stream, flushed at
``response.output_text.done``. Events are renumbered when a flush adds a delta,
and the final objects (``.done`` events, ``response.completed``) carry the
marked text, so they agree with the deltas. ``annotations`` (``url_citation``
``start_index``/``end_index``) are moved to where their text lies in the marked
text: in final objects, and in ``response.output_text.annotation.added``
events, which wait (renumbered) until the text they point into is no longer
held back.
"""

from __future__ import annotations

from typing import Any

from gateway.plugins import StreamEvent, UpstreamError
from policies.watermark.shapes.streams import ShapeStreams
from policies.watermark.shapes.text_stream import Factory, StreamKey, TextStream, as_list, mark_whole


def mark_response_object(
    response: dict[str, Any],
    factory: Factory,
    strip_logprobs: bool,
    streamed: dict[StreamKey, TextStream] | None,
) -> None:
    """Responses: every output_text part; from the streams already marked when ``streamed`` is given."""
    for item_index, item in enumerate(as_list(response.get("output"))):
        if not isinstance(item, dict) or item.get("type") != "message":
            continue
        for part_index, part in enumerate(as_list(item.get("content"))):
            if not isinstance(part, dict) or part.get("type") != "output_text":
                continue
            key = ("part", item.get("id") or item_index, part_index)
            stream = None
            if streamed is not None:
                stream = streamed.get(key)
                if stream is not None:
                    part["text"] = stream.text
            elif isinstance(part.get("text"), str):
                stream = factory(key)
                part["text"] = mark_whole(stream, part["text"])
            if stream is not None:
                _map_part_annotations(stream, part)
            if strip_logprobs and part.get("logprobs"):
                part["logprobs"] = []


def _map_part_annotations(stream: TextStream, part: dict[str, Any]) -> None:
    stream.map_annotations(part.get("annotations"))


class ResponsesStreams(ShapeStreams):
    """The output_text parts of a streamed Responses response, and the events that must be renumbered."""

    def __init__(self, factory: Factory, strip_logprobs: bool) -> None:
        super().__init__(factory, strip_logprobs)
        self._seq_shift = 0
        # annotation.added events waiting until the text they point into is final, per text stream
        self._waiting: dict[StreamKey, list[StreamEvent]] = {}

    def on_end(self) -> list[StreamEvent]:
        out = super().on_end()
        for key, waiting in self._waiting.items():
            stream = self._stream(key)
            if not stream.done:
                stream.finish()
            for event in waiting:
                payload = event.json
                assert payload is not None
                stream.map_annotations([payload.get("annotation")])
                out.append(event)
        self._waiting = {}
        return out

    def on_event(self, event: StreamEvent, payload: dict[str, Any]) -> list[StreamEvent]:
        kind = payload.get("type")
        out = [event]
        key = ("part", payload.get("item_id"), payload.get("content_index"))
        if kind == "response.output_text.delta":
            delta = payload.get("delta")
            if not isinstance(delta, str):
                raise UpstreamError("The upstream sent an output_text delta without text.")
            payload["delta"] = self._stream(key).feed(delta)
            if self.strip_logprobs and payload.get("logprobs"):
                payload["logprobs"] = []
            out += self._ready_annotations(key, payload, after=True)
        elif kind == "response.output_text.annotation.added":
            stream = self.streams.get(key)
            if stream is None or not stream.map_annotations([payload.get("annotation")]):
                self._waiting.setdefault(key, []).append(event)
                if isinstance(payload.get("sequence_number"), int):
                    self._seq_shift -= 1  # the events after it move up into its place
                return []
        elif kind == "response.output_text.done":
            stream = self._stream(key)
            tail = stream.finish()
            out = [self._flush_event(key, tail, payload)] if tail else []
            out += self._ready_annotations(key, payload, after=False)
            out.append(event)
            payload["text"] = stream.text
            if self.strip_logprobs and payload.get("logprobs"):
                payload["logprobs"] = []
        elif kind == "response.content_part.done":
            part = payload.get("part")
            stream = self.streams.get(key)
            if isinstance(part, dict) and part.get("type") == "output_text" and stream is not None:
                part["text"] = stream.text
                _map_part_annotations(stream, part)
                if self.strip_logprobs and part.get("logprobs"):
                    part["logprobs"] = []
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            # The terminal event repeats the whole response: it must say what was streamed.
            response = payload.get("response")
            if isinstance(response, dict):
                mark_response_object(response, self.factory, self.strip_logprobs, self.streams)
        elif kind == "response.output_item.done":
            item = payload.get("item")
            if isinstance(item, dict) and item.get("type") == "message":
                for part_index, part in enumerate(as_list(item.get("content"))):
                    stream = self.streams.get(("part", item.get("id"), part_index))
                    if isinstance(part, dict) and part.get("type") == "output_text" and stream is not None:
                        part["text"] = stream.text
                        _map_part_annotations(stream, part)
                        if self.strip_logprobs and part.get("logprobs"):
                            part["logprobs"] = []
        for item in out:
            self._renumber(item)
        return out

    def _ready_annotations(self, key: StreamKey, anchor: dict[str, Any], after: bool) -> list[StreamEvent]:
        """Waiting annotation events of ``key`` that can be placed now, next to the ``anchor`` event."""
        waiting = self._waiting.get(key)
        stream = self.streams.get(key)
        if not waiting or stream is None:
            return []
        ready, still = [], []
        for event in waiting:
            payload = event.json
            assert payload is not None
            if not stream.map_annotations([payload.get("annotation")]):
                still.append(event)
                continue
            anchor_number = anchor.get("sequence_number")
            if isinstance(anchor_number, int) and isinstance(payload.get("sequence_number"), int):
                payload["sequence_number"] = anchor_number + (1 if after else 0)
                payload["_dg_inserted"] = True
            ready.append(event)
        self._waiting[key] = still
        return ready

    def _renumber(self, event: StreamEvent) -> None:
        payload = event.json
        if payload is not None and isinstance(payload.get("sequence_number"), int):
            payload["sequence_number"] += self._seq_shift
            if payload.pop("_dg_inserted", False):
                self._seq_shift += 1

    def _flush_event(self, key: StreamKey, text: str, done: dict[str, Any] | None = None) -> StreamEvent:
        """A delta event carrying held-back text, numbered like the ``.done`` event ``done`` when given."""
        payload: dict[str, Any] = {
            "type": "response.output_text.delta",
            "item_id": key[1],
            "output_index": (done or {}).get("output_index", 0),
            "content_index": key[2],
            "delta": text,
            "logprobs": [],
        }
        if done is not None and isinstance(done.get("sequence_number"), int):
            payload["sequence_number"] = done["sequence_number"]
            payload["_dg_inserted"] = True
        return StreamEvent.of(payload, event="response.output_text.delta")

"""Where assistant text lives in each API's responses, whole and streamed, and how it is rewritten.

Each text stream (a chat choice, a completions choice, a Responses output_text
part, an Anthropic text block) gets its own :class:`TextStream`; n>1 choices
and several blocks keep separate state. Streams are flushed at their end: the
chunk with ``finish_reason`` (OpenAI), ``content_block_stop`` (Anthropic),
``response.output_text.done`` (Responses). Responses events are renumbered
when a flush adds a delta, and the final objects (``.done`` events,
``response.completed``) carry the marked text, so they agree with the deltas.
Tool-call arguments, reasoning and refusals are never touched. Responses
``annotations`` (``url_citation`` ``start_index``/``end_index``) are moved to
where their text lies in the marked text: in final objects, and in
``response.output_text.annotation.added`` events, which wait (renumbered) until
the text they point into is no longer held back.
"""

from __future__ import annotations

import copy
from bisect import bisect_right
from collections.abc import Callable
from typing import Any

from gateway.errors import UpstreamError
from gateway.plugins.base import StreamFilter
from gateway.sse import StreamEvent
from policies.watermark.marker import TextMarker

StreamKey = tuple[Any, ...]


class TextStream:
    """One text stream: the marker, an optional echoed prefix passed as is, and the canary at the end."""

    __slots__ = ("canary", "done", "inp", "marker", "out", "passed", "prefix_left", "text_seen")

    def __init__(self, marker: TextMarker, canary: str | None, prefix: int = 0) -> None:
        self.marker = marker
        self.canary = canary
        self.prefix_left = prefix
        self.passed = 0  # length of the echoed prefix passed as it is
        self.inp: list[str] = []
        self.out: list[str] = []
        self.text_seen = ""
        self.done = False

    def feed(self, text: str) -> str:
        if not text:
            return ""
        self.inp.append(text)
        passed = ""
        if self.prefix_left:
            passed, text = text[: self.prefix_left], text[self.prefix_left :]
            self.prefix_left -= len(passed)
            self.passed += len(passed)
        if not self.text_seen.strip():
            self.text_seen += text[:64]
        out = passed + self.marker.feed(text)
        self.out.append(out)
        return out

    def finish(self) -> str:
        if self.done:
            return ""
        self.done = True
        out = self.marker.finish()
        if self.canary and self._canary_fits():
            full = "".join(self.out) + out
            sep = "\n\n" if "\n" in full.strip() else " "
            out += ("" if full.endswith((" ", "\n")) else sep) + self.canary
        else:
            self.canary = None
        self.out.append(out)
        return out

    def _canary_fits(self) -> bool:
        first = self.text_seen.lstrip()[:1]
        return bool(first) and first not in "{[<`" and not self.marker.protected

    @property
    def text(self) -> str:
        return "".join(self.out)

    def output_index(self, index: int, end: bool = False) -> int | None:
        """Where input offset ``index`` lies in the marked text; None while that text is held back.

        Inside a rewritten word an index moves to the start of the change
        (``end`` False) or to its end (``end`` True).
        """
        if index <= self.passed:
            return index
        sync = self.marker.sync
        at = index - self.passed
        pos = bisect_right(sync, (at, float("inf"))) - 1
        in_a, out_a = sync[pos]
        if in_a == at:
            return out_a + self.passed
        if pos + 1 >= len(sync):  # past what is final: held back, or past the end of the text
            return out_a + self.passed if self.done else None
        in_b, out_b = sync[pos + 1]
        source = "".join(self.inp)[self.passed + in_a : self.passed + in_b]
        target = self.text[self.passed + out_a : self.passed + out_b]
        head = _common_prefix(source, target)
        tail = _common_prefix(source[head:][::-1], target[head:][::-1])
        if at - in_a <= head:
            mapped = out_a + (at - in_a)
        elif in_b - at <= tail:
            mapped = out_b - (in_b - at)
        else:
            mapped = out_b - tail if end else out_a + head
        return mapped + self.passed

    def map_annotations(self, annotations: Any) -> bool:
        """Move every annotation's start/end index into the marked text; False if one is still held back."""
        if not isinstance(annotations, list):
            return True
        moved: list[tuple[dict[str, Any], str, int]] = []
        for annotation in annotations:
            if not isinstance(annotation, dict):
                continue
            for field, end in (("start_index", False), ("end_index", True)):
                value = annotation.get(field)
                if isinstance(value, int) and not isinstance(value, bool):
                    mapped = self.output_index(value, end)
                    if mapped is None:
                        return False
                    moved.append((annotation, field, mapped))
        for annotation, field, mapped in moved:
            annotation[field] = mapped
        return True


def _common_prefix(a: str, b: str) -> int:
    size = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        size += 1
    return size


Factory = Callable[[StreamKey], TextStream]


# ---------------------------------------------------------------- whole bodies


def mark_body(operation: str, body: dict[str, Any], factory: Factory, strip_logprobs: bool) -> None:
    """Mark every assistant text of a non-streaming response body in place."""
    if operation in ("chat.completions", "completions"):
        for position, choice in enumerate(_list(body.get("choices"))):
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", position)
            if operation == "chat.completions":
                message = choice.get("message")
                if isinstance(message, dict) and isinstance(message.get("content"), str):
                    message["content"] = _whole(factory(("choice", index)), message["content"])
            elif isinstance(choice.get("text"), str):
                choice["text"] = _whole(factory(("choice", index)), choice["text"])
            if strip_logprobs and choice.get("logprobs") is not None:
                choice["logprobs"] = None
    elif operation == "responses":
        _mark_response_object(body, factory, strip_logprobs, None)
    elif operation == "messages":
        for index, block in enumerate(_list(body.get("content"))):
            if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
                block["text"] = _whole(factory(("block", index)), block["text"])


def _whole(stream: TextStream, text: str) -> str:
    return stream.feed(text) + stream.finish()


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _mark_response_object(
    response: dict[str, Any],
    factory: Factory,
    strip_logprobs: bool,
    streamed: dict[StreamKey, TextStream] | None,
) -> None:
    """Responses: every output_text part; from the streams already marked when ``streamed`` is given."""
    for item_index, item in enumerate(_list(response.get("output"))):
        if not isinstance(item, dict) or item.get("type") != "message":
            continue
        for part_index, part in enumerate(_list(item.get("content"))):
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
                part["text"] = _whole(stream, part["text"])
            if stream is not None:
                _map_part_annotations(stream, part)
            if strip_logprobs and part.get("logprobs"):
                part["logprobs"] = []


def _map_part_annotations(stream: TextStream, part: dict[str, Any]) -> None:
    stream.map_annotations(part.get("annotations"))


# ---------------------------------------------------------------- streams


class WatermarkStreamFilter(StreamFilter):
    """Marks the text deltas of one streamed response."""

    def __init__(self, operation: str, factory: Factory, strip_logprobs: bool) -> None:
        self.operation = operation
        self.factory = factory
        self.strip_logprobs = strip_logprobs
        self.streams: dict[StreamKey, TextStream] = {}
        self._template: dict[str, Any] | None = None
        self._seq_shift = 0
        # annotation.added events waiting until the text they point into is final, per text stream
        self._waiting: dict[StreamKey, list[StreamEvent]] = {}

    def _stream(self, key: StreamKey) -> TextStream:
        stream = self.streams.get(key)
        if stream is None:
            stream = self.streams[key] = self.factory(key)
        return stream

    def on_event(self, event: StreamEvent) -> list[StreamEvent]:
        payload = event.json
        if payload is None:
            return [event]
        if self.operation in ("chat.completions", "completions"):
            self._openai_chunk(payload)
            return [event]
        if self.operation == "responses":
            return self._responses_event(event, payload)
        return self._anthropic_event(event, payload)

    def on_end(self) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for key, stream in self.streams.items():
            if not stream.done:
                tail = stream.finish()
                if tail:
                    out.append(self._flush_event(key, tail))
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

    # OpenAI chat and completions chunks
    def _openai_chunk(self, payload: dict[str, Any]) -> None:
        choices = payload.get("choices")
        if not isinstance(choices, list):
            return
        for position, choice in enumerate(choices):
            if not isinstance(choice, dict):
                raise UpstreamError("The upstream sent a stream chunk whose choice is not an object.")
            index = choice.get("index", position)
            if self._template is None:
                self._template = {k: v for k, v in payload.items() if k not in ("choices", "usage")}
            holder: dict[str, Any] | None
            if self.operation == "chat.completions":
                holder = choice.get("delta") if isinstance(choice.get("delta"), dict) else None
                field = "content"
            else:
                holder, field = choice, "text"
            text = holder.get(field) if holder is not None else None
            stream = None
            if isinstance(text, str):
                stream = self._stream(("choice", index))
                holder[field] = stream.feed(text)  # type: ignore[index]
            if choice.get("finish_reason") is not None:
                stream = self.streams.get(("choice", index))
                if stream is not None and not stream.done:
                    tail = stream.finish()
                    if tail:
                        if holder is None:
                            holder = choice.setdefault("delta", {})
                        holder[field] = (holder.get(field) or "") + tail
            if self.strip_logprobs and choice.get("logprobs") is not None:
                choice["logprobs"] = None

    # Responses events
    def _responses_event(self, event: StreamEvent, payload: dict[str, Any]) -> list[StreamEvent]:
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
                _mark_response_object(response, self.factory, self.strip_logprobs, self.streams)
        elif kind == "response.output_item.done":
            item = payload.get("item")
            if isinstance(item, dict) and item.get("type") == "message":
                for part_index, part in enumerate(_list(item.get("content"))):
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

    # Anthropic events
    def _anthropic_event(self, event: StreamEvent, payload: dict[str, Any]) -> list[StreamEvent]:
        kind = payload.get("type")
        if kind == "content_block_start":
            block = payload.get("content_block")
            if isinstance(block, dict) and block.get("type") == "text":
                stream = self._stream(("block", payload.get("index")))
                if isinstance(block.get("text"), str) and block["text"]:
                    block["text"] = stream.feed(block["text"])
        elif kind == "content_block_delta":
            delta = payload.get("delta")
            if isinstance(delta, dict) and delta.get("type") == "text_delta":
                text = delta.get("text")
                if not isinstance(text, str):
                    raise UpstreamError("The upstream sent a text_delta without text.")
                delta["text"] = self._stream(("block", payload.get("index"))).feed(text)
        elif kind == "content_block_stop":
            key = ("block", payload.get("index"))
            stream = self.streams.get(key)
            if stream is not None and not stream.done:
                tail = stream.finish()
                if tail:
                    return [self._flush_event(key, tail), event]
        return [event]

    def _flush_event(self, key: StreamKey, text: str, done: dict[str, Any] | None = None) -> StreamEvent:
        """A delta event carrying held-back text, in the stream's own shape."""
        if self.operation == "messages":
            return StreamEvent.of(
                {
                    "type": "content_block_delta",
                    "index": key[1],
                    "delta": {"type": "text_delta", "text": text},
                },
                event="content_block_delta",
            )
        if self.operation == "responses":
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
        template = copy.deepcopy(self._template) if self._template else {}
        choice: dict[str, Any] = {"index": key[1], "finish_reason": None}
        if self.operation == "chat.completions":
            choice["delta"] = {"content": text}
        else:
            choice["text"] = text
        choice["logprobs"] = None
        return StreamEvent.of({**template, "choices": [choice]})

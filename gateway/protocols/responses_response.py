"""Response view of OpenAI's Responses API: output items and their stream events.

Keys: an ``output_text`` part is ``("part", item id, content index)`` (the item's position when it
has no id, in a whole body); a ``refusal`` part the same with ``"refusal"``; a reasoning item's
summary and raw text ``("reasoning", item id, "summary" | "content", index)`` and its
``encrypted_content`` ``("reasoning", item id, "encrypted")``; a function call's arguments
``("tool", item id)``; logprobs ``("logprobs", output index, content index)``.

Streams: ``response.output_text.delta`` continues a part; ``response.output_text.done`` closes it
and repeats its whole text, as do ``content_part.done``, ``output_item.done`` and the ``response``
object of the lifecycle events (``response.completed``...); ``annotation.added`` carries anchors
into a part's text. Text added for a part goes out as an ``output_text.delta`` event before the
event that closes it. :class:`ResponsesNumbering` keeps ``sequence_number`` and ``output_index``
consecutive whatever the policies dropped or inserted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gateway.protocols.openai_logprobs import TokenListLogprobs
from gateway.protocols.response_parts import anchors_of, list_blocks
from gateway.protocols.response_view import (
    Anchor,
    Block,
    IndexMap,
    LogprobsPart,
    Part,
    PartKey,
    ResponseView,
    StreamNumbering,
    StreamView,
)
from gateway.sse import StreamEvent

# output item type -> the part kind of its content
ITEM_KINDS = {
    "message": "text",
    "reasoning": "reasoning",
    "function_call": "tool_arguments",
    "custom_tool_call": "tool_arguments",
}
_ITEM_EVENTS = ("response.output_item.added", "response.output_item.done")
_PART_EVENTS = ("response.content_part.added", "response.content_part.done")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


class TextPart(Part):
    """An ``output_text`` part (or its delta), with the annotations that point into it."""

    __slots__ = ("_annotations",)

    def __init__(
        self, key: PartKey, holder: dict[str, Any], field: str, *, delta: bool, annotations: Any
    ) -> None:
        super().__init__("text", key, holder, field, delta=delta)
        self._annotations = annotations

    def anchors(self) -> list[Anchor]:
        return anchors_of(self._annotations)


class AnnotationPart(Part):
    """An ``annotation.added`` event: anchors into a part's text, and no text of its own."""

    __slots__ = ()

    def anchors(self) -> list[Anchor]:
        return anchors_of([self._holder.get("annotation")])


def item_parts(item: Any, position: int, kinds: frozenset[str]) -> Iterator[Part | LogprobsPart]:
    """The parts of one output item (final: a body, a ``.done`` event, a lifecycle ``response``)."""
    if not isinstance(item, dict):
        return
    item_id = item.get("id") or position
    kind = item.get("type")
    content = _list(item.get("content"))
    if kind == "message":
        for index, part in enumerate(content):
            if not isinstance(part, dict):
                continue
            part_type = part.get("type")
            if part_type == "output_text" and "text" in kinds and isinstance(part.get("text"), str):
                yield TextPart(
                    ("part", item_id, index), part, "text", delta=False, annotations=part.get("annotations")
                )
            elif part_type == "refusal" and "refusal" in kinds and isinstance(part.get("refusal"), str):
                yield Part("refusal", ("refusal", item_id, index), part, "refusal")
    elif kind == "reasoning" and "reasoning" in kinds:
        yield from _reasoning_parts(item, item_id)
    elif kind == "function_call" and "tool_arguments" in kinds and isinstance(item.get("arguments"), str):
        yield Part("tool_arguments", ("tool", item_id), item, "arguments")
    if "logprobs" in kinds:
        for index, part in enumerate(content):
            if isinstance(part, dict) and part.get("logprobs") is not None:
                key = ("logprobs", position, index)
                yield TokenListLogprobs(key, part["logprobs"], part, "logprobs", [], delta=False)


def _reasoning_parts(item: dict[str, Any], item_id: Any) -> Iterator[Part]:
    """A reasoning item's summary and raw texts (drop: out of their list) and its encrypted_content.

    Sealing any of them puts the blob in the item's ``encrypted_content`` (what the client sends
    back) and removes the part's text."""
    for name, detail in (("summary", "summary"), ("content", "raw")):
        parts = _list(item.get(name))
        for index, part in enumerate(list(parts)):
            if not isinstance(part, dict) or not isinstance(part.get("text"), str):
                continue

            def remove(parts: list[Any] = parts, part: dict[str, Any] = part) -> None:
                if part in parts:
                    parts.remove(part)

            def seal(blob: str, remove: Any = remove) -> None:
                item["encrypted_content"] = blob
                remove()

            key: PartKey = ("reasoning", item_id, name, index)
            yield Part("reasoning", key, part, "text", detail=detail, remove=remove, seal=seal)  # type: ignore[arg-type]
    if isinstance(item.get("encrypted_content"), str):

        def replace(blob: str) -> None:
            item["encrypted_content"] = blob

        yield Part(
            "reasoning",
            ("reasoning", item_id, "encrypted"),
            item,
            "encrypted_content",
            detail="encrypted",
            seal=replace,
        )


def response_parts(response: Any, kinds: frozenset[str]) -> Iterator[Part | LogprobsPart]:
    """The parts of a response object (a whole body, or a lifecycle event's ``response``)."""
    if not isinstance(response, dict):
        return
    for position, item in enumerate(_list(response.get("output"))):
        yield from item_parts(item, position, kinds)


def item_kind(item: Any) -> str:
    return ITEM_KINDS.get(str(item.get("type")), "") if isinstance(item, dict) else ""


def _item_key(position: int, item: Any) -> PartKey:
    return ("item", (item.get("id") if isinstance(item, dict) else None) or position)


class ResponsesBodyView(ResponseView):
    __slots__ = ()

    def parts(self, kinds: frozenset[str] = frozenset({"text"})) -> Iterator[Part | LogprobsPart]:
        return response_parts(self.body, kinds)

    def blocks(self) -> Iterator[Block]:
        return list_blocks(self.body.get("output"), _item_key, item_kind)


class ResponsesStreamView(StreamView):
    """A Responses event stream."""

    __slots__ = ("_kinds", "numbered")

    def __init__(self) -> None:
        super().__init__()
        self.numbered = False  # the upstream numbers its events (then so are the events made here)
        self._kinds: dict[Any, str] = {}  # item id -> the part kind of its content

    def observe(self, event: StreamEvent) -> None:
        payload = event.json
        if payload is None:
            return
        if not self.numbered and isinstance(payload.get("sequence_number"), int):
            self.numbered = True
        if payload.get("type") in _ITEM_EVENTS and isinstance(payload.get("item"), dict):
            self._kinds[payload["item"].get("id")] = item_kind(payload["item"])

    def closes(self, event: StreamEvent) -> tuple[PartKey, ...]:
        payload = event.json
        if payload is None:
            return ()
        if payload.get("type") == "response.output_text.done":
            return (("part", payload.get("item_id"), payload.get("content_index")),)
        return ()

    def event_parts(self, event: StreamEvent, kinds: frozenset[str]) -> Iterator[Part | LogprobsPart]:
        payload = event.json
        if payload is None:
            return iter(())
        return self._parts(payload, kinds)

    def _parts(self, payload: dict[str, Any], kinds: frozenset[str]) -> Iterator[Part | LogprobsPart]:
        kind = payload.get("type")
        key = ("part", payload.get("item_id"), payload.get("content_index"))
        if kind == "response.output_text.delta":
            if "text" in kinds:
                if not isinstance(payload.get("delta"), str):
                    raise ValueError("an output_text delta without text")
                yield TextPart(key, payload, "delta", delta=True, annotations=None)
            if "logprobs" in kinds and payload.get("logprobs") is not None:
                lane = ("logprobs", payload.get("output_index"), payload.get("content_index"))
                yield TokenListLogprobs(lane, payload["logprobs"], payload, "logprobs", [], delta=True)
        elif kind == "response.output_text.done":
            if "text" in kinds and isinstance(payload.get("text"), str):
                yield TextPart(key, payload, "text", delta=False, annotations=None)
            if "logprobs" in kinds and payload.get("logprobs") is not None:
                lane = ("logprobs", payload.get("output_index"), payload.get("content_index"))
                yield TokenListLogprobs(lane, payload["logprobs"], payload, "logprobs", [], delta=False)
        elif kind == "response.output_text.annotation.added":
            if "annotation" in kinds:
                yield AnnotationPart("annotation", key, payload, "annotation")
        elif kind in _PART_EVENTS:
            part = payload.get("part")
            if isinstance(part, dict):
                yield from self._single_part(payload, part, kinds)
        elif kind in _ITEM_EVENTS:
            index = payload.get("output_index")
            yield from item_parts(payload.get("item"), index if isinstance(index, int) else 0, kinds)
        elif kind in ("response.reasoning_text.delta", "response.reasoning_summary_text.delta"):
            if "reasoning" in kinds and isinstance(payload.get("delta"), str):
                name, detail = ("content", "raw") if "reasoning_text" in kind else ("summary", "summary")
                at = payload.get("content_index", payload.get("summary_index"))
                rkey: PartKey = ("reasoning", payload.get("item_id"), name, at)
                yield Part("reasoning", rkey, payload, "delta", delta=True, detail=detail)  # type: ignore[arg-type]
        elif kind == "response.function_call_arguments.delta":
            if "tool_arguments" in kinds and isinstance(payload.get("delta"), str):
                yield Part("tool_arguments", ("tool", payload.get("item_id")), payload, "delta", delta=True)
        elif kind == "response.refusal.delta":
            if "refusal" in kinds and isinstance(payload.get("delta"), str):
                rkey = ("refusal", payload.get("item_id"), payload.get("content_index"))
                yield Part("refusal", rkey, payload, "delta", delta=True)
        elif isinstance(payload.get("response"), dict):
            yield from response_parts(payload["response"], kinds)

    def _single_part(
        self, payload: dict[str, Any], part: dict[str, Any], kinds: frozenset[str]
    ) -> Iterator[Part | LogprobsPart]:
        index = payload.get("content_index")
        part_type = part.get("type")
        if part_type == "output_text" and "text" in kinds and isinstance(part.get("text"), str):
            key = ("part", payload.get("item_id"), index)
            yield TextPart(key, part, "text", delta=False, annotations=part.get("annotations"))
        elif part_type == "refusal" and "refusal" in kinds and isinstance(part.get("refusal"), str):
            yield Part("refusal", ("refusal", payload.get("item_id"), index), part, "refusal")
        if "logprobs" in kinds and part.get("logprobs") is not None:
            lane = ("logprobs", payload.get("output_index"), index)
            yield TokenListLogprobs(lane, part["logprobs"], part, "logprobs", [], delta=False)

    def block_of(self, event: StreamEvent) -> Block | None:
        payload = event.json
        if payload is None:
            return None
        item_id = payload.get("item_id")
        if item_id is None and payload.get("type") in _ITEM_EVENTS and isinstance(payload.get("item"), dict):
            item_id = payload["item"].get("id")
        if item_id is None:
            return None
        return Block(("item", item_id), self._kinds.get(item_id, ""))

    def text_event(self, key: PartKey, text: str, before: StreamEvent | None = None) -> StreamEvent:
        if key[0] != "part":
            raise ValueError(f"no delta for {key!r} in this stream")
        anchor = before.json if before is not None and before.json is not None else {}
        payload: dict[str, Any] = {
            "type": "response.output_text.delta",
            "item_id": key[1],
            "output_index": anchor.get("output_index", 0),
            "content_index": key[2],
            "delta": text,
            "logprobs": [],
        }
        if self.numbered:
            payload["sequence_number"] = 0  # set by ResponsesNumbering
        return StreamEvent.of(payload, event="response.output_text.delta")


class ResponsesNumbering(StreamNumbering):
    """Consecutive ``sequence_number`` s from the first seen; ``output_index`` es of the items shown."""

    __slots__ = ("_items", "_next")

    def __init__(self) -> None:
        self._next: int | None = None
        self._items = IndexMap()

    def apply(self, events: list[StreamEvent]) -> list[StreamEvent]:
        for event in events:
            payload = event.json
            if payload is None:
                continue
            sequence = payload.get("sequence_number")
            if isinstance(sequence, int) and not isinstance(sequence, bool):
                if self._next is None:
                    self._next = sequence
                payload["sequence_number"] = self._next
                self._next += 1
            index = payload.get("output_index")
            if isinstance(index, int) and not isinstance(index, bool):
                if payload.get("type") == "response.output_item.added":
                    payload["output_index"] = self._items.start(index)
                else:
                    payload["output_index"] = self._items.get(index)
        return events

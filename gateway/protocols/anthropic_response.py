"""Response view of Anthropic's Messages API: content blocks, whole and streamed.

Keys: block ``i`` is ``("block", i)`` whatever its type (the upstream's index: policies see the
upstream's numbering; :class:`MessagesNumbering` gives the client consecutive indexes after any
block was withheld). ``text`` blocks are visible text; ``thinking`` blocks reasoning (``raw``, or
``encrypted`` when only a signature is there), ``redacted_thinking`` blocks reasoning
(``encrypted``); a ``tool_use`` block's ``input`` is tool arguments (JSON text). Messages carry no
log-probabilities.

Streams: ``content_block_delta`` continues a block (``text_delta``, ``thinking_delta``,
``signature_delta``, ``input_json_delta``), ``content_block_stop`` closes it; text added for a
block goes out as a ``text_delta`` just before its stop.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from gateway.protocols.response_parts import list_blocks
from gateway.protocols.response_view import (
    Block,
    IndexMap,
    LogprobsPart,
    Part,
    PartKey,
    PartKind,
    ReasoningDetail,
    ResponseView,
    StreamNumbering,
    StreamView,
)
from gateway.sse import StreamEvent

# content block type -> the part kind of its content
BLOCK_KINDS = {
    "text": "text",
    "thinking": "reasoning",
    "redacted_thinking": "reasoning",
    "tool_use": "tool_arguments",
    "server_tool_use": "tool_arguments",
}
_BLOCK_EVENTS = ("content_block_start", "content_block_delta", "content_block_stop")

# delta type -> (part kind, the delta's field, reasoning detail)
_DELTAS: dict[str, tuple[str, str, str]] = {
    "text_delta": ("text", "text", ""),
    "thinking_delta": ("reasoning", "thinking", "raw"),
    "signature_delta": ("reasoning", "signature", "encrypted"),
    "input_json_delta": ("tool_arguments", "partial_json", ""),
}


class ToolInputPart(Part):
    """A whole ``tool_use`` block's ``input`` object, read and written as JSON text."""

    __slots__ = ()

    @property
    def text(self) -> str:
        return orjson.dumps(self._holder.get("input")).decode()

    def set_text(self, text: str) -> None:
        self._holder["input"] = orjson.loads(text)


def _block_parts(content: list[Any], position: int, block: Any, kinds: frozenset[str]) -> Iterator[Part]:
    if not isinstance(block, dict):
        return
    key = ("block", position)
    kind = block.get("type")

    def remove() -> None:
        content.remove(block)

    if kind == "text":
        if "text" in kinds and isinstance(block.get("text"), str):
            yield Part("text", key, block, "text", remove=remove)
    elif kind == "thinking":
        if "reasoning" in kinds:
            detail = "raw" if block.get("thinking") else "encrypted"

            def seal(blob: str) -> None:
                block["thinking"] = ""
                block["signature"] = blob

            yield Part("reasoning", key, block, "thinking", detail=detail, remove=remove, seal=seal)  # type: ignore[arg-type]
    elif kind == "redacted_thinking":
        if "reasoning" in kinds:
            yield Part("reasoning", key, block, "data", detail="encrypted", remove=remove)
    elif kind == "tool_use" and "tool_arguments" in kinds:
        yield ToolInputPart("tool_arguments", key, block, "input", remove=remove)


def message_parts(message: dict[str, Any], kinds: frozenset[str]) -> Iterator[Part | LogprobsPart]:
    content = message.get("content")
    if content is None:
        return
    if not isinstance(content, list):
        raise ValueError("message content is not a list")
    # Over a copy: a part's drop removes its block from the list.
    for position, block in enumerate(list(content)):
        yield from _block_parts(content, position, block, kinds)


def _block_key(position: int, block: Any) -> PartKey:
    return ("block", position)


def _block_kind(block: Any) -> str:
    return BLOCK_KINDS.get(str(block.get("type")), "") if isinstance(block, dict) else ""


class MessageView(ResponseView):
    __slots__ = ()

    def parts(self, kinds: frozenset[str] = frozenset({"text"})) -> Iterator[Part | LogprobsPart]:
        return message_parts(self.body, kinds)

    def blocks(self) -> Iterator[Block]:
        return list_blocks(self.body.get("content"), _block_key, _block_kind)


class MessagesStreamView(StreamView):
    """A Messages event stream."""

    __slots__ = ("_kinds",)

    def __init__(self) -> None:
        super().__init__()
        self._kinds: dict[Any, str] = {}  # block index -> the part kind of its content

    def observe(self, event: StreamEvent) -> None:
        payload = event.json
        if payload is not None and payload.get("type") == "content_block_start":
            block = payload.get("content_block")
            block_type = block.get("type") if isinstance(block, dict) else None
            self._kinds[payload.get("index")] = BLOCK_KINDS.get(block_type, "")  # type: ignore[arg-type]

    def closes(self, event: StreamEvent) -> tuple[PartKey, ...]:
        payload = event.json
        if payload is not None and payload.get("type") == "content_block_stop":
            return (("block", payload.get("index")),)
        return ()

    def block_of(self, event: StreamEvent) -> Block | None:
        payload = event.json
        if payload is None or payload.get("type") not in _BLOCK_EVENTS:
            return None
        index = payload.get("index")
        return Block(("block", index), self._kinds.get(index, ""))

    def event_parts(self, event: StreamEvent, kinds: frozenset[str]) -> Iterator[Part | LogprobsPart]:
        payload = event.json
        if payload is None:
            return iter(())
        return self._parts(payload, kinds)

    def _parts(self, payload: dict[str, Any], kinds: frozenset[str]) -> Iterator[Part | LogprobsPart]:
        kind = payload.get("type")
        if kind == "content_block_delta":
            delta = payload.get("delta")
            if not isinstance(delta, dict):
                raise ValueError("content_block_delta without a delta object")
            found = _DELTAS.get(delta.get("type"))  # type: ignore[arg-type]
            if found is None or found[0] not in kinds:
                return
            part_kind, field, detail = found
            if not isinstance(delta.get(field), str):
                raise ValueError(f"a {delta.get('type')} without a string {field}")
            key = ("block", payload.get("index"))
            yield Part(part_kind, key, delta, field, delta=True, detail=detail)  # type: ignore[arg-type]
        elif kind == "content_block_start":
            block = payload.get("content_block")
            if not isinstance(block, dict):
                raise ValueError("content_block_start without a content_block")
            # A block may start with text in it (the SDK appends its deltas to it).
            block_type = block.get("type")
            if (
                block_type in ("text", "thinking")
                and isinstance(block.get(block_type), str)
                and block[block_type]
            ):
                start_kind: PartKind = "text" if block_type == "text" else "reasoning"
                if start_kind in kinds:
                    key = ("block", payload.get("index"))
                    sort: ReasoningDetail = "raw" if block_type == "thinking" else ""
                    yield Part(start_kind, key, block, block_type, delta=True, detail=sort)
        elif kind == "message_start" and isinstance(payload.get("message"), dict):
            yield from message_parts(payload["message"], kinds)

    def text_event(self, key: PartKey, text: str, before: StreamEvent | None = None) -> StreamEvent:
        if key[0] != "block":
            raise ValueError(f"no delta for {key!r} in this stream")
        payload = {
            "type": "content_block_delta",
            "index": key[1],
            "delta": {"type": "text_delta", "text": text},
        }
        return StreamEvent.of(payload, event="content_block_delta")


class MessagesNumbering(StreamNumbering):
    """Consecutive block indexes for the blocks the client is shown."""

    __slots__ = ("_blocks",)

    def __init__(self) -> None:
        self._blocks = IndexMap()

    def apply(self, events: list[StreamEvent]) -> list[StreamEvent]:
        for event in events:
            payload = event.json
            if payload is None:
                continue
            index = payload.get("index")
            if not isinstance(index, int) or isinstance(index, bool):
                continue
            kind = payload.get("type")
            if kind == "content_block_start":
                payload["index"] = self._blocks.start(index)
            elif kind in ("content_block_delta", "content_block_stop"):
                payload["index"] = self._blocks.get(index)
        return events

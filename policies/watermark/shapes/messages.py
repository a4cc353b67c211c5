"""Anthropic Messages: the ``text`` content blocks, whole and streamed.

Each block index is its own stream, flushed at its ``content_block_stop`` by a
``text_delta`` sent just before it. Thinking and tool-use blocks are never
touched.
"""

from __future__ import annotations

from typing import Any

from gateway.plugins import StreamEvent, UpstreamError
from policies.watermark.shapes.streams import ShapeStreams
from policies.watermark.shapes.text_stream import Factory, StreamKey, as_list, mark_whole


def mark_message(body: dict[str, Any], factory: Factory) -> None:
    """Mark every text block of a whole Messages body in place."""
    for index, block in enumerate(as_list(body.get("content"))):
        if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
            block["text"] = mark_whole(factory(("block", index)), block["text"])


class MessageStreams(ShapeStreams):
    """The text blocks of a streamed Messages response."""

    def on_event(self, event: StreamEvent, payload: dict[str, Any]) -> list[StreamEvent]:
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
            stopped = self.streams.get(key)
            if stopped is not None and not stopped.done:
                tail = stopped.finish()
                if tail:
                    return [self._flush_event(key, tail), event]
        return [event]

    def _flush_event(self, key: StreamKey, text: str) -> StreamEvent:
        return StreamEvent.of(
            {
                "type": "content_block_delta",
                "index": key[1],
                "delta": {"type": "text_delta", "text": text},
            },
            event="content_block_delta",
        )

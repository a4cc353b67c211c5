"""Where assistant text lives in each API's responses, whole and streamed, and how it is rewritten.

Each text stream (a chat choice, a completions choice, a Responses output_text
part, an Anthropic text block) gets its own :class:`TextStream`; n>1 choices
and several blocks keep separate state. Streams are flushed at their end: the
chunk with ``finish_reason`` (OpenAI), ``content_block_stop`` (Anthropic),
``response.output_text.done`` (Responses). Tool-call arguments, reasoning and
refusals are never touched. One module per API shape: ``chat`` (chat
completions and completions), ``responses`` (with its event renumbering and
annotations), ``messages`` (Anthropic); ``text_stream`` holds the stream
itself.
"""

from __future__ import annotations

from typing import Any

from gateway.plugins import StreamEvent, StreamFilter
from policies.watermark.shapes.chat import ChoiceStreams, mark_choices
from policies.watermark.shapes.messages import MessageStreams, mark_message
from policies.watermark.shapes.responses import ResponsesStreams, mark_response_object
from policies.watermark.shapes.streams import ShapeStreams
from policies.watermark.shapes.text_stream import Factory, StreamKey, TextStream

__all__ = ["Factory", "StreamKey", "TextStream", "WatermarkStreamFilter", "mark_body"]


def mark_body(operation: str, body: dict[str, Any], factory: Factory, strip_logprobs: bool) -> None:
    """Mark every assistant text of a non-streaming response body in place."""
    if operation in ("chat.completions", "completions"):
        mark_choices(operation, body, factory, strip_logprobs)
    elif operation == "responses":
        mark_response_object(body, factory, strip_logprobs, None)
    elif operation == "messages":
        mark_message(body, factory)


def _shape_streams(operation: str, factory: Factory, strip_logprobs: bool) -> ShapeStreams:
    if operation in ("chat.completions", "completions"):
        return ChoiceStreams(operation, factory, strip_logprobs)
    if operation == "responses":
        return ResponsesStreams(factory, strip_logprobs)
    return MessageStreams(factory, strip_logprobs)


class WatermarkStreamFilter(StreamFilter):
    """Marks the text deltas of one streamed response, in the shape of its operation."""

    def __init__(self, operation: str, factory: Factory, strip_logprobs: bool) -> None:
        self.operation = operation
        self.shape = _shape_streams(operation, factory, strip_logprobs)

    def on_event(self, event: StreamEvent) -> list[StreamEvent]:
        payload = event.json
        if payload is None:
            return [event]
        return self.shape.on_event(event, payload)

    def on_end(self) -> list[StreamEvent]:
        return self.shape.on_end()

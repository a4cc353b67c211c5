"""OpenAI chat completions and completions: the text of every choice, whole and streamed.

A choice's text is ``message.content`` / ``delta.content`` (chat) or ``text``
(completions); each choice index is its own stream, flushed by the chunk with
its ``finish_reason``. Held-back text left at the end goes out in a chunk made
from the stream's first chunk.
"""

from __future__ import annotations

import copy
from typing import Any

from gateway.plugins import StreamEvent, UpstreamError
from policies.watermark.shapes.streams import ShapeStreams
from policies.watermark.shapes.text_stream import Factory, StreamKey, as_list, mark_whole


def mark_choices(operation: str, body: dict[str, Any], factory: Factory, strip_logprobs: bool) -> None:
    """Mark the text of every choice of a whole chat.completions or completions body in place."""
    for position, choice in enumerate(as_list(body.get("choices"))):
        if not isinstance(choice, dict):
            continue
        index = choice.get("index", position)
        if operation == "chat.completions":
            message = choice.get("message")
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                message["content"] = mark_whole(factory(("choice", index)), message["content"])
        elif isinstance(choice.get("text"), str):
            choice["text"] = mark_whole(factory(("choice", index)), choice["text"])
        if strip_logprobs and choice.get("logprobs") is not None:
            choice["logprobs"] = None


class ChoiceStreams(ShapeStreams):
    """The choices of a streamed chat.completions or completions response."""

    def __init__(self, operation: str, factory: Factory, strip_logprobs: bool) -> None:
        super().__init__(factory, strip_logprobs)
        self.operation = operation
        self._template: dict[str, Any] | None = None

    def on_event(self, event: StreamEvent, payload: dict[str, Any]) -> list[StreamEvent]:
        choices = payload.get("choices")
        if not isinstance(choices, list):
            return [event]
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
        return [event]

    def _flush_event(self, key: StreamKey, text: str) -> StreamEvent:
        template = copy.deepcopy(self._template) if self._template else {}
        choice: dict[str, Any] = {"index": key[1], "finish_reason": None}
        if self.operation == "chat.completions":
            choice["delta"] = {"content": text}
        else:
            choice["text"] = text
        choice["logprobs"] = None
        return StreamEvent.of({**template, "choices": [choice]})

"""Response view of Chat Completions and legacy Completions: choices, whole and streamed.

Keys: a choice's visible text is ``("choice", index)`` (chat ``message.content`` /
``delta.content``, completions ``text``); its reasoning fields ``("reasoning", index, field)``
(``reasoning_content``, ``reasoning``: DeepSeek, llama.cpp, vLLM); its refusal ``("refusal",
index)``; a tool call's arguments ``("tool", index, call index)``; its logprobs ``("logprobs",
index, "content" | "refusal" | "text")``; vLLM prompt logprobs ``("prompt_logprobs", index)``.
Reasoning also comes inline in the text as ``<think>`` spans (``inline_think``).

A choice's content ends at the chunk that carries its ``finish_reason``; text added for it there
goes into that chunk's own delta. Text flushed after the upstream stopped goes out in a chunk made
from the stream's first chunk.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from gateway.protocols.openai_logprobs import LegacyLogprobs, TokenListLogprobs, prompt_logprobs
from gateway.protocols.response_view import LogprobsPart, Part, PartKey, ResponseView, StreamView
from gateway.sse import StreamEvent

REASONING_FIELDS = ("reasoning_content", "reasoning")
_LOGPROB_LISTS = ("content", "refusal")


def choices_of(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """``payload["choices"]``, checked to be a list of objects (absent: none)."""
    choices = payload.get("choices")
    if choices is None:
        return []
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        raise ValueError("choices is not a list of objects")
    return choices


def _index(choice: dict[str, Any], position: int) -> int:
    index = choice.get("index", position)
    return index if isinstance(index, int) else position


def _choice_parts(
    payload: dict[str, Any], kinds: frozenset[str], *, chat: bool, stream: bool
) -> Iterator[Part | LogprobsPart]:
    """The parts of a chat/completions body (``stream`` False) or chunk (True)."""
    want_logprobs = "logprobs" in kinds
    if want_logprobs and chat:
        run = prompt_logprobs(("prompt_logprobs", 0), payload)
        if run is not None:
            yield run
    for position, choice in enumerate(choices_of(payload)):
        index = _index(choice, position)
        if chat:
            holder = choice.get("delta" if stream else "message")
            if holder is not None and not isinstance(holder, dict):
                raise ValueError(f"choice {'delta' if stream else 'message'} is not an object")
            if holder is not None:
                yield from _message_parts(holder, index, kinds, stream)
        elif "text" in kinds:
            text = choice.get("text")
            if isinstance(text, str):
                yield Part("text", ("choice", index), choice, "text", delta=stream, choice=index)
        if want_logprobs:
            yield from _choice_logprobs(choice, index, chat=chat, stream=stream)


def _message_parts(holder: dict[str, Any], index: int, kinds: frozenset[str], stream: bool) -> Iterator[Part]:
    if "reasoning" in kinds:
        for name in REASONING_FIELDS:
            if isinstance(holder.get(name), str):
                key = ("reasoning", index, name)
                yield Part("reasoning", key, holder, name, delta=stream, choice=index, detail="raw")
    if "text" in kinds and isinstance(holder.get("content"), str):
        yield Part("text", ("choice", index), holder, "content", delta=stream, choice=index)
    if "refusal" in kinds and isinstance(holder.get("refusal"), str):
        yield Part("refusal", ("refusal", index), holder, "refusal", delta=stream, choice=index)
    if "tool_arguments" in kinds and isinstance(holder.get("tool_calls"), list):
        for position, call in enumerate(holder["tool_calls"]):
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                at = call.get("index", position)
                key = ("tool", index, at)
                yield Part("tool_arguments", key, function, "arguments", delta=stream, choice=index)


def _choice_logprobs(
    choice: dict[str, Any], index: int, *, chat: bool, stream: bool
) -> Iterator[LogprobsPart]:
    if not chat:
        run = prompt_logprobs(("prompt_logprobs", index), choice)
        if run is not None:
            yield run
    logprobs = choice.get("logprobs")
    if logprobs is None:
        return
    if not isinstance(logprobs, dict):
        raise ValueError("choices[].logprobs is not an object")
    if not chat:
        yield LegacyLogprobs(("logprobs", index, "text"), choice, logprobs, delta=stream)
        return
    found = False
    for name in _LOGPROB_LISTS:
        entries = logprobs.get(name)
        if entries is not None:
            found = True
            key = ("logprobs", index, name)
            yield TokenListLogprobs(key, entries, choice, "logprobs", None, delta=stream, choice=index)
    if not found:  # an empty logprobs object: nothing to rewrite, but dropping it removes it
        yield TokenListLogprobs(("logprobs", index, "content"), [], choice, "logprobs", None, delta=stream)


class ChoicesView(ResponseView):
    """A whole chat.completions or completions body."""

    __slots__ = ("chat",)

    def __init__(self, body: dict[str, Any], *, chat: bool) -> None:
        super().__init__(body, inline_think=True)
        self.chat = chat

    def parts(self, kinds: frozenset[str] = frozenset({"text"})) -> Iterator[Part | LogprobsPart]:
        return _choice_parts(self.body, kinds, chat=self.chat, stream=False)


class ChoicesStreamView(StreamView):
    """A chat.completions or completions stream."""

    __slots__ = ("chat", "template")

    def __init__(self, *, chat: bool) -> None:
        super().__init__(inline_think=True)
        self.chat = chat
        self.template: dict[str, Any] | None = None  # the first chunk, for chunks the gateway makes

    def closes(self, event: StreamEvent) -> tuple[PartKey, ...]:
        payload = event.json
        if payload is None:
            return ()
        choices = payload.get("choices")
        if not isinstance(choices, list) or not choices:
            return ()
        if self.template is None:
            self.template = {k: v for k, v in payload.items() if k not in ("choices", "usage")}
        return tuple(
            ("choice", _index(choice, position))
            for position, choice in enumerate(choices)
            if isinstance(choice, dict) and choice.get("finish_reason") is not None
        )

    def event_parts(self, event: StreamEvent, kinds: frozenset[str]) -> Iterator[Part | LogprobsPart]:
        payload = event.json
        if payload is None:
            return iter(())
        return _choice_parts(payload, kinds, chat=self.chat, stream=True)

    def append_text(self, event: StreamEvent, key: PartKey, text: str) -> bool:
        payload = event.json
        if payload is None or key[0] != "choice":
            return False
        for position, choice in enumerate(choices_of(payload)):
            if _index(choice, position) != key[1]:
                continue
            if self.chat:
                holder = choice.get("delta")
                if not isinstance(holder, dict):
                    holder = choice["delta"] = {}
                holder["content"] = (holder.get("content") or "") + text
            else:
                choice["text"] = (choice.get("text") or "") + text
            return True
        return False

    def text_event(self, key: PartKey, text: str, before: StreamEvent | None = None) -> StreamEvent:
        if key[0] != "choice":
            raise ValueError(f"no delta for {key!r} in this stream")
        template = copy.deepcopy(self.template) if self.template else {}
        choice: dict[str, Any] = {"index": key[1], "finish_reason": None}
        if self.chat:
            choice["delta"] = {"content": text}
        else:
            choice["text"] = text
        choice["logprobs"] = None
        return StreamEvent.of({**template, "choices": [choice]})

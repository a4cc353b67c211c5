"""Response view of Chat Completions and legacy Completions: choices, whole and streamed.

Keys: a choice's visible text is ``("choice", index)`` (chat ``message.content`` /
``delta.content``, completions ``text``); its reasoning fields ``("reasoning", index, field)``
(``reasoning_content``, ``reasoning``: DeepSeek, llama.cpp, vLLM); its refusal ``("refusal",
index)``; a tool call's arguments ``("tool", index, call index)``; its logprobs ``("logprobs",
index, "content" | "refusal" | "text")``; vLLM prompt logprobs ``("prompt_logprobs", index)``.
Reasoning also comes inline in the text as ``<think>`` spans (``inline_think``). A whole message's
``annotations`` (``url_citation`` start/end indices into its content) are the anchors of its text
part; annotations in a streamed delta are not read (they pass as sent).

A choice's content ends at the chunk that carries its ``finish_reason``; text added for it there
goes into that chunk's own delta. Text flushed after the upstream stopped goes out in a chunk made
from the stream's first chunk.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from gateway.protocols.base import Usage
from gateway.protocols.openai_logprobs import LegacyLogprobs, TokenListLogprobs, prompt_logprobs
from gateway.protocols.response_parts import anchors_of
from gateway.protocols.response_view import (
    TEXT_KINDS,
    Anchor,
    LogprobsPart,
    Part,
    PartKey,
    ResponseView,
    StreamView,
)
from gateway.sse import StreamEvent

REASONING_FIELDS = ("reasoning_content", "reasoning")
# The gateway's own field for sealed chat reasoning: no chat UI renders it as text.
SEALED_FIELD = "sealed_reasoning"
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
    payload: dict[str, Any],
    kinds: frozenset[str],
    *,
    chat: bool,
    stream: bool,
    closes: list[PartKey] | None = None,
) -> list[Part | LogprobsPart]:
    """The parts of a chat/completions body (``stream`` False) or chunk (True), in order.

    ``closes``: when given, the keys of the choices this chunk finishes are appended to it."""
    out: list[Part | LogprobsPart] = []
    want_logprobs = "logprobs" in kinds
    if want_logprobs and chat and payload.get("prompt_logprobs") is not None:
        out.append(prompt_logprobs(("prompt_logprobs", 0), payload))  # type: ignore[arg-type]
    choices = payload.get("choices")
    if not choices:
        if choices is not None and choices != []:
            raise ValueError("choices is not a list of objects")
        return out
    if type(choices) is not list:
        raise ValueError("choices is not a list of objects")
    holder_name = ("delta" if stream else "message") if chat else ""
    want_text = not kinds.isdisjoint(TEXT_KINDS)
    for position, choice in enumerate(choices):
        if type(choice) is not dict:
            raise ValueError("choices is not a list of objects")
        index = choice.get("index", position)
        if type(index) is not int:
            index = position
        if closes is not None and choice.get("finish_reason") is not None:
            closes.append(_choice_key(index))
        if not want_text:
            pass  # logprobs only: the message is not read
        elif chat:
            holder = choice.get(holder_name)
            if holder is not None:
                if type(holder) is not dict:
                    raise ValueError(f"choice {holder_name} is not an object")
                if len(holder) == 1 and "text" in kinds and type(holder.get("content")) is str:
                    # The common chunk: one text delta and nothing else.
                    out.append(Part("text", _choice_key(index), holder, "content", stream, index))
                elif holder:
                    _message_parts(out, holder, index, kinds, stream)
        elif "text" in kinds and type(choice.get("text")) is str:
            out.append(Part("text", ("choice", index), choice, "text", delta=stream, choice=index))
        if want_logprobs and (choice.get("logprobs") is not None or "prompt_logprobs" in choice):
            _choice_logprobs(out, choice, index, chat, stream)
    return out


# The text keys of the first choices, built once: a stream filter keeps its key for the stream's life
# (its text state is keyed by it), and every delta would otherwise build an equal tuple.
_CHOICE_KEYS = tuple(("choice", index) for index in range(16))


def _choice_key(index: int) -> tuple[str, int]:
    # ``type() is int``: a bool index keeps its own key (it is written back as the upstream sent it).
    return _CHOICE_KEYS[index] if type(index) is int and 0 <= index < 16 else ("choice", index)


class CitedContent(Part):
    """A whole chat message's content with the ``url_citation`` annotations beside it (OpenAI's
    search models), whose start/end indices into the content follow it when it is rewritten."""

    __slots__ = ("_annotations",)

    def __init__(self, key: PartKey, holder: dict[str, Any], index: int, annotations: Any) -> None:
        super().__init__("text", key, holder, "content", delta=False, choice=index)
        self._annotations = annotations

    def anchors(self) -> list[Anchor]:
        return anchors_of(self._annotations, inside="url_citation")


def _message_parts(
    out: list[Part | LogprobsPart], holder: dict[str, Any], index: int, kinds: frozenset[str], stream: bool
) -> None:
    if "reasoning" in kinds:
        for name in REASONING_FIELDS:
            if isinstance(holder.get(name), str):

                def seal(blob: str, name: str = name) -> None:
                    holder.pop(name, None)
                    holder[SEALED_FIELD] = blob

                key = ("reasoning", index, name)
                part = Part(
                    "reasoning", key, holder, name, delta=stream, choice=index, detail="raw", seal=seal
                )
                out.append(part)
    if "text" in kinds and isinstance(holder.get("content"), str):
        annotations = None if stream else holder.get("annotations")
        if annotations:
            out.append(CitedContent(_choice_key(index), holder, index, annotations))
        else:
            out.append(Part("text", _choice_key(index), holder, "content", delta=stream, choice=index))
    if "refusal" in kinds and isinstance(holder.get("refusal"), str):
        out.append(Part("refusal", ("refusal", index), holder, "refusal", delta=stream, choice=index))
    if "tool_arguments" in kinds and isinstance(holder.get("tool_calls"), list):
        for position, call in enumerate(holder["tool_calls"]):
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                at = call.get("index", position)
                key = ("tool", index, at)
                out.append(Part("tool_arguments", key, function, "arguments", delta=stream, choice=index))


def _choice_logprobs(
    out: list[Part | LogprobsPart], choice: dict[str, Any], index: int, chat: bool, stream: bool
) -> None:
    if not chat:
        run = prompt_logprobs(("prompt_logprobs", index), choice)
        if run is not None:
            out.append(run)
    logprobs = choice.get("logprobs")
    if logprobs is None:
        return
    if not isinstance(logprobs, dict):
        raise ValueError("choices[].logprobs is not an object")
    if not chat:
        out.append(LegacyLogprobs(("logprobs", index, "text"), choice, logprobs, delta=stream))
        return
    found = False
    for name in _LOGPROB_LISTS:
        entries = logprobs.get(name)
        if entries is not None:
            found = True
            key = ("logprobs", index, name)
            out.append(TokenListLogprobs(key, entries, choice, "logprobs", None, stream, index))
    if not found:  # an empty logprobs object: nothing to rewrite, but dropping it removes it
        key = ("logprobs", index, "content")
        out.append(TokenListLogprobs(key, [], choice, "logprobs", None, delta=stream))


class ChoicesView(ResponseView):
    """A whole chat.completions or completions body."""

    __slots__ = ("chat",)

    def __init__(self, body: dict[str, Any], *, chat: bool, usage: Callable[[], Usage] | None = None) -> None:
        super().__init__(body, inline_think=True, usage=usage)
        self.chat = chat

    def parts(self, kinds: frozenset[str] = frozenset({"text"})) -> Iterator[Part | LogprobsPart]:
        return iter(_choice_parts(self.body, kinds, chat=self.chat, stream=False))


class ChoicesStreamView(StreamView):
    """A chat.completions or completions stream."""

    __slots__ = ("chat", "template")

    def __init__(self, *, chat: bool) -> None:
        super().__init__(inline_think=True)
        self.chat = chat
        self.template: dict[str, Any] | None = None  # the first chunk, for chunks the gateway makes

    def read(
        self, event: StreamEvent, kinds: frozenset[str]
    ) -> tuple[list[Part | LogprobsPart], tuple[PartKey, ...]]:
        payload = event.json
        if payload is None:
            return [], ()
        choices = payload.get("choices")
        if self.template is None and choices:
            self.template = {k: v for k, v in payload.items() if k not in ("choices", "usage")}
        if self.chat and type(choices) is list and len(choices) == 1:
            # The usual chunk: one choice whose delta is one piece of text, nothing else.
            choice = choices[0]
            holder = choice.get("delta") if type(choice) is dict else None
            if (
                type(holder) is dict
                and choice.get("finish_reason") is None
                and choice.get("logprobs") is None
                # vLLM may send prompt_logprobs beside an empty first delta: the full reading's
                and payload.get("prompt_logprobs") is None
            ):
                if "text" in kinds:
                    if len(holder) == 1 and type(holder.get("content")) is str:
                        index = choice.get("index", 0)
                        if type(index) is int:
                            return [Part("text", ("choice", index), holder, "content", True, index)], ()
                elif kinds.isdisjoint(TEXT_KINDS):
                    # A reader of logprobs only (and closes): a chunk without either has no part.
                    return [], ()
        closes: list[PartKey] = []
        parts = _choice_parts(payload, kinds, chat=self.chat, stream=True, closes=closes)
        return parts, tuple(closes) if closes else ()

    def observe(self, event: StreamEvent) -> None:
        if self.template is None:
            payload = event.json
            if payload is not None and payload.get("choices"):
                self.template = {k: v for k, v in payload.items() if k not in ("choices", "usage")}

    def closes(self, event: StreamEvent) -> tuple[PartKey, ...]:
        payload = event.json
        choices = payload.get("choices") if payload is not None else None
        if type(choices) is not list:
            return ()
        keys: tuple[PartKey, ...] = ()
        for position, choice in enumerate(choices):
            if type(choice) is dict and choice.get("finish_reason") is not None:
                keys += (("choice", _index(choice, position)),)
        return keys

    def event_parts(self, event: StreamEvent, kinds: frozenset[str]) -> list[Part | LogprobsPart]:
        payload = event.json
        if payload is None:
            return []
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

"""Chat Completions and legacy Completions: reasoning fields and inline think spans, whole and streamed.

Where reasoning is found (antidistillation.md D.4):

* ``message.reasoning_content`` / ``delta.reasoning_content`` (DeepSeek, llama.cpp, older vLLM);
* ``message.reasoning`` / ``delta.reasoning`` (vLLM >= 0.11, OpenRouter, Ollama) and OpenRouter's
  ``reasoning_details`` list (``reasoning.text``, ``reasoning.summary``, ``reasoning.encrypted``);
* inline ``<think>...</think>`` spans in ``content`` (chat) or ``text`` (completions), see think.py.

What the client gets instead, per choice: nothing (drop, summary; summary keeps OpenRouter's
``reasoning.summary`` items), the placeholder (redact) or one sealed blob (seal) in each string
field the upstream used, set once when the choice finishes (the blob covers the whole
message's reasoning, as the non-streamed message has it). Inline spans are replaced where they
stand: ``<think>placeholder</think>`` or ``<think>blob</think>``. Logprob entries of withheld
tokens are removed (see inline.keep_visible_tokens); for legacy Completions, whose logprobs are
parallel arrays, a choice whose text was changed loses its logprobs.

Hold-back: only the think splitter's (a partial tag, leading whitespace); reasoning-field text is
kept in memory (not forwarded) in redact and seal modes to count and seal it.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from gateway.plugins import StreamEvent, StreamFilter
from policies.reasoning.inline import Interval, ThinkRewriter, keep_visible_tokens
from policies.reasoning.think import opens_implicitly
from policies.reasoning.withhold import Withholder

STRING_FIELDS = ("reasoning_content", "reasoning")
DETAILS_FIELD = "reasoning_details"
# Seal mode's own field for the chat blob (`seal.chat: field`): no chat UI renders it as text.
SEALED_FIELD = "sealed_reasoning"
_BASE_KEYS = ("id", "object", "created", "model", "system_fingerprint")


@dataclass(frozen=True, slots=True)
class ThinkSettings:
    """Inline-tag parsing for one exchange (None when ``think_tags`` is empty)."""

    tags: tuple[str, ...]
    assume_open: bool


def think_settings(
    tags: list[str], assume_open: bool | str, models: list[str], model: str | None
) -> ThinkSettings | None:
    if not tags:
        return None
    if assume_open == "auto":
        name = (model or "").lower()
        assume_open = any(fnmatch.fnmatchcase(name, pattern.lower()) for pattern in models)
    return ThinkSettings(tuple(tags), bool(assume_open))


@dataclass(slots=True)
class _Choice:
    """What one choice has shown of its reasoning so far."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    details: list[Any] = field(default_factory=list)
    field_chars: int = 0
    detail_chars: int = 0
    seen: bool = False  # a reasoning field with content arrived (the upstream parses reasoning)
    withheld: bool = False  # some of it is not the client's to see
    rewriter: ThinkRewriter | None = None
    finished: bool = False


class ChatRewriter:
    """The per-exchange rewriting of chat (``text_key="content"``) or completions (``"text"``) choices."""

    def __init__(self, withholder: Withholder, think: ThinkSettings | None, *, chat: bool) -> None:
        self.withholder = withholder
        self.think = think
        self.chat = chat
        self.choices: dict[int, _Choice] = {}

    # -- one choice (a whole message when final and not streamed, else one delta) ---------------
    def process(self, choice: dict[str, Any], holder: dict[str, Any], *, final: bool) -> bool:
        """Rewrite ``holder`` (message, delta, or the completions choice) in place; False: now empty."""
        index = choice.get("index", 0)
        state = self.choices.get(index)
        if state is None:
            state = self.choices[index] = _Choice()
        altered = False
        if self.chat and ("reasoning_content" in holder or "reasoning" in holder or DETAILS_FIELD in holder):
            altered = self._take_fields(holder, state)
        text_key = "content" if self.chat else "text"
        text = holder.get(text_key)
        if text is not None and not isinstance(text, str):
            if self.chat and isinstance(text, list):
                raise ValueError("chat content parts in a response are not supported by the reasoning policy")
            raise ValueError(f"choice {text_key} is not a string")
        out = text
        visible: list[Interval] | None = None  # None: all of text passes unchanged
        if text and self.think is not None:
            if state.finished:
                raise ValueError(f"choice {index} has more text after it finished")
            if state.rewriter is None:
                state.rewriter = self._rewriter(state, text if final else None)
            out, visible = state.rewriter.feed(text)
        if (final or choice.get("finish_reason") is not None) and not state.finished:
            state.finished = True
            if state.rewriter is not None:
                tail, tail_visible = state.rewriter.close(state.rewriter.fed - len(text or ""))
                if tail:
                    out = (out or "") + tail
                    visible = ([(0, len(text))] if visible is None and text else visible or []) + tail_visible
                self.withholder.ledger.stray_closes += state.rewriter.splitter.stray_closes
            holder.update(self._replacement(state))
        if visible is not None and (out != text or visible != [(0, len(text or ""))]):
            altered = True
        if altered:
            self._filter_logprobs(
                choice, text or "", [(0, len(text))] if visible is None and text else visible or []
            )
        if not self.chat:
            if text is not None or out:
                holder["text"] = out or ""
            return bool(out) or text == "" or choice.get("finish_reason") is not None
        if out or text == "":
            holder["content"] = out
        elif text is not None:
            holder.pop("content", None)  # everything in it was withheld
        return bool(holder) or choice.get("finish_reason") is not None or bool(_logprob_entries(choice))

    def _rewriter(self, state: _Choice, whole: str | None) -> ThinkRewriter:
        """``whole``: the choice's complete text when it is in hand at once (not streamed)."""
        assert self.think is not None
        # An upstream that parses reasoning into a field does not leave an open think block in content.
        open_at_start = self.think.assume_open and not state.seen
        if whole is not None and opens_implicitly(whole, self.think.tags):
            # A complete text is judged whole, whatever the model's name or the reasoning fields:
            # a closing tag before any opening one ends a pre-filled span.
            open_at_start = True
        return ThinkRewriter(self.think.tags, open_at_start, self.withholder)

    def _take_fields(self, holder: dict[str, Any], state: _Choice) -> bool:
        found = False
        field_chars = 0
        for name in STRING_FIELDS:
            if name not in holder:
                continue
            found = True
            value = holder.pop(name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise ValueError(f"'{name}' is not a string")
            if value:
                state.seen = state.withheld = True
                state.fields.setdefault(name, []).append(value)
                field_chars = field_chars or len(value)  # the same text may come under both names
        if DETAILS_FIELD in holder:
            found = True
            value = holder.pop(DETAILS_FIELD)
            if value is not None:
                if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
                    raise ValueError(f"'{DETAILS_FIELD}' is not a list of objects")
                kept, detail_chars = self._split_details(value)
                if value:
                    state.seen = True
                if len(kept) < len(value):
                    state.withheld = True
                state.details.extend(value)
                if kept:
                    holder[DETAILS_FIELD] = kept
                state.detail_chars += detail_chars
        state.field_chars += field_chars
        return found

    def _split_details(self, items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
        """(items the client keeps, characters of reasoning text withheld)."""
        mode = self.withholder.mode
        kept: list[dict[str, Any]] = []
        chars = 0
        for item in items:
            kind = item.get("type")
            if kind == "reasoning.summary" and mode == "summary":
                kept.append(item)
            elif kind == "reasoning.encrypted" and mode != "seal" and self.withholder.keep_provider_encrypted:
                kept.append(item)
                self.withholder.ledger.provider_kept += 1
            else:
                for key in ("text", "summary"):
                    if isinstance(item.get(key), str):
                        chars += len(item[key])
        return kept, chars

    def _replacement(self, state: _Choice) -> dict[str, Any]:
        if not state.withheld:
            return {}
        # reasoning_details repeat the string fields' text (OpenRouter): count them only alone.
        chars = state.field_chars or state.detail_chars
        self.withholder.ledger.withheld("chat", chars)
        names = [name for name in state.fields] or ["reasoning"]
        mode = self.withholder.mode
        if mode == "redact":
            text = self.withholder.placeholder(chars)
            return dict.fromkeys(names, text)
        if mode == "seal":
            delivery = self.withholder.config.seal.chat
            if delivery == "omit":
                return {}
            payload = {
                "fields": {name: "".join(parts) for name, parts in state.fields.items()},
                "details": state.details,
            }
            blob = self.withholder.seal("c", payload)
            return {SEALED_FIELD: blob} if delivery == "field" else dict.fromkeys(names, blob)
        return {}

    def _filter_logprobs(self, choice: dict[str, Any], text: str, visible: list[Interval]) -> None:
        logprobs = choice.get("logprobs")
        if not isinstance(logprobs, dict):
            return
        if not self.chat:
            choice["logprobs"] = None  # legacy parallel arrays: withheld whole
            return
        entries = logprobs.get("content")
        if isinstance(entries, list) and entries:
            logprobs["content"] = keep_visible_tokens(entries, text, visible)

    # -- whole bodies and end of stream --------------------------------------------------------
    def rewrite_body(self, body: dict[str, Any]) -> None:
        for choice in _choices(body):
            holder = choice.get("message") if self.chat else choice
            if holder is None:
                continue
            if not isinstance(holder, dict):
                raise ValueError("choice message is not an object")
            self.process(choice, holder, final=True)

    def unfinished(self) -> list[dict[str, Any]]:
        """Choices the stream left open: their flushed text and replacement, as choice objects."""
        out = []
        for index, state in sorted(self.choices.items()):
            if state.finished:
                continue
            choice: dict[str, Any] = {"index": index}
            holder: dict[str, Any] = choice
            if self.chat:
                holder = choice["delta"] = {}
            else:
                choice["text"] = ""
            self.process(choice, holder, final=True)
            choice.setdefault("logprobs", None)
            choice.setdefault("finish_reason", None)
            if holder.get("content" if self.chat else "text") or (self.chat and holder):
                out.append(choice)
        return out


def _choices(body: dict[str, Any]) -> list[dict[str, Any]]:
    choices = body.get("choices")
    if choices is None:
        return []
    if not isinstance(choices, list):
        raise ValueError("'choices' is not a list of objects")
    for choice in choices:
        if not isinstance(choice, dict):
            raise ValueError("'choices' is not a list of objects")
    return choices


def _logprob_entries(choice: dict[str, Any]) -> list[Any]:
    logprobs = choice.get("logprobs")
    if isinstance(logprobs, dict):
        entries = logprobs.get("content")
        return entries if isinstance(entries, list) else []
    return []


class ChatStreamFilter(StreamFilter):
    """Chat / Completions chunks through a :class:`ChatRewriter`; chunks left empty are dropped."""

    __slots__ = ("_base", "_rewriter")

    def __init__(self, rewriter: ChatRewriter) -> None:
        self._rewriter = rewriter
        self._base: dict[str, Any] = {}

    def on_event(self, event: StreamEvent) -> list[StreamEvent]:
        payload = event.json
        if payload is None:
            if event.data.strip() == "[DONE]":
                return [event]
            raise ValueError("a chat stream event that is not JSON")
        if "choices" not in payload:
            return [event]  # an error object, or a future event with no choices
        choices = _choices(payload)
        if not choices:
            return [event]
        if not self._base:
            self._base = {key: payload[key] for key in _BASE_KEYS if key in payload}
        chat = self._rewriter.chat
        kept = []
        for choice in choices:
            if chat:
                if "message" in choice:
                    raise ValueError("a streamed chat choice carries a whole message; not supported")
                delta = choice.get("delta")
                if delta is None:
                    delta = choice["delta"] = {}
                elif not isinstance(delta, dict):
                    raise ValueError("choice delta is not an object")
                holder = delta
            else:
                holder = choice
            if self._rewriter.process(choice, holder, final=False):
                kept.append(choice)
        if len(kept) == len(choices):
            return [event]
        if not kept and not payload.get("usage"):
            return []
        payload["choices"] = kept
        return [event]

    def on_end(self) -> list[StreamEvent]:
        choices = self._rewriter.unfinished()
        if not choices:
            return []
        return [StreamEvent.of({**self._base, "choices": choices})]

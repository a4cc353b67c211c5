"""Chat Completions and legacy Completions: reasoning fields and inline spans, whole and streamed.

The adapter's reasoning capability for these operations (see :mod:`gateway.protocols.reasoning`).
Where reasoning is found (antidistillation.md D.4):

* ``message.reasoning_content`` / ``delta.reasoning_content`` (DeepSeek, llama.cpp, older vLLM);
* ``message.reasoning`` / ``delta.reasoning`` (vLLM >= 0.11, OpenRouter, Ollama) and OpenRouter's
  ``reasoning_details`` list (``reasoning.text``, ``reasoning.summary``, ``reasoning.encrypted``);
* inline ``<think>...</think>`` spans in ``content`` (chat) or ``text`` (completions), which the
  treatment's :class:`~gateway.protocols.reasoning.InlineText` parses.

What the client gets instead, per choice: nothing (drop, summary; summary keeps OpenRouter's
``reasoning.summary`` items), the placeholder (redact) or one sealed blob (seal) in each string
field the upstream used (or in the gateway's own ``sealed_reasoning`` field, per the treatment's
``seal_delivery``), set once when the choice finishes (the blob covers the whole message's
reasoning, as the non-streamed message has it). Inline spans are replaced where they stand, by
the treatment. Logprob entries of withheld tokens are removed (:func:`keep_visible_tokens`); for
legacy Completions, whose logprobs are parallel arrays, a choice whose text was changed loses
its logprobs.

Hold-back: only the inline parser's (a partial tag, leading whitespace); reasoning-field text is
kept in memory (not forwarded) in redact and seal modes to count and seal it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.protocols.openai_response import REASONING_FIELDS
from gateway.protocols.openai_response import SEALED_FIELD as SEALED_REASONING_FIELD
from gateway.protocols.openai_view import REASONING_DETAILS_FIELD
from gateway.protocols.reasoning import InlineText, Interval, ReasoningTreatment
from gateway.sse import StreamEvent

_BASE_KEYS = ("id", "object", "created", "model", "system_fingerprint")


@dataclass(slots=True)
class _Choice:
    """What one choice has shown of its reasoning so far."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    details: list[Any] = field(default_factory=list)
    field_chars: int = 0
    detail_chars: int = 0
    seen: bool = False  # a reasoning field with content arrived (the upstream parses reasoning)
    withheld: bool = False  # some of it is not the client's to see
    rewriter: InlineText | None = None
    finished: bool = False


class ChatReasoning:
    """The per-exchange rewriting of chat (``text_key="content"``) or completions (``"text"``) choices."""

    __slots__ = ("_inline", "chat", "choices", "treatment")  # one per held stream

    def __init__(self, treatment: ReasoningTreatment, *, chat: bool) -> None:
        self.treatment = treatment
        self.chat = chat
        self.choices: dict[int, _Choice] = {}
        self._inline = treatment.parses_inline  # read once: it is asked for every chunk

    def stream(self) -> ChatReasoningStream:
        return ChatReasoningStream(self)

    # -- one choice (a whole message when final and not streamed, else one delta) ---------------
    def process(self, choice: dict[str, Any], holder: dict[str, Any], *, final: bool) -> bool:
        """Rewrite ``holder`` (message, delta, or the completions choice) in place; False: now empty."""
        index = choice.get("index", 0)
        state = self.choices.get(index)
        if state is None:
            state = self.choices[index] = _Choice()
        altered = False
        if self.chat and (
            "reasoning_content" in holder or "reasoning" in holder or REASONING_DETAILS_FIELD in holder
        ):
            altered = self._take_fields(holder, state)
        text_key = "content" if self.chat else "text"
        text = holder.get(text_key)
        if text is not None and not isinstance(text, str):
            if self.chat and isinstance(text, list):
                raise ValueError("chat content parts in a response are not supported by the reasoning policy")
            raise ValueError(f"choice {text_key} is not a string")
        out = text
        visible: list[Interval] | None = None  # None: all of text passes unchanged
        if text and self._inline:
            if state.finished:
                raise ValueError(f"choice {index} has more text after it finished")
            if state.rewriter is None:
                # An upstream that parses reasoning into a field does not leave an open span in content.
                state.rewriter = self.treatment.inline(text if final else None, state.seen)
            out, visible = state.rewriter.feed(text)
        return self._settle(choice, holder, state, text, out, visible, altered, final)

    def process_delta(self, choice: dict[str, Any], holder: dict[str, Any], text: str) -> bool:
        """:meth:`process` of the usual chunk (a chat delta of one non-empty text, no finish_reason),
        with the same result: text the inline parser passes unchanged leaves ``holder`` untouched."""
        state = self.choices.get(choice.get("index", 0))
        if state is None or (self._inline and state.rewriter is None):
            return self.process(choice, holder, final=False)  # the choice's first text
        if not self._inline:
            return True
        if state.finished:
            raise ValueError(f"choice {choice.get('index', 0)} has more text after it finished")
        out, visible = state.rewriter.feed(text)  # type: ignore[union-attr]
        if visible is None:
            return True
        return self._settle(choice, holder, state, text, out, visible, False, False)

    def _settle(
        self,
        choice: dict[str, Any],
        holder: dict[str, Any],
        state: _Choice,
        text: Any,
        out: Any,
        visible: list[Interval] | None,
        altered: bool,
        final: bool,
    ) -> bool:
        """The rest of :meth:`process` once the text went through the inline parser."""
        if (final or choice.get("finish_reason") is not None) and not state.finished:
            state.finished = True
            if state.rewriter is not None:
                tail, tail_visible = state.rewriter.close(state.rewriter.fed - len(text or ""))
                if tail:
                    out = (out or "") + tail
                    visible = ([(0, len(text))] if visible is None and text else visible or []) + tail_visible
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

    def _take_fields(self, holder: dict[str, Any], state: _Choice) -> bool:
        found = False
        field_chars = 0
        for name in REASONING_FIELDS:
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
        if REASONING_DETAILS_FIELD in holder:
            found = True
            value = holder.pop(REASONING_DETAILS_FIELD)
            if value is not None:
                if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
                    raise ValueError(f"'{REASONING_DETAILS_FIELD}' is not a list of objects")
                kept, detail_chars = self._split_details(value)
                if value:
                    state.seen = True
                if len(kept) < len(value):
                    state.withheld = True
                state.details.extend(value)
                if kept:
                    holder[REASONING_DETAILS_FIELD] = kept
                state.detail_chars += detail_chars
        state.field_chars += field_chars
        return found

    def _split_details(self, items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
        """(items the client keeps, characters of reasoning text withheld)."""
        treatment = self.treatment
        mode = treatment.mode
        kept: list[dict[str, Any]] = []
        chars = 0
        for item in items:
            kind = item.get("type")
            if kind == "reasoning.summary" and mode == "summary":
                kept.append(item)
            elif kind == "reasoning.encrypted" and mode != "seal" and treatment.keep_provider_encrypted:
                kept.append(item)
                treatment.provider_kept()
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
        treatment = self.treatment
        treatment.withheld("chat", chars)
        names = [name for name in state.fields] or ["reasoning"]
        mode = treatment.mode
        if mode == "redact":
            text = treatment.placeholder(chars)
            return dict.fromkeys(names, text)
        if mode == "seal":
            delivery = treatment.seal_delivery
            if delivery == "omit":
                return {}
            payload = {
                "fields": {name: "".join(parts) for name, parts in state.fields.items()},
                "details": state.details,
            }
            blob = treatment.seal("fields", payload)
            return {SEALED_REASONING_FIELD: blob} if delivery == "field" else dict.fromkeys(names, blob)
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


class ChatReasoningStream:
    """Chat / Completions chunks through a :class:`ChatReasoning`; chunks left empty are dropped."""

    __slots__ = ("_base", "_rewriter")

    def __init__(self, rewriter: ChatReasoning) -> None:
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
        if chat and len(choices) == 1:
            # The usual chunk: one choice, a delta of one piece of text, no finish_reason.
            choice = choices[0]
            holder = choice.get("delta")
            if (
                type(holder) is dict
                and len(holder) == 1
                and choice.get("finish_reason") is None
                and "message" not in choice
            ):
                text = holder.get("content")
                if type(text) is str and text:
                    if self._rewriter.process_delta(choice, holder, text):
                        return [event]
                    if not payload.get("usage"):
                        return []
                    payload["choices"] = []
                    return [event]
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


def keep_visible_tokens(entries: list[Any], text: str, visible: Sequence[Interval]) -> list[Any]:
    """The logprob entries (chat ``{"token": ...}``) of tokens that lie wholly in ``visible``.

    ``entries`` describe the text of this delta or message; when they describe
    more (reasoning tokens first, as servers with a reasoning parser do), they
    are aligned on the end of ``text``. Entries that cannot be aligned are all
    withheld: a logprob entry names its token, and a reasoning token must not
    reach the client this way.
    """
    tokens: list[str] = []
    for entry in entries:
        token = entry.get("token") if isinstance(entry, dict) else None
        if not isinstance(token, str):
            return []
        tokens.append(token)
    joined = "".join(tokens)
    if not joined.endswith(text):
        return []
    position = len(text) - len(joined)
    kept: list[Any] = []
    for entry, token in zip(entries, tokens, strict=True):
        end = position + len(token)
        if position >= 0 and token and any(lo <= position and end <= hi for lo, hi in visible):
            kept.append(entry)
        position = end
    return kept

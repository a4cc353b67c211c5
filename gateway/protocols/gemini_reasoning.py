"""Gemini ``generateContent``: thought parts and thought signatures, whole and streamed.

The adapter's reasoning capability for Gemini's two operations (see :mod:`gateway.protocols.reasoning`).

A candidate's thoughts are its parts with ``"thought": true`` (Gemini returns their text only with
``thinkingConfig.includeThoughts``). A *thought* here is a run of consecutive thought parts: in a
stream its text arrives over several chunks; a part carrying a ``thoughtSignature`` ends it (the
signature is Google's opaque continuity data for what was thought, sent back with the next turn).
A thought becomes, for the client:

* drop, summary: removed. Gemini's thought text is its "thought summary", but it is written by a
  model as a step-by-step trace, so summary mode treats it as raw reasoning (as Anthropic's
  summarised thinking); with ``keep_provider_encrypted`` its signature stays, on an empty text part
  (the shape Gemini itself streams a lone signature in);
* redact: one thought part with the placeholder (and the signature, when kept);
* seal: one thought part ``{"text": "", "thought": true, "thoughtSignature": <blob, base64-wrapped>}``
  (the view's decision, :func:`~gateway.protocols.gemini_response.seal_signature`); the blob holds the
  original thought part (text and signature), which the request view puts back when the client sends
  the turn again (:meth:`~gateway.protocols.gemini_view.GenerateContentView.restore_sealed_reasoning`).

A ``thoughtSignature`` on any other part (an answer's text, a ``functionCall``) is opaque reasoning:
kept in drop, redact and summary modes while ``keep_provider_encrypted`` (removed otherwise), and
sealed in seal mode like the rest (an upstream whose signatures are not really encrypted leaks
nothing).

Streaming: thought text is held (kept in memory, never forwarded) until the thought ends: at its
signature, at the candidate's first other part, at its ``finishReason``, or at the end of the stream;
the replacement goes where the thought ended. Chunks left with no part are not sent (the adapter's
``GeminiChunks`` pass). A streamed response merged part by part is the whole response rewritten.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from gateway.protocols.gemini_response import candidates_of, parts_of, seal_signature
from gateway.protocols.reasoning import ReasoningTreatment
from gateway.sse import StreamEvent

# Google's JSON reader takes the proto's snake_case name too.
SIGNATURE_KEYS = ("thoughtSignature", "thought_signature")
_THOUGHT_KEYS = frozenset({"text", "thought", *SIGNATURE_KEYS})


def signature_key(part: dict[str, Any]) -> str | None:
    """The key a part's thought signature is under, or None."""
    for key in SIGNATURE_KEYS:
        if key in part:
            return key
    return None


def is_thought(part: dict[str, Any]) -> bool:
    return part.get("thought") is True


@dataclass(slots=True)
class _Thought:
    """A thought being read: its text so far, its signature, the first part's other fields."""

    extra: dict[str, Any]
    text: list[str] = field(default_factory=list)
    signature: str | None = None

    def original(self) -> dict[str, Any]:
        """The thought as one part (what a whole body carries, and what a seal holds)."""
        part = {**self.extra, "text": "".join(self.text), "thought": True}
        if self.signature is not None:
            part["thoughtSignature"] = self.signature
        return part


@dataclass(slots=True)
class _Candidate:
    """One candidate's state across a stream's chunks."""

    thought: _Thought | None = None


def _index(candidate: dict[str, Any], position: int) -> int:
    index = candidate.get("index", position)
    return index if isinstance(index, int) and not isinstance(index, bool) else position


class GeminiReasoning:
    """Rewrites thoughts and thought signatures for one exchange; streamed and whole bodies agree."""

    __slots__ = ("treatment",)

    def __init__(self, treatment: ReasoningTreatment) -> None:
        self.treatment = treatment

    def stream(self) -> GeminiReasoningStream:
        return GeminiReasoningStream(self)

    def rewrite_body(self, body: dict[str, Any]) -> None:
        for candidate in candidates_of(body):
            self.rewrite_candidate(candidate, _Candidate(), final=True)

    def rewrite_candidate(self, candidate: dict[str, Any], state: _Candidate, *, final: bool) -> None:
        """Rewrite ``candidate``'s parts in place; ``final``: its content ends here (a thought left
        open is closed); otherwise an open thought stays in ``state`` for the next chunk."""
        parts = parts_of(candidate)
        if state.thought is None and parts is not None and not any(map(_reasoning_part, parts)):
            return  # the common chunk: answer text only, nothing to rewrite (no list rebuilt)
        out = [] if parts is None else self._parts(parts, state)
        if final and state.thought is not None:
            out.extend(self._close(state))
        if parts is not None or out:
            content = candidate.setdefault("content", {"role": "model"})
            content["parts"] = out

    def _parts(self, parts: list[Any], state: _Candidate) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for part in parts:
            if not isinstance(part, dict):
                raise ValueError("a content part is not an object")
            if is_thought(part):
                text = part.get("text", "")
                if not isinstance(text, str):
                    raise ValueError("a thought part's text is not a string")
                thought = state.thought
                if thought is None:
                    thought = state.thought = _Thought(
                        {k: v for k, v in part.items() if k not in _THOUGHT_KEYS}
                    )
                thought.text.append(text)
                key = signature_key(part)
                if key is not None:
                    thought.signature = _signature(part[key])
                    out.extend(self._close(state))  # a signature ends its thought
                continue
            if state.thought is not None:
                out.extend(self._close(state))
            out.append(self._answer_part(part))
        return out

    def _close(self, state: _Candidate) -> list[dict[str, Any]]:
        """The parts that stand for the thought ``state`` holds (which it no longer does)."""
        thought, state.thought = state.thought, None
        assert thought is not None
        treatment = self.treatment
        original = thought.original()
        chars = len(original["text"])
        treatment.withheld("gemini", chars)
        if treatment.mode == "seal":
            sealed = seal_signature(treatment.seal("block", original))
            return [{"text": "", "thought": True, "thoughtSignature": sealed}]
        kept = thought.signature is not None and treatment.keep_provider_encrypted
        if kept:
            treatment.provider_kept()
        if treatment.mode == "redact" and chars:
            part: dict[str, Any] = {"text": treatment.placeholder(chars), "thought": True}
            if kept:
                part["thoughtSignature"] = thought.signature
            return [part]
        return [{"text": "", "thoughtSignature": thought.signature}] if kept else []

    def _answer_part(self, part: dict[str, Any]) -> dict[str, Any]:
        """A part that is not a thought: its signature (if any) is opaque reasoning."""
        key = signature_key(part)
        if key is None:
            return part
        signature = _signature(part[key])
        treatment = self.treatment
        treatment.withheld("gemini", 0)
        if treatment.mode == "seal":
            part[key] = seal_signature(treatment.seal("block", signature))
        elif treatment.keep_provider_encrypted:
            treatment.provider_kept()
        else:
            del part[key]
        return part


def _reasoning_part(part: Any) -> bool:
    """Whether a part may need rewriting (a thought or a signature; a part that is no object too,
    so that ``_parts`` refuses it)."""
    return (
        type(part) is not dict
        or "thought" in part
        or "thoughtSignature" in part
        or "thought_signature" in part
    )


def _signature(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a thoughtSignature is not a string")
    return value


class GeminiReasoningStream:
    """``streamGenerateContent`` chunks; see the module docstring."""

    __slots__ = ("_candidates", "_rewriter", "_template")

    def __init__(self, rewriter: GeminiReasoning) -> None:
        self._rewriter = rewriter
        self._candidates: dict[int, _Candidate] = {}
        self._template: dict[str, Any] | None = None  # the first chunk's metadata, for the chunk we make

    def on_event(self, event: StreamEvent) -> list[StreamEvent]:
        payload = event.json
        if payload is None:
            raise ValueError("a Gemini stream event that is not JSON")
        if self._template is None:
            self._template = {k: v for k, v in payload.items() if k in ("modelVersion", "responseId")}
        states = self._candidates
        rewrite = self._rewriter.rewrite_candidate
        for position, candidate in enumerate(candidates_of(payload)):
            index = _index(candidate, position)
            state = states.get(index)
            if state is None:
                state = states[index] = _Candidate()
            rewrite(candidate, state, final=candidate.get("finishReason") is not None)
        return [event]

    def on_end(self) -> list[StreamEvent]:
        """Thoughts the stream ended in (no answer, no finish): their replacements, in one chunk."""
        candidates = []
        for index, state in sorted(self._candidates.items()):
            if state.thought is None:
                continue
            candidate: dict[str, Any] = {"index": index}
            self._rewriter.rewrite_candidate(candidate, state, final=True)
            if candidate.get("content", {}).get("parts"):
                candidate["content"]["role"] = "model"
                candidates.append(candidate)
        if not candidates:
            return []
        return [StreamEvent.of({"candidates": candidates, **copy.deepcopy(self._template or {})})]

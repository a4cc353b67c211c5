"""Gemini's ``streamGenerateContent?alt=sse`` view, and the pass that drops chunks left empty.

The keys and the stream's rules (when a candidate's thoughts and content end, where added text goes)
are described in :mod:`gateway.protocols.gemini_response`, which re-exports both classes.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from gateway.protocols.gemini_parts import (
    candidate_index,
    candidate_parts,
    candidates_of,
    is_text,
    is_thought,
    parts_of,
)
from gateway.protocols.response_view import LogprobsPart, Part, PartKey, StreamNumbering, StreamView
from gateway.sse import StreamEvent


def _tool_counts(candidate: dict[str, Any]) -> tuple[int, int]:
    parts = parts_of(candidate) or ()
    calls = sum(1 for p in parts if isinstance(p, dict) and isinstance(p.get("functionCall"), dict))
    codes = sum(1 for p in parts if isinstance(p, dict) and isinstance(p.get("executableCode"), dict))
    return calls, codes


class GenerateContentStreamView(StreamView):
    """A ``streamGenerateContent?alt=sse`` stream: chunks of candidates' parts, ending at EOF.

    What an event closes and where its tool calls are numbered from depend on the events before it:
    :meth:`observe` (called once per event, in order) works both out; :meth:`closes` and
    :meth:`event_parts` read them.
    """

    __slots__ = ("_closed", "_counts", "_observed", "_starts", "_thinking", "template")

    def __init__(self) -> None:
        super().__init__()
        self.template: dict[str, Any] | None = None  # the first chunk's metadata, for chunks we make
        self._thinking: set[int] = set()  # candidates whose thoughts have not ended yet
        self._counts: dict[int, tuple[int, int]] = {}  # function calls and code parts seen so far
        self._observed: StreamEvent | None = None  # the last event observed, and what it
        self._closed: tuple[PartKey, ...] = ()  # closes
        self._starts: dict[int, tuple[int, int]] = {}  # numbers its tool parts from

    def observe(self, event: StreamEvent) -> None:
        payload = event.json
        self._observed, self._closed, self._starts = event, (), {}
        if payload is None:
            return
        if self.template is None:
            self.template = {k: v for k, v in payload.items() if k in ("modelVersion", "responseId")}
        closed: list[PartKey] = []
        for position, candidate in enumerate(candidates_of(payload)):
            index = candidate_index(candidate, position)
            parts = parts_of(candidate) or []
            before = self._counts.get(index, (0, 0))
            self._starts[index] = before
            calls, codes = _tool_counts(candidate)
            self._counts[index] = (before[0] + calls, before[1] + codes)
            if any(is_thought(p) for p in parts):
                self._thinking.add(index)
            answered = any(isinstance(p, dict) and not is_thought(p) for p in parts)
            finished = candidate.get("finishReason") is not None
            if index in self._thinking and (answered or finished):
                self._thinking.discard(index)
                closed.append(("thought", index))
            if finished:
                closed.append(("candidate", index))
        self._closed = tuple(closed)

    def closes(self, event: StreamEvent) -> tuple[PartKey, ...]:
        if event is self._observed:
            return self._closed
        payload = event.json  # an event read out of order: what its own finish reasons close
        if payload is None:
            return ()
        return tuple(
            key
            for position, candidate in enumerate(candidates_of(payload))
            if candidate.get("finishReason") is not None
            for key in (
                ("thought", candidate_index(candidate, position)),
                ("candidate", candidate_index(candidate, position)),
            )
        )

    def event_parts(self, event: StreamEvent, kinds: frozenset[str]) -> Iterator[Part | LogprobsPart]:
        payload = event.json
        if payload is None:
            return
        starts = self._starts if event is self._observed else {}
        for position, candidate in enumerate(candidates_of(payload)):
            start = starts.get(candidate_index(candidate, position), (0, 0))
            yield from candidate_parts(candidate, position, kinds, stream=True, counts=start)

    def append_text(self, event: StreamEvent, key: PartKey, text: str) -> bool:
        payload = event.json
        if payload is None or key[0] not in ("candidate", "thought"):
            return False
        thought = key[0] == "thought"
        for position, candidate in enumerate(candidates_of(payload)):
            if candidate_index(candidate, position) != key[1]:
                continue
            content = candidate.setdefault("content", {"role": "model"})
            parts = content.setdefault("parts", [])
            same = [
                i
                for i, p in enumerate(parts)
                if (is_thought(p) if thought else is_text(p) and not is_thought(p))
            ]
            if same:
                parts[same[-1]]["text"] += text
                return True
            # Held text came before this chunk's other content: it goes in front of its answer parts.
            at = next((i for i, p in enumerate(parts) if not is_thought(p)), len(parts)) if not thought else 0
            parts.insert(at, {"text": text, "thought": True} if thought else {"text": text})
            return True
        return False

    def text_event(self, key: PartKey, text: str, before: StreamEvent | None = None) -> StreamEvent:
        if key[0] not in ("candidate", "thought"):
            raise ValueError(f"no text chunk for {key!r} in this stream")
        part: dict[str, Any] = {"text": text, "thought": True} if key[0] == "thought" else {"text": text}
        candidate = {"content": {"parts": [part], "role": "model"}, "index": key[1]}
        return StreamEvent.of({"candidates": [candidate], **copy.deepcopy(self.template or {})})


class GeminiChunks(StreamNumbering):
    """After the policies: a chunk whose candidates were left with no part and no finish is not sent
    (a dropped thought would otherwise reach the client as an empty chunk); nothing is renumbered
    (Gemini chunks carry no sequence numbers, and candidate indexes never change)."""

    __slots__ = ()

    def apply(self, events: list[StreamEvent]) -> list[StreamEvent]:
        return [event for event in events if not _emptied(event)]


_CHUNK_KEYS = frozenset({"candidates", "usageMetadata", "modelVersion", "responseId"})
_CANDIDATE_KEYS = frozenset({"content", "index"})


def _emptied(event: StreamEvent) -> bool:
    payload = event.json
    if payload is None:
        return False
    candidates = payload.get("candidates")
    if not isinstance(candidates, list) or not candidates:
        return False
    # The common chunk has parts: answered before any set is built (this runs on every event).
    for candidate in candidates:
        if not isinstance(candidate, dict):
            return False
        content = candidate.get("content")
        if not isinstance(content, dict) or content.get("parts"):
            return False
        if not _CANDIDATE_KEYS.issuperset(candidate):
            return False
    return _CHUNK_KEYS.issuperset(payload)

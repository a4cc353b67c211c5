"""Response view of Gemini's ``generateContent``: candidates' parts, whole and streamed.

A body (and each stream chunk) is a ``GenerateContentResponse``: ``candidates[]`` with ``index``,
``content: {role: "model", parts[]}``, ``finishReason``, ``avgLogprobs`` and ``logprobsResult``
(``chosenCandidates[]`` and ``topCandidates[].candidates[]`` of ``{token, tokenId, logProbability}``,
``logProbabilitySum``). A stream chunk's parts continue the candidate's content; there is no
terminal event.

Keys: candidate ``i``'s visible text (its ``text`` parts) is ``("candidate", i)``; its thoughts
(``text`` parts with ``thought: true``) ``("thought", i)``, reasoning ``raw``; a ``thoughtSignature``
on any part is reasoning ``encrypted`` (opaque, Google's: the model needs it back in later turns),
``("signature", i, n)``; the ``args`` of its n-th ``functionCall`` and the ``code`` of an
``executableCode`` part are tool arguments, ``("tool", i, n)`` and ``("code", i, n)``; its
``logprobsResult`` and ``avgLogprobs`` (a per-candidate average logprob, returned unasked by some
models) are logprobs, ``("logprobs", i)`` and ``("avg_logprobs", i)``. Gemini has no refusal text
(a blocked answer is an empty candidate with ``finishReason: SAFETY``). Not read: grounding and
citation metadata (offsets into the text, ``annotation``) and generated media.

Streams: a candidate's thoughts end at its first chunk with an answer part, its content at the chunk
with its ``finishReason``; text added for a key goes into that chunk's parts. Chunks left with no
part and no finish by the policies are not forwarded (:class:`GeminiChunks`).

Sealing (the reasoning policy's ``seal`` mode): a thought part keeps ``thought: true``, loses its
text, and carries the sealed blob in its ``thoughtSignature``, wrapped in base64 (the SDK reads that
field as base64 bytes and sends it back unchanged in the history); :func:`sealed_blob` unwraps it.
"""

from __future__ import annotations

import base64
import binascii
import copy
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from gateway.protocols.response_view import (
    LogprobsPart,
    Part,
    PartKey,
    ResponseView,
    StreamNumbering,
    StreamView,
)
from gateway.sse import StreamEvent

Value = Callable[[Any, int, Any], Any]
_SEAL_MARK = b"distillguard-sealed:"
_URLSAFE = str.maketrans("-_", "+/")


def seal_signature(blob: str) -> str:
    """The ``thoughtSignature`` value that carries a sealed blob (base64, as the field is)."""
    return base64.b64encode(_SEAL_MARK + blob.encode("ascii")).decode("ascii")


def sealed_blob(signature: Any) -> str | None:
    """The sealed blob a ``thoughtSignature`` carries, or None (Google's own signature, or garbage)."""
    if not isinstance(signature, str):
        return None
    try:
        # The SDK may send bytes back in the URL-safe alphabet (``encode_unserializable_types``).
        raw = base64.b64decode(signature.translate(_URLSAFE), validate=True)
    except (binascii.Error, ValueError):
        return None
    if not raw.startswith(_SEAL_MARK):
        return None
    try:
        return raw[len(_SEAL_MARK) :].decode("ascii")
    except UnicodeDecodeError:
        return None


def candidates_of(payload: dict[str, Any]) -> list[dict[str, Any]]:
    candidates = payload.get("candidates")
    if candidates is None:
        return []
    if not isinstance(candidates, list) or not all(isinstance(c, dict) for c in candidates):
        raise ValueError("candidates is not a list of objects")
    return candidates


def _index(candidate: dict[str, Any], position: int) -> int:
    index = candidate.get("index", position)
    return index if isinstance(index, int) and not isinstance(index, bool) else position


def parts_of(candidate: dict[str, Any]) -> list[Any] | None:
    content = candidate.get("content")
    if content is None:
        return None
    if not isinstance(content, dict):
        raise ValueError("candidate content is not an object")
    parts = content.get("parts")
    if parts is None:
        return None
    if not isinstance(parts, list):
        raise ValueError("content parts is not a list")
    return parts


def _is_text(part: Any) -> bool:
    return isinstance(part, dict) and isinstance(part.get("text"), str)


def _is_thought(part: Any) -> bool:
    return _is_text(part) and part.get("thought") is True


class ArgsPart(Part):
    """A ``functionCall``'s ``args`` object, read and written as JSON text."""

    __slots__ = ()

    @property
    def text(self) -> str:
        return orjson.dumps(self._holder.get("args", {})).decode()

    def set_text(self, text: str) -> None:
        self._holder["args"] = orjson.loads(text)


class CandidateLogprobs(LogprobsPart):
    """A candidate's ``logprobsResult``: chosen tokens, and the top alternatives per position."""

    __slots__ = ("_candidate",)

    def __init__(self, key: PartKey, candidate: dict[str, Any], *, delta: bool, choice: int) -> None:
        super().__init__(key, delta=delta, choice=choice)
        self._candidate = candidate

    def _result(self) -> tuple[dict[str, Any], list[Any], list[Any]]:
        result = self._candidate.get("logprobsResult")
        if not isinstance(result, dict):
            raise ValueError("logprobsResult is not an object")
        chosen = result.get("chosenCandidates") or []
        top = result.get("topCandidates") or []
        if not isinstance(chosen, list) or not isinstance(top, list):
            raise ValueError("logprobsResult chosenCandidates/topCandidates are not lists")
        return result, chosen, top

    @staticmethod
    def _alternatives(step: Any) -> list[dict[str, Any]]:
        if not isinstance(step, dict):
            raise ValueError("a topCandidates entry is not an object")
        entries = step.get("candidates") or []
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ValueError("topCandidates[].candidates is not a list of objects")
        return entries

    def positions(self) -> int:
        _, chosen, top = self._result()
        return max(len(chosen), len(top))

    def cap(self, top_k: int) -> int:
        _, _, top = self._result()
        withheld = 0
        for step in top:
            entries = self._alternatives(step)
            if top_k < len(entries):
                ranked = sorted(entries, key=lambda e: -_number(e.get("logProbability")))
                step["candidates"] = ranked[:top_k]
                withheld += len(entries) - top_k
        return withheld

    def map_values(self, value: Value, start: int = 0) -> None:
        result, chosen, top = self._result()
        total = 0.0
        for position, entry in enumerate(chosen, start):
            if not isinstance(entry, dict):
                raise ValueError("a chosenCandidates entry is not an object")
            entry["logProbability"] = value(entry.get("logProbability"), position, entry.get("token"))
            total += _number(entry["logProbability"])
        for position, step in enumerate(top, start):
            for entry in self._alternatives(step):
                entry["logProbability"] = value(entry.get("logProbability"), position, entry.get("token"))
        if "logProbabilitySum" in result:
            result["logProbabilitySum"] = total  # derived: the sum of what the client sees

    def alternatives(self) -> int:
        _, _, top = self._result()
        return sum(len(self._alternatives(step)) for step in top)

    def drop(self) -> int:
        withheld = self.alternatives()
        self._candidate.pop("logprobsResult", None)
        return withheld


class AverageLogprob(LogprobsPart):
    """A candidate's ``avgLogprobs``: one value summarising the sampled tokens' logprobs."""

    __slots__ = ("_candidate",)

    def __init__(self, key: PartKey, candidate: dict[str, Any], *, choice: int) -> None:
        super().__init__(key, delta=False, choice=choice)
        self._candidate = candidate

    def positions(self) -> int:
        return 1

    def cap(self, top_k: int) -> int:
        return 0

    def map_values(self, value: Value, start: int = 0) -> None:
        self._candidate["avgLogprobs"] = value(self._candidate.get("avgLogprobs"), start, None)

    def alternatives(self) -> int:
        return 0

    def drop(self) -> int:
        self._candidate.pop("avgLogprobs", None)
        return 0


def _number(value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"logProbability is not a number: {value!r}")
    return float(value)


def _thought_part(parts: list[Any], part: dict[str, Any], key: PartKey, delta: bool, index: int) -> Part:
    def remove() -> None:
        if "thoughtSignature" in part:
            # Google's signature goes back with the next turn: keep it, without the thought.
            part["text"] = ""
            part.pop("thought", None)
        elif part in parts:
            parts.remove(part)

    def seal(blob: str) -> None:
        part["text"] = ""
        part["thoughtSignature"] = seal_signature(blob)

    return Part(
        "reasoning", key, part, "text", delta=delta, choice=index, detail="raw", remove=remove, seal=seal
    )


def candidate_parts(
    candidate: dict[str, Any], position: int, kinds: frozenset[str], *, stream: bool, counts: tuple[int, int]
) -> Iterator[Part | LogprobsPart]:
    """The parts of one candidate; ``counts`` are the function calls and code parts before this one."""
    index = _index(candidate, position)
    parts = parts_of(candidate) or []
    calls, codes = counts
    seen_text = seen_thought = stream  # in a stream every text part continues its key
    for part in list(parts):  # over a copy: a drop removes the part from the list
        if not isinstance(part, dict):
            raise ValueError("a content part is not an object")
        if _is_thought(part):
            if "reasoning" in kinds:
                yield _thought_part(parts, part, ("thought", index), seen_thought, index)
            seen_thought = True
        elif _is_text(part):
            if "text" in kinds:

                def remove(part: dict[str, Any] = part) -> None:
                    if part in parts:
                        parts.remove(part)

                yield Part(
                    "text", ("candidate", index), part, "text", delta=seen_text, choice=index, remove=remove
                )
            seen_text = True
        if "thoughtSignature" in part and "reasoning" in kinds and not _is_thought(part):
            key = ("signature", index, calls + codes)
            yield Part("reasoning", key, part, "thoughtSignature", choice=index, detail="encrypted")
        call = part.get("functionCall")
        if isinstance(call, dict):
            if "tool_arguments" in kinds:
                yield ArgsPart("tool_arguments", ("tool", index, calls), call, "args", choice=index)
            calls += 1
        code = part.get("executableCode")
        if isinstance(code, dict):
            if "tool_arguments" in kinds and isinstance(code.get("code"), str):
                yield Part("tool_arguments", ("code", index, codes), code, "code", choice=index)
            codes += 1
    if "logprobs" in kinds:
        if candidate.get("logprobsResult") is not None:
            yield CandidateLogprobs(("logprobs", index), candidate, delta=stream, choice=index)
        if candidate.get("avgLogprobs") is not None:
            yield AverageLogprob(("avg_logprobs", index), candidate, choice=index)


def _tool_counts(candidate: dict[str, Any]) -> tuple[int, int]:
    parts = parts_of(candidate) or ()
    calls = sum(1 for p in parts if isinstance(p, dict) and isinstance(p.get("functionCall"), dict))
    codes = sum(1 for p in parts if isinstance(p, dict) and isinstance(p.get("executableCode"), dict))
    return calls, codes


class GenerateContentBodyView(ResponseView):
    """A whole ``generateContent`` response."""

    __slots__ = ()

    def parts(self, kinds: frozenset[str] = frozenset({"text"})) -> Iterator[Part | LogprobsPart]:
        for position, candidate in enumerate(candidates_of(self.body)):
            yield from candidate_parts(candidate, position, kinds, stream=False, counts=(0, 0))


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
            index = _index(candidate, position)
            parts = parts_of(candidate) or []
            before = self._counts.get(index, (0, 0))
            self._starts[index] = before
            calls, codes = _tool_counts(candidate)
            self._counts[index] = (before[0] + calls, before[1] + codes)
            if any(_is_thought(p) for p in parts):
                self._thinking.add(index)
            answered = any(isinstance(p, dict) and not _is_thought(p) for p in parts)
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
            for key in (("thought", _index(candidate, position)), ("candidate", _index(candidate, position)))
        )

    def event_parts(self, event: StreamEvent, kinds: frozenset[str]) -> Iterator[Part | LogprobsPart]:
        payload = event.json
        if payload is None:
            return
        starts = self._starts if event is self._observed else {}
        for position, candidate in enumerate(candidates_of(payload)):
            start = starts.get(_index(candidate, position), (0, 0))
            yield from candidate_parts(candidate, position, kinds, stream=True, counts=start)

    def append_text(self, event: StreamEvent, key: PartKey, text: str) -> bool:
        payload = event.json
        if payload is None or key[0] not in ("candidate", "thought"):
            return False
        thought = key[0] == "thought"
        for position, candidate in enumerate(candidates_of(payload)):
            if _index(candidate, position) != key[1]:
                continue
            content = candidate.setdefault("content", {"role": "model"})
            parts = content.setdefault("parts", [])
            same = [
                i
                for i, p in enumerate(parts)
                if (_is_thought(p) if thought else _is_text(p) and not _is_thought(p))
            ]
            if same:
                parts[same[-1]]["text"] += text
                return True
            # Held text came before this chunk's other content: it goes in front of its answer parts.
            at = (
                next((i for i, p in enumerate(parts) if not _is_thought(p)), len(parts)) if not thought else 0
            )
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

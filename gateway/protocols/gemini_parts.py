"""Gemini's response parts: reading a ``GenerateContentResponse`` candidate as view parts.

The keys, and what each part of a candidate is (text, thought, signature, tool arguments, logprobs), are
described in :mod:`gateway.protocols.gemini_response`; the body and stream views there and in
:mod:`gateway.protocols.gemini_stream` yield what :func:`candidate_parts` reads. Sealed thoughts carry
their blob in ``thoughtSignature`` (:func:`seal_signature`, :func:`sealed_blob`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from gateway.protocols.response_view import LogprobsPart, Part, PartKey

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


def candidate_index(candidate: dict[str, Any], position: int) -> int:
    """The candidate's ``index``, or its position in the list where it has none (or a bad one)."""
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


def is_text(part: Any) -> bool:
    """Whether ``part`` is a text part (an answer's or a thought's)."""
    return isinstance(part, dict) and isinstance(part.get("text"), str)


def is_thought(part: Any) -> bool:
    """Whether ``part`` is a thought: a text part marked ``thought: true``."""
    return is_text(part) and part.get("thought") is True


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
    index = candidate_index(candidate, position)
    parts = parts_of(candidate) or []
    calls, codes = counts
    seen_text = seen_thought = stream  # in a stream every text part continues its key
    for part in list(parts):  # over a copy: a drop removes the part from the list
        if not isinstance(part, dict):
            raise ValueError("a content part is not an object")
        if is_thought(part):
            if "reasoning" in kinds:
                yield _thought_part(parts, part, ("thought", index), seen_thought, index)
            seen_thought = True
        elif is_text(part):
            if "text" in kinds:

                def remove(part: dict[str, Any] = part) -> None:
                    if part in parts:
                        parts.remove(part)

                yield Part(
                    "text", ("candidate", index), part, "text", delta=seen_text, choice=index, remove=remove
                )
            seen_text = True
        if "thoughtSignature" in part and "reasoning" in kinds and not is_thought(part):
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

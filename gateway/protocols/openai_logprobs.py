"""Log-probabilities in the OpenAI-compatible formats, as :class:`LogprobsPart` s.

Layouts:

* token lists (chat ``choices[].logprobs.content[]`` and ``.refusal[]``, Responses ``output_text``
  ``logprobs``): ``{token, bytes, logprob, top_logprobs: [{token, bytes, logprob}]}``; top-k keeps
  the k most likely alternatives;
* legacy completions ``choices[].logprobs = {tokens, token_logprobs, top_logprobs: [{token: lp}],
  text_offset}``: top-k keeps the k most likely plus the sampled token when it is not among them
  (OpenAI's rule), and the arrays start with the echoed prompt when the request echoes;
* vLLM ``prompt_logprobs`` (top level for chat, per choice for completions): a list (first entry
  null) of ``{token id: {logprob, rank, decoded_token}}``, the prompt token plus the top k, so top-k
  keeps k + 1.

A field of the wrong type raises ValueError (the engine then fails closed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from gateway.protocols.response_view import LogprobsPart, PartKey

Value = Callable[[Any, int, Any], Any]


def best_first(entries: Iterable[tuple[Any, float]]) -> list[tuple[Any, float]]:
    """(key, logprob) pairs sorted most likely first (stable for ties)."""
    return sorted(entries, key=lambda pair: -pair[1])


def number(value: Any, where: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{where}: logprob is not a number: {value!r}")
    return float(value)


def count_alternatives(entries: Any) -> int:
    if not isinstance(entries, list):
        return 0
    return sum(len(e.get("top_logprobs") or []) for e in entries if isinstance(e, dict))


class TokenListLogprobs(LogprobsPart):
    """A list of token entries, each with its ``top_logprobs`` alternatives."""

    __slots__ = ("_checked", "_empty", "_entries", "_field", "_holder")

    def __init__(
        self,
        key: PartKey,
        entries: Any,
        holder: dict[str, Any],
        field: str,
        empty: Any,
        delta: bool,
        choice: int = 0,
    ) -> None:
        super().__init__(key, delta, False, False, choice)
        self._entries = entries
        self._holder = holder  # dropping sets holder[field] = empty
        self._field = field
        self._empty = empty
        self._checked = False

    def _list(self) -> list[dict[str, Any]]:
        """The entries, their types checked once (every method after the first trusts them)."""
        entries = self._entries
        if self._checked:
            return entries  # type: ignore[no-any-return]
        if not isinstance(entries, list):
            raise ValueError("token logprobs are not a list")
        for entry in entries:
            if not isinstance(entry, dict):
                raise ValueError("a token logprob entry is not an object")
            top = entry.get("top_logprobs")
            if top is not None and (
                not isinstance(top, list) or not all(isinstance(alt, dict) for alt in top)
            ):
                raise ValueError("top_logprobs is not a list of objects")
        self._checked = True
        return entries

    def positions(self) -> int:
        return len(self._list())

    def cap(self, top_k: int) -> int:
        withheld = 0
        for entry in self._list():
            top = entry.get("top_logprobs")
            if top is not None and top_k < len(top):
                ranked = best_first((alt, number(alt.get("logprob"), "top_logprobs")) for alt in top)
                entry["top_logprobs"] = [alt for alt, _ in ranked[:top_k]]
                withheld += len(top) - top_k
        return withheld

    def map_values(self, value: Value, start: int = 0) -> None:
        for position, entry in enumerate(self._list(), start):
            entry["logprob"] = value(entry.get("logprob"), position, entry.get("token"))
            top = entry.get("top_logprobs")
            if top:
                for alt in top:
                    alt["logprob"] = value(alt.get("logprob"), position, alt.get("token"))

    def coarsen(self, top_k: int, value: Value, start: int = 0) -> int:
        # One pass per token (a stream sends one token per event): cap, then map, as cap + map_values.
        withheld = 0
        for position, entry in enumerate(self._list(), start):
            entry["logprob"] = value(entry.get("logprob"), position, entry.get("token"))
            top = entry.get("top_logprobs")
            if not top:
                continue
            if top_k < len(top):
                ranked = best_first((alt, number(alt.get("logprob"), "top_logprobs")) for alt in top)
                withheld += len(top) - top_k
                top = entry["top_logprobs"] = [alt for alt, _ in ranked[:top_k]]
            for alt in top:
                alt["logprob"] = value(alt.get("logprob"), position, alt.get("token"))
        return withheld

    def alternatives(self) -> int:
        return count_alternatives(self._entries)

    def drop(self) -> int:
        withheld = self.alternatives()
        self._holder[self._field] = self._empty
        return withheld


class LegacyLogprobs(LogprobsPart):
    """Legacy completions' parallel arrays (``choice["logprobs"]``)."""

    __slots__ = ("_choice", "_logprobs")

    def __init__(
        self, key: PartKey, choice: dict[str, Any], logprobs: dict[str, Any], *, delta: bool
    ) -> None:
        index = choice.get("index", 0)
        super().__init__(key, delta=delta, echoes_prompt=True, choice=index if isinstance(index, int) else 0)
        self._choice = choice
        self._logprobs = logprobs

    def _arrays(self) -> tuple[list[Any], list[Any], list[Any] | None]:
        logprobs = self._logprobs
        tokens = logprobs.get("tokens") or []
        values = logprobs.get("token_logprobs") or []
        tops = logprobs.get("top_logprobs")
        if not isinstance(tokens, list) or not isinstance(values, list):
            raise ValueError("legacy logprobs: tokens/token_logprobs are not lists")
        if tops is not None and not isinstance(tops, list):
            raise ValueError("legacy logprobs: top_logprobs is not a list")
        return tokens, values, tops

    def positions(self) -> int:
        tokens, values, tops = self._arrays()
        return max(len(tokens), len(values), len(tops) if tops is not None else 0)

    def cap(self, top_k: int) -> int:
        tokens, _, tops = self._arrays()
        if tops is None:
            return 0
        withheld = 0
        capped: list[dict[str, Any] | None] = []
        for i, alternatives in enumerate(tops):
            if alternatives is None:
                capped.append(None)
                continue
            if not isinstance(alternatives, dict):
                raise ValueError("legacy logprobs: a top_logprobs entry is not an object")
            sampled = tokens[i] if i < len(tokens) else None
            ranked = best_first((token, number(lp, "top_logprobs")) for token, lp in alternatives.items())
            # OpenAI: the top `logprobs` tokens, plus the sampled token when it is not among them.
            kept = ranked[:top_k]
            if sampled is not None and all(token != sampled for token, _ in kept):
                kept += [pair for pair in ranked if pair[0] == sampled]
            withheld += len(alternatives) - len(kept)
            capped.append({token: alternatives[token] for token, _ in kept})
        self._logprobs["top_logprobs"] = capped
        return withheld

    def map_values(self, value: Value, start: int = 0) -> None:
        tokens, values, tops = self._arrays()
        self._logprobs["token_logprobs"] = [
            value(lp, start + i, tokens[i] if i < len(tokens) else "") for i, lp in enumerate(values)
        ]
        if tops is None:
            return
        mapped: list[dict[str, Any] | None] = []
        for i, alternatives in enumerate(tops):
            if alternatives is None:
                mapped.append(None)
                continue
            if not isinstance(alternatives, dict):
                raise ValueError("legacy logprobs: a top_logprobs entry is not an object")
            mapped.append({token: value(lp, start + i, token) for token, lp in alternatives.items()})
        self._logprobs["top_logprobs"] = mapped

    def alternatives(self) -> int:
        tops = self._logprobs.get("top_logprobs")
        return (
            sum(len(alts) for alts in tops or [] if isinstance(alts, dict)) if isinstance(tops, list) else 0
        )

    def drop(self) -> int:
        withheld = self.alternatives()
        self._choice["logprobs"] = None
        return withheld


class PromptLogprobs(LogprobsPart):
    """vLLM's ``prompt_logprobs``: positions from 0 in every event that carries them."""

    __slots__ = ("_entries", "_holder")

    def __init__(self, key: PartKey, holder: dict[str, Any], entries: list[Any]) -> None:
        super().__init__(key, delta=False, prompt=True)
        self._holder = holder
        self._entries = entries

    def _dicts(self) -> list[dict[str, Any] | None]:
        for entry in self._entries:
            if entry is None:
                continue
            if not isinstance(entry, dict) or not all(isinstance(v, dict) for v in entry.values()):
                raise ValueError("prompt_logprobs entry is not an object of objects")
        return self._entries

    def positions(self) -> int:
        return len(self._entries)

    def cap(self, top_k: int) -> int:
        entries = self._dicts()
        withheld = 0
        for position, entry in enumerate(entries):
            if entry is None:
                continue
            ranked = best_first(
                (token_id, number(info.get("logprob"), "prompt_logprobs")) for token_id, info in entry.items()
            )
            # vLLM sends the prompt token plus the top k; keep up to top_k + 1, best first.
            kept = ranked[: top_k + 1]
            withheld += len(entry) - len(kept)
            entries[position] = {token_id: entry[token_id] for token_id, _ in kept}
        return withheld

    def map_values(self, value: Value, start: int = 0) -> None:
        for position, entry in enumerate(self._dicts(), start):
            if entry is None:
                continue
            for token_id, info in entry.items():
                token = info.get("decoded_token") or str(token_id)
                info["logprob"] = value(info.get("logprob"), position, token)

    def alternatives(self) -> int:
        return sum(max(0, len(e) - 1) for e in self._entries if isinstance(e, dict))

    def drop(self) -> int:
        withheld = self.alternatives()
        self._holder["prompt_logprobs"] = None
        return withheld


def prompt_logprobs(key: PartKey, holder: dict[str, Any]) -> PromptLogprobs | None:
    """The ``prompt_logprobs`` run of ``holder`` (a chat body or chunk, a completions choice), if any."""
    entries = holder.get("prompt_logprobs")
    if entries is None:
        return None
    if not isinstance(entries, list):
        raise ValueError("prompt_logprobs is not a list")
    return PromptLogprobs(key, holder, entries)

"""Where logprobs live in each response shape, and rewriting them there (whole bodies and stream events).

Shapes handled:

* chat.completions: ``choices[].logprobs.content[]`` and ``.refusal[]``, each
  ``{token, bytes, logprob, top_logprobs: [{token, bytes, logprob}]}``; streamed per chunk.
* completions (legacy): ``choices[].logprobs = {tokens, token_logprobs, top_logprobs: [{token: logprob}],
  text_offset}``; streamed per chunk.
* responses: ``output_text`` content parts' ``logprobs`` (in the body, and in the
  ``response.*`` lifecycle events, ``output_item.*``, ``content_part.*``), the
  per-delta ``logprobs`` of ``response.output_text.delta`` and the full list of
  ``response.output_text.done``.
* vLLM ``prompt_logprobs``: top level for chat, ``choices[].prompt_logprobs`` for completions;
  a list (first entry null) of ``{token id: {logprob, rank, decoded_token}}``.

Positions count the tokens of one output (one chat choice's content, one
Responses content part) from 0; a stream keeps a counter per output, so a token
gets the same position, hence the same noise, however the stream is chunked and
whether or not it is streamed. Nothing is held back: each event is rewritten on
its own. A logprobs field of the wrong type raises ``ValueError`` (the engine
then fails closed).
"""

from __future__ import annotations

from typing import Any

from policies.logprobs.values import Coarsener, best_first, number

LaneKey = tuple[Any, ...]


class LogprobRewriter:
    """The per-exchange rewriter: coarsens, caps, or drops every logprob in what the upstream sends."""

    __slots__ = ("coarsener", "drop", "drop_legacy", "drop_prompt", "lanes", "withheld")

    def __init__(
        self, coarsener: Coarsener, *, drop: bool, drop_prompt: bool, drop_legacy: bool = False
    ) -> None:
        self.coarsener = coarsener
        self.drop = drop
        self.drop_prompt = drop_prompt or drop
        self.drop_legacy = drop_legacy or drop
        self.lanes: dict[LaneKey, int] = {}
        self.withheld = 0

    # -- whole bodies ------------------------------------------------------------------------------

    def body(self, operation: str, body: dict[str, Any]) -> None:
        if operation == "chat.completions":
            self._chat(body, stream=False)
        elif operation == "completions":
            self._completions(body, stream=False)
        elif operation == "responses":
            self._response_object(body)

    # -- stream events -----------------------------------------------------------------------------

    def event(self, operation: str, payload: dict[str, Any]) -> None:
        if operation == "chat.completions":
            self._chat(payload, stream=True)
        elif operation == "completions":
            self._completions(payload, stream=True)
        elif operation == "responses":
            self._response_event(payload)

    # -- chat ----------------------------------------------------------------------------------------

    def _chat(self, body: dict[str, Any], *, stream: bool) -> None:
        self._prompt_field(body)
        for choice in _choices(body):
            logprobs = choice.get("logprobs")
            if logprobs is None:
                continue
            if not isinstance(logprobs, dict):
                raise ValueError("choices[].logprobs is not an object")
            if self.drop:
                for key in ("content", "refusal"):
                    self.withheld += _count_alternatives(logprobs.get(key))
                choice["logprobs"] = None
                continue
            for key in ("content", "refusal"):
                entries = logprobs.get(key)
                if entries is not None:
                    lane = (key, choice.get("index", 0))
                    start = self.lanes.get(lane, 0) if stream else 0
                    self.lanes[lane] = start + self.token_list(entries, start)

    def token_list(self, entries: Any, start: int) -> int:
        """Rewrite chat/Responses token entries in place, positions from ``start``; returns how many."""
        if not isinstance(entries, list):
            raise ValueError("token logprobs are not a list")
        coarsener = self.coarsener
        for offset, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise ValueError("a token logprob entry is not an object")
            position = start + offset
            entry["logprob"] = coarsener.value(entry.get("logprob"), position, entry.get("token"))
            top = entry.get("top_logprobs")
            if top is None:
                continue
            if not isinstance(top, list) or not all(isinstance(alt, dict) for alt in top):
                raise ValueError("top_logprobs is not a list of objects")
            kept = coarsener.keep(len(top))
            if kept < len(top):
                ranked = best_first((alt, number(alt.get("logprob"), "top_logprobs")) for alt in top)
                top = [alt for alt, _ in ranked[:kept]]
                self.withheld += len(entry["top_logprobs"]) - kept
                entry["top_logprobs"] = top
            for alt in top:
                alt["logprob"] = coarsener.value(alt.get("logprob"), position, alt.get("token"))
        return len(entries)

    # -- legacy completions --------------------------------------------------------------------------

    def _completions(self, body: dict[str, Any], *, stream: bool) -> None:
        for choice in _choices(body):
            self._prompt_field(choice)
            logprobs = choice.get("logprobs")
            if logprobs is None:
                continue
            if not isinstance(logprobs, dict):
                raise ValueError("choices[].logprobs is not an object")
            if self.drop_legacy:
                self.withheld += sum(
                    len(alts) for alts in logprobs.get("top_logprobs") or [] if isinstance(alts, dict)
                )
                choice["logprobs"] = None
                continue
            lane = ("text", choice.get("index", 0))
            start = self.lanes.get(lane, 0) if stream else 0
            self.lanes[lane] = start + self.legacy(logprobs, start)

    def legacy(self, logprobs: dict[str, Any], start: int) -> int:
        """Rewrite a legacy ``logprobs`` object in place; returns how many token positions it held."""
        tokens = logprobs.get("tokens") or []
        values = logprobs.get("token_logprobs") or []
        tops = logprobs.get("top_logprobs")
        if not isinstance(tokens, list) or not isinstance(values, list):
            raise ValueError("legacy logprobs: tokens/token_logprobs are not lists")
        coarsener = self.coarsener
        logprobs["token_logprobs"] = [
            coarsener.value(value, start + i, tokens[i] if i < len(tokens) else "")
            for i, value in enumerate(values)
        ]
        if tops is None:
            return max(len(tokens), len(values))
        if not isinstance(tops, list):
            raise ValueError("legacy logprobs: top_logprobs is not a list")
        rewritten: list[dict[str, Any] | None] = []
        for i, alternatives in enumerate(tops):
            if alternatives is None:
                rewritten.append(None)
                continue
            if not isinstance(alternatives, dict):
                raise ValueError("legacy logprobs: a top_logprobs entry is not an object")
            sampled = tokens[i] if i < len(tokens) else None
            ranked = best_first((token, number(lp, "top_logprobs")) for token, lp in alternatives.items())
            # OpenAI: the top `logprobs` tokens, plus the sampled token when it is not among them.
            kept = ranked[: coarsener.top_k]
            if sampled is not None and all(token != sampled for token, _ in kept):
                kept += [pair for pair in ranked if pair[0] == sampled]
            self.withheld += len(alternatives) - len(kept)
            position = start + i
            rewritten.append({token: coarsener.value(lp, position, token) for token, lp in kept})
        logprobs["top_logprobs"] = rewritten
        return max(len(tokens), len(values), len(tops))

    # -- vLLM prompt_logprobs --------------------------------------------------------------------------

    def _prompt_field(self, holder: dict[str, Any]) -> None:
        entries = holder.get("prompt_logprobs")
        if entries is None:
            return
        if not isinstance(entries, list):
            raise ValueError("prompt_logprobs is not a list")
        if self.drop_prompt:
            self.withheld += sum(max(0, len(e) - 1) for e in entries if isinstance(e, dict))
            holder["prompt_logprobs"] = None
            return
        coarsener = self.coarsener
        for position, entry in enumerate(entries):
            if entry is None:
                continue
            if not isinstance(entry, dict) or not all(isinstance(v, dict) for v in entry.values()):
                raise ValueError("prompt_logprobs entry is not an object of objects")
            ranked = best_first(
                (token_id, number(info.get("logprob"), "prompt_logprobs")) for token_id, info in entry.items()
            )
            # vLLM sends the prompt token plus the top k; keep up to top_k + 1, best first.
            kept = ranked[: coarsener.top_k + 1]
            self.withheld += len(entry) - len(kept)
            rewritten = {}
            for token_id, _ in kept:
                info = entry[token_id]
                token = info.get("decoded_token") or str(token_id)
                info["logprob"] = coarsener.value(info.get("logprob"), position, token)
                rewritten[token_id] = info
            entries[position] = rewritten

    # -- Responses API ---------------------------------------------------------------------------------

    def _response_object(self, response: Any) -> None:
        if not isinstance(response, dict):
            return
        output = response.get("output")
        if isinstance(output, list):
            for item in output:
                self._output_item(item)

    def _output_item(self, item: Any) -> None:
        if not isinstance(item, dict):
            return
        content = item.get("content")
        if isinstance(content, list):
            for part in content:
                self._content_part(part)

    def _content_part(self, part: Any) -> None:
        if isinstance(part, dict) and "logprobs" in part:
            self._full_list(part)

    def _full_list(self, holder: dict[str, Any]) -> None:
        entries = holder.get("logprobs")
        if entries is None:
            return
        if self.drop:
            self.withheld += _count_alternatives(entries)
            holder["logprobs"] = []
            return
        self.token_list(entries, 0)

    def _response_event(self, payload: dict[str, Any]) -> None:
        kind = payload.get("type")
        if kind == "response.output_text.delta":
            entries = payload.get("logprobs")
            if entries is None:
                return
            if self.drop:
                self.withheld += _count_alternatives(entries)
                payload["logprobs"] = []
                return
            lane = ("output_text", payload.get("output_index"), payload.get("content_index"))
            start = self.lanes.get(lane, 0)
            self.lanes[lane] = start + self.token_list(entries, start)
        elif kind == "response.output_text.done":
            self._full_list(payload)
        elif kind in ("response.content_part.added", "response.content_part.done"):
            self._content_part(payload.get("part"))
        elif kind in ("response.output_item.added", "response.output_item.done"):
            self._output_item(payload.get("item"))
        elif isinstance(kind, str) and isinstance(payload.get("response"), dict):
            self._response_object(payload["response"])


def _choices(body: dict[str, Any]) -> list[dict[str, Any]]:
    choices = body.get("choices")
    if choices is None:
        return []
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        raise ValueError("choices is not a list of objects")
    return choices


def _count_alternatives(entries: Any) -> int:
    if not isinstance(entries, list):
        return 0
    return sum(len(e.get("top_logprobs") or []) for e in entries if isinstance(e, dict))

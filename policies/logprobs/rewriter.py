"""Rewriting every logprob a response carries, through the adapter's response view.

The adapter yields each run of log-probabilities as a :class:`~gateway.plugins.LogprobsPart` (chat
content and refusal tokens, legacy completions arrays, Responses output_text logprobs, vLLM prompt
logprobs, whatever the family); this module caps, coarsens or drops them without knowing where
they live.

Positions count the tokens of one output (one key) from 0; a stream keeps a counter per key, so
a token gets the same position, hence the same noise, however the stream is chunked and whether
or not it is streamed. Nothing is held back: each event is rewritten on its own.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.plugins import LogprobsPart, PartKey
from policies.logprobs.values import Coarsener


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
        self.lanes: dict[PartKey, int] = {}
        self.withheld = 0

    def rewrite(self, parts: Iterable[LogprobsPart]) -> None:
        """Rewrite the runs of one body or one stream event in place."""
        for part in parts:
            self.part(part)

    def part(self, part: LogprobsPart) -> None:
        if part.prompt:
            drop = self.drop_prompt
        elif part.echoes_prompt:
            drop = self.drop_legacy  # the run starts with the echoed prompt's tokens
        else:
            drop = self.drop
        if drop:
            self.withheld += part.drop()
            return
        start = self.lanes.get(part.key, 0) if part.delta else 0
        coarsener = self.coarsener
        self.withheld += part.coarsen(coarsener.top_k, coarsener.value, start)
        if part.delta:
            self.lanes[part.key] = start + part.positions()

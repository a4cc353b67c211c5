"""Bias probing: the same prompt sent again and again under a different ``logit_bias``.

The logprob-free logit extraction of Carlini et al. (2024, §6) reads no logprobs: it
resends one prompt with ``max_tokens=1`` and a bias on one token, stepped by binary
search until the one-token answer flips, so every query after the first on a prompt
carries the same prompt and a new bias. Honest uses of ``logit_bias`` (banning a few
tokens, steering a classifier to "yes"/"no") send the *same* bias with every prompt,
and retry a prompt, if ever, with the bias it had.

Per account a small map, bounded to :data:`MAX_PROMPTS` prompts (least recently
biased forgotten), from the prompt's key to the last bias signature it came with; a
request on a prompt already there whose bias differs is a probe: 1 with a short
answer (at most :data:`SHORT_ANSWER` output tokens asked or returned), else 0.5
(an attacker can read the first token of a long answer, at the price of its tokens).
Only requests with a bias touch the map: an account that never sends one has none.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

MAX_PROMPTS = 64
SHORT_ANSWER = 4


def bias_signature(bias: dict[str, Any]) -> int:
    """A hash of the bias map, independent of the order of its entries."""
    try:
        return hash(frozenset(bias.items()))
    except TypeError:  # a value the adapter let through but that cannot be hashed: its text then
        return hash(repr(sorted(bias.items(), key=repr)))


def prompt_key(model: str, system: str, user: str, turns: int) -> int:
    """The prompt as the detector keeps it (model, system prompt, last user turn, turns)."""
    return hash((model, system, user, turns))


class BiasProbes(OrderedDict[int, int]):
    """Prompt key -> the last bias signature sent with it, at most ``MAX_PROMPTS`` prompts."""

    def probe(self, prompt: int, bias: dict[str, Any], short: bool) -> float:
        """Record ``bias`` for ``prompt``; 1 (short answer) or 0.5 when the prompt came with another bias."""
        signature = bias_signature(bias)
        last = self.get(prompt)
        self[prompt] = signature
        self.move_to_end(prompt)
        if len(self) > MAX_PROMPTS:
            self.popitem(last=False)
        if last is None or last == signature:
            return 0.0
        return 1.0 if short else 0.5

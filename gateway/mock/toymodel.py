"""A toy language model with honest, low-rank logits, for logprobs and the logit-bias attack.

Logits at every position are ``W @ h`` with ``W`` a fixed (vocabulary x hidden)
matrix and ``h`` a hidden state of dimension ``hidden`` derived from the
prompt, the position and the token the mock's script wants next (``h`` points
at that token's row, plus prompt-dependent noise, so the scripted word is the
likely one). Every logit vector therefore lies in an ``hidden``-dimensional
subspace, exactly the structure that Carlini et al. (2024) and Finlayson et al.
(2024) exploit. ``logit_bias`` is added before the softmax and before the
choice, as the OpenAI API did before March 2024; ``top_logprobs`` are the
honest log-softmax of the biased logits.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import cache

import numpy as np

from gateway.mock.text import vocabulary

HIDDEN = 48
SCALE = 9.0
NOISE = 0.35


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    token: str
    token_id: int
    logprob: float
    top: list[tuple[str, int, float]]  # (token, id, logprob), best first


class ToyModel:
    def __init__(self, hidden: int = HIDDEN, seed: int = 1234) -> None:
        self.vocab = vocabulary()
        self.index = {token: i for i, token in enumerate(self.vocab)}
        rng = np.random.default_rng(seed)
        weights = rng.standard_normal((len(self.vocab), hidden))
        self.W = weights / np.linalg.norm(weights, axis=1, keepdims=True)
        self.hidden = hidden

    def token_id(self, token: str) -> int:
        found = self.index.get(token)
        if found is not None:
            return found
        found = self.index.get(token.strip())
        return found if found is not None else self._hashed_id(token)

    def _hashed_id(self, token: str) -> int:
        return int.from_bytes(hashlib.sha256(token.encode()).digest()[:4], "big") % len(self.vocab)

    def hidden_state(self, prompt: str, position: int, target: int) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(f"{prompt}\x1f{position}".encode()).digest()[:8], "big")
        noise = np.random.default_rng(seed).standard_normal(self.hidden) * NOISE
        return SCALE * (self.W[target] + noise)

    def logits(self, prompt: str, position: int, target: int) -> np.ndarray:
        return self.W @ self.hidden_state(prompt, position, target)

    def step(
        self, prompt: str, position: int, scripted: str, bias: dict[int, float] | None, top_k: int
    ) -> TokenLogprob:
        """The token chosen at ``position`` (argmax of biased logits) with its honest logprobs."""
        logits = self.logits(prompt, position, self.token_id(scripted))
        if bias:
            for token_id, value in bias.items():
                if 0 <= token_id < len(logits):
                    logits[token_id] += value
        shifted = logits - logits.max()
        logprobs = shifted - math.log(float(np.exp(shifted).sum()))
        chosen = int(np.argmax(logprobs))
        top: list[tuple[str, int, float]] = []
        if top_k > 0:
            order = np.argpartition(-logprobs, min(top_k, len(logprobs) - 1))[:top_k]
            order = order[np.argsort(-logprobs[order])]
            top = [(self.vocab[i], int(i), float(logprobs[i])) for i in order]
        token = self.vocab[chosen] if bias else scripted
        token_id = chosen if bias else self.token_id(scripted)
        return TokenLogprob(token, token_id, float(logprobs[token_id]), top)


@cache
def toy_model() -> ToyModel:
    return ToyModel()

"""A toy language model with honest, low-rank logits, for logprobs and the logit-bias attack.

Logits at every position are ``W @ h`` with ``W`` a fixed (vocabulary x hidden)
matrix with unit rows and ``h`` a hidden state of dimension ``hidden`` derived
from the prompt, the position and the token the mock's script wants next (``h``
points at that token's row, plus prompt-dependent noise, so the scripted word is
the likely one). Every logit vector therefore lies in an ``hidden``-dimensional
subspace, exactly the structure that Carlini et al. (2024) and Finlayson et al.
(2024) exploit.

``logit_bias`` is applied as OpenAI documents it: "added to the logits generated
by the model prior to sampling", whether or not logprobs are requested, and the
(greedy) choice is the argmax of the biased logits. Which distribution the
*returned* logprobs describe depends on the serving stack, so it is a mode:

* ``raw`` (the default): logprobs of the model's own logits, bias not applied.
  OpenAI has returned these since February/March 2024, and vLLM V1 does by
  default (``logprobs_mode=raw_logprobs``). The sampled token's logprob is still
  reported, so forcing a token with a large bias reads its unbiased logprob.
* ``processed``: logprobs of the biased logits, as OpenAI did before 2024, vLLM
  V0 did and some servers still do. This is what the published top-k + bias
  attack reads.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np

from gateway.mock.text import vocabulary

HIDDEN = 48
SCALE = 9.0
NOISE = 0.35

LogprobsMode = Literal["raw", "processed"]


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
        state: np.ndarray = SCALE * (self.W[target] + noise)
        return state

    def logits(self, prompt: str, position: int, target: int) -> np.ndarray:
        logits: np.ndarray = self.W @ self.hidden_state(prompt, position, target)
        return logits

    def step(
        self,
        prompt: str,
        position: int,
        scripted: str,
        bias: dict[int, float] | None,
        top_k: int,
        mode: LogprobsMode = "raw",
    ) -> TokenLogprob:
        """The token chosen at ``position`` and its logprobs.

        Without a bias the scripted token is chosen; with one, the argmax of the
        biased logits. ``top`` holds the ``top_k`` most likely tokens of the
        reported distribution (see the module docstring for ``mode``).
        """
        logits = self.logits(prompt, position, self.token_id(scripted))
        biased = logits
        if bias:
            biased = logits.copy()
            for token_id, value in bias.items():
                if 0 <= token_id < len(biased):
                    biased[token_id] += value
        reported = _log_softmax(biased if mode == "processed" else logits)
        token_id = int(np.argmax(biased)) if bias else self.token_id(scripted)
        token = self.vocab[token_id] if bias else scripted
        return TokenLogprob(token, token_id, float(reported[token_id]), self._top(reported, top_k))

    def prompt_step(self, prompt: str, position: int, token: str, top_k: int) -> tuple[TokenLogprob, int]:
        """Prompt token ``position``'s logprob and rank (1 = most likely), for vLLM ``prompt_logprobs``."""
        token_id = self.token_id(token)
        reported = _log_softmax(self.logits("\x1eprompt\x1e" + prompt, position, token_id))
        rank = int((reported > reported[token_id]).sum()) + 1
        return TokenLogprob(token, token_id, float(reported[token_id]), self._top(reported, top_k)), rank

    def _top(self, logprobs: np.ndarray, top_k: int) -> list[tuple[str, int, float]]:
        if top_k <= 0:
            return []
        top_k = min(top_k, len(logprobs))
        order = np.argpartition(-logprobs, top_k - 1)[:top_k]
        order = order[np.argsort(-logprobs[order], kind="stable")]
        return [(self.vocab[i], int(i), float(logprobs[i])) for i in order]


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max()
    result: np.ndarray = shifted - np.log(np.exp(shifted).sum())
    return result


@cache
def toy_model() -> ToyModel:
    return ToyModel()

"""The green-list scheme: a keyed split of the vocabulary, added to each request as a logit bias.

After the Unigram-Watermark (Zhao et al., ICLR 2024): a key picks a fixed fraction ``gamma`` of the
model's vocabulary, the *green* tokens, and the upstream adds ``delta`` to their logits while it
samples. The split does not depend on the context, so edits only remove the tokens they touch.

Two lists are added to every request: the provider-wide one (the same for every account: what a
student trained on many accounts' answers inherits) and the account's own (attribution). A token in
both gets ``2 * delta``. Under the null hypothesis (text not generated with this key) each distinct
token is green with probability exactly ``gamma``, independently, because its greenness is the
token id's own keyed hash (SHAKE-256 of the key, four bytes per token id, below ``gamma * 2**32``):
a binomial test over the distinct tokens of a text is exact.

The bias maps are computed once per (key, vocabulary size, gamma, delta) and kept as JSON bytes
(:class:`orjson.Fragment`), which the engine's ``orjson.dumps`` splices into the forwarded body as
they are; a client's own ``logit_bias`` (already bounded by the logprobs policy) is added entry by
entry to ours, so it cannot remove the mark except on the few tokens it names.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict

import numpy as np
import orjson

from policies.watermark.keys import MasterKey

LIST_VERSION = b"distillguard green list v1"
PROVIDER_LABEL = b"distillguard green list: provider-wide"
MAX_BIAS = 100.0  # vLLM clamps to +-100; llama.cpp takes any float: keep both the same


def provider_key(master: MasterKey) -> bytes:
    """The provider-wide green-list key of a master key (the same for every account)."""
    # The NUL keeps it apart from every account key (HMAC(master, account id); ids hold no NUL).
    return hmac.new(master.secret, b"\x00" + PROVIDER_LABEL, hashlib.sha256).digest()


def green_mask(key: bytes, vocab_size: int, gamma: float) -> np.ndarray:
    """Boolean mask over token ids ``0..vocab_size-1``: True where the token is green for ``key``."""
    if vocab_size <= 0 or not 0 < gamma < 1:
        raise ValueError("vocab_size must be positive and gamma in (0, 1)")
    raw = hashlib.shake_256(LIST_VERSION + b"\x00" + key).digest(4 * vocab_size)
    return np.frombuffer(raw, dtype="<u4") < np.uint64(int(gamma * 2**32))


class BiasMap:
    """One (provider key, account key, vocabulary) bias, kept as the JSON bytes the upstream receives.

    ``ids`` (sorted) and ``weights`` (1 or 2: in one list or both) say which tokens are biased;
    ``_inner`` holds each entry followed by a comma and ``_starts`` where each entry begins, so a
    merge with a client's few entries cuts those out of the bytes instead of re-encoding 20,000.
    """

    __slots__ = ("_inner", "_starts", "delta", "fragment", "ids", "weights")

    def __init__(self, ids: np.ndarray, weights: np.ndarray, delta: float) -> None:
        self.ids = ids
        self.weights = weights
        self.delta = delta
        values = {w: orjson.dumps(float(w * delta)) for w in (1, 2)}
        pieces = [b'"%d":%s,' % (int(t), values[int(w)]) for t, w in zip(ids, weights, strict=True)]
        lengths = np.fromiter((len(p) for p in pieces), dtype=np.int64, count=len(pieces))
        self._starts = np.concatenate(([0], np.cumsum(lengths)))
        self._inner = b"".join(pieces)
        self.fragment = b"{" + self._inner[:-1] + b"}" if pieces else b"{}"

    def bias(self) -> dict[str, float]:
        """The map as a dict (tests and tools; the hot path never builds it)."""
        return {str(int(t)): float(w * self.delta) for t, w in zip(self.ids, self.weights, strict=True)}

    def value(self, token: int) -> tuple[int, float]:
        """(entry position or -1, our bias) of one token id."""
        pos = int(np.searchsorted(self.ids, token))
        if pos < len(self.ids) and int(self.ids[pos]) == token:
            return pos, float(self.weights[pos] * self.delta)
        return -1, 0.0

    def merged(self, client: dict[str, float] | None) -> orjson.Fragment:
        """The bias to forward: ours, with each token the client names at the sum of both, clamped."""
        if not client:
            return orjson.Fragment(self.fragment)
        totals: dict[int, float] = {}
        cut: set[int] = set()
        for token, value in client.items():
            tid = int(token)  # "007" and "7" are one token to the upstream: one entry
            if tid not in totals:
                pos, ours = self.value(tid)
                totals[tid] = ours
                if pos >= 0:
                    cut.add(pos)
            totals[tid] += float(value)
        kept, prev = [], 0
        for pos in sorted(cut):
            kept.append(self._inner[prev : self._starts[pos]])
            prev = int(self._starts[pos + 1])
        kept.append(self._inner[prev:])
        extra = b",".join(
            b'"%d":%s' % (tid, orjson.dumps(max(-MAX_BIAS, min(MAX_BIAS, total))))
            for tid, total in totals.items()
        )
        return orjson.Fragment(b"{" + b"".join(kept) + extra + b"}")


def build_bias(provider: bytes, account: bytes, vocab_size: int, gamma: float, delta: float) -> BiasMap:
    """The summed bias of both lists (token ids as strings, OpenAI's object form)."""
    total = green_mask(provider, vocab_size, gamma).astype(np.uint8)
    total += green_mask(account, vocab_size, gamma)
    ids = np.flatnonzero(total)
    return BiasMap(ids, total[ids], delta)


class BiasCache:
    """Bias maps by (account, vocab size); least recently used dropped past ``limit``."""

    def __init__(self, gamma: float, delta: float, limit: int = 64) -> None:
        self.gamma = gamma
        self.delta = delta
        self.limit = limit
        self._maps: OrderedDict[tuple[bytes, bytes, int], BiasMap] = OrderedDict()

    def get(self, provider: bytes, account: bytes, vocab_size: int) -> BiasMap:
        cache_key = (provider, account, vocab_size)
        found = self._maps.get(cache_key)
        if found is not None:
            self._maps.move_to_end(cache_key)
            return found
        made = self._maps[cache_key] = build_bias(provider, account, vocab_size, self.gamma, self.delta)
        if len(self._maps) > self.limit:
            self._maps.popitem(last=False)
        return made

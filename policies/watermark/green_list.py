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

import copy
import functools
import hashlib
import hmac
from collections import OrderedDict

import numpy as np
import orjson

from policies.watermark.keys import MasterKey

# The engine deep-copies the body for a policy in shadow mode; a Fragment is immutable bytes, so its
# copy is itself (orjson.Fragment neither pickles nor exposes its bytes for copyreg).
copy._deepcopy_dispatch[orjson.Fragment] = copy._deepcopy_atomic  # type: ignore[attr-defined]

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
    ``_starts`` says where each entry (with its comma) begins in ``fragment``, so a merge with a
    client's few entries cuts those out of the bytes instead of re-encoding 20,000.
    """

    __slots__ = ("_starts", "delta", "fragment", "ids", "weights")

    def __init__(self, ids: np.ndarray, weights: np.ndarray, delta: float, vocab_size: int) -> None:
        self.ids = ids
        self.weights = weights
        self.delta = delta
        table = _entry_table(vocab_size, delta)
        # A ragged gather of each entry's bytes from the table, vectorised (20,000 entries in ~1 ms).
        second = weights == 2
        seg_start = table.starts(ids, second)
        seg_len = table.lengths[ids] + np.where(second, table.extra, 0)
        ends = np.cumsum(seg_len)
        starts = np.concatenate(([0], ends))
        index = np.repeat(seg_start - starts[:-1], seg_len) + np.arange(int(ends[-1]) if ends.size else 0)
        inner = table.data[index].tobytes()
        self.fragment = b"{" + inner[:-1] + b"}" if ids.size else b"{}"
        # 32-bit copies: a map is the fragment (253 KB at 49,152 tokens, gamma 0.25) plus 190 KB
        self.ids = ids.astype(np.int32)
        self._starts = (starts + 1).astype(np.int32)  # entry i at fragment[_starts[i]:_starts[i + 1]]

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
        kept, prev = [], 1
        for pos in sorted(cut):
            kept.append(self.fragment[prev : self._starts[pos]])
            prev = int(self._starts[pos + 1])
        kept.append(self.fragment[prev:-1])
        entries = b"".join(kept)
        if entries and not entries.endswith(b","):
            entries += b","  # the last entry of ours has no comma of its own; the sums follow
        extra = b",".join(
            b'"%d":%s' % (tid, orjson.dumps(max(-MAX_BIAS, min(MAX_BIAS, total))))
            for tid, total in totals.items()
        )
        return orjson.Fragment(b"{" + entries + extra + b"}")


class _EntryTable:
    """Every entry ``"id":value,`` of a vocabulary, at weight 1 then at weight 2, as one byte array."""

    def __init__(self, size: int, delta: float) -> None:
        one, two = orjson.dumps(float(delta)), orjson.dumps(float(2 * delta))
        first = b"".join(b'"%d":%s,' % (i, one) for i in range(size))
        second = b"".join(b'"%d":%s,' % (i, two) for i in range(size))
        self.lengths = np.fromiter((len(b'"%d":' % i) + len(one) + 1 for i in range(size)), np.int64, size)
        self.offsets = np.concatenate(([0], np.cumsum(self.lengths)[:-1]))
        self.extra = len(two) - len(one)  # a weight-2 entry is this much longer ("4.0" / "10.0")
        self.split = len(first)
        self.data = np.frombuffer(first + second, dtype=np.uint8)

    def starts(self, ids: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Where each entry's bytes begin in ``data``."""
        return np.where(second, self.split + self.offsets[ids] + ids * self.extra, self.offsets[ids])


@functools.lru_cache(maxsize=8)
def _provider_mask(key: bytes, vocab_size: int, gamma: float) -> np.ndarray:
    return green_mask(key, vocab_size, gamma)  # the same for every account: computed once


@functools.lru_cache(maxsize=8)
def _entry_table(size: int, delta: float) -> _EntryTable:
    return _EntryTable(size, delta)


def build_bias(provider: bytes, account: bytes, vocab_size: int, gamma: float, delta: float) -> BiasMap:
    """The summed bias of both lists (token ids as strings, OpenAI's object form)."""
    total = _provider_mask(provider, vocab_size, gamma).astype(np.uint8)
    total += green_mask(account, vocab_size, gamma)
    ids = np.flatnonzero(total)
    return BiasMap(ids, total[ids], delta, vocab_size)


class BiasCache:
    """Bias maps by (account, vocab size); least recently used dropped past ``limit``."""

    def __init__(self, gamma: float, delta: float, limit: int = 128) -> None:
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

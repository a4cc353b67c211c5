"""The green-list scheme: a keyed split of the vocabulary, added to each request as a logit bias.

After the Unigram-Watermark (Zhao et al., ICLR 2024): a key picks a fixed fraction ``gamma`` of the
model's vocabulary, the *green* tokens, and the upstream adds ``delta`` to their logits while it
samples. The split does not depend on the context, so edits only remove the tokens they touch.

Two lists are added to every request: the provider-wide one (the same for every account: what a
student trained on many accounts' answers inherits) and the account's own (attribution), each with
its own fraction and bias (:class:`GreenLayout`). The account list is either an independent split of
the vocabulary (``nested: false``), or a keyed subset of the provider list (``nested: true``): then
every bias the account adds also pushes towards provider-green tokens, so the two marks do not
compete for the same sampling choices, and the account is tested on the provider-green tokens only.
Under the null hypothesis (text not generated with this key) each distinct token is green with
probability exactly ``gamma``, independently, because its greenness is the token id's own keyed hash
(SHAKE-256 of the key, four bytes per token id, below ``gamma * 2**32``): a binomial test over the
distinct tokens of a text is exact; for a nested account list, the same holds among the tokens whose
provider colour is green (the account's hash is independent of the provider's and of other accounts').

The bias maps are computed once per (key, vocabulary size, layout) and kept as JSON bytes
(:class:`orjson.Fragment`), which the engine's ``orjson.dumps`` splices into the forwarded body as
they are; a client's own ``logit_bias`` (already bounded by the logprobs policy) is added entry by
entry to ours, so it cannot remove the mark except on the few tokens it names.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import hmac
import math
from collections import OrderedDict
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class GreenLayout:
    """The two lists: fraction and bias of the provider-wide list and of the account's list.

    ``account_gamma`` is a fraction of the vocabulary, or of the provider list when ``nested``.
    """

    gamma: float
    delta: float
    account_gamma: float
    account_delta: float
    nested: bool = False

    @classmethod
    def of(
        cls,
        gamma: float,
        delta: float,
        account_gamma: float | None = None,
        account_delta: float | None = None,
        nested: bool = False,
    ) -> GreenLayout:
        """The account list as the provider's (``gamma``, ``delta``) unless given."""
        return cls(
            gamma,
            delta,
            gamma if account_gamma is None else account_gamma,
            delta if account_delta is None else account_delta,
            nested,
        )


def account_mask(provider: bytes, account: bytes, vocab_size: int, layout: GreenLayout) -> np.ndarray:
    """The account's green tokens: its own split, inside the provider list when nested."""
    own = green_mask(account, vocab_size, layout.account_gamma)
    return own & _provider_mask(provider, vocab_size, layout.gamma) if layout.nested else own


class BiasMap:
    """One (provider key, account key, vocabulary) bias, kept as the JSON bytes the upstream receives.

    ``ids`` (sorted) and ``levels`` (an index into ``values``: provider list only, account list only,
    both) say which tokens are biased and by how much; ``_starts`` says where each entry (with its
    comma) begins in ``fragment``, so a merge with a client's few entries cuts those out of the bytes
    instead of re-encoding 20,000.
    """

    __slots__ = ("_starts", "fragment", "ids", "levels", "values")

    def __init__(
        self, ids: np.ndarray, levels: np.ndarray, values: tuple[float, ...], vocab_size: int
    ) -> None:
        self.values = values
        self.levels = levels.astype(np.uint8)
        table = _entry_table(vocab_size, values)
        # A ragged gather of each entry's bytes from the table, vectorised (20,000 entries in ~1 ms).
        seg_start = table.starts(ids, self.levels)
        seg_len = table.lengths(ids, self.levels)
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
        return {str(int(t)): float(self.values[v]) for t, v in zip(self.ids, self.levels, strict=True)}

    def value(self, token: int) -> tuple[int, float]:
        """(entry position or -1, our bias) of one token id."""
        pos = int(np.searchsorted(self.ids, token))
        if pos < len(self.ids) and int(self.ids[pos]) == token:
            return pos, float(self.values[self.levels[pos]])
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
    """Every entry ``"id":value,`` of a vocabulary, once per bias value, as one byte array."""

    def __init__(self, size: int, values: tuple[float, ...]) -> None:
        encoded = [orjson.dumps(float(v)) for v in values]
        prefix = np.fromiter((len(b'"%d":' % i) for i in range(size)), np.int64, size)
        self._ids = np.arange(size, dtype=np.int64)
        self._prefix_before = np.concatenate(([0], np.cumsum(prefix)[:-1]))  # prefix bytes before id i
        self._prefix = prefix
        self._value_len = np.array([len(e) + 1 for e in encoded], dtype=np.int64)  # value and comma
        blocks = [b"".join(b'"%d":%s,' % (i, e) for i in range(size)) for e in encoded]
        self._base = np.concatenate(([0], np.cumsum([len(b) for b in blocks])[:-1])).astype(np.int64)
        self.data = np.frombuffer(b"".join(blocks), dtype=np.uint8)

    def starts(self, ids: np.ndarray, levels: np.ndarray) -> np.ndarray:
        """Where each entry's bytes begin in ``data``."""
        return self._base[levels] + self._prefix_before[ids] + ids * self._value_len[levels]

    def lengths(self, ids: np.ndarray, levels: np.ndarray) -> np.ndarray:
        """Each entry's length in bytes, comma included."""
        return self._prefix[ids] + self._value_len[levels]


@functools.lru_cache(maxsize=8)
def _provider_mask(key: bytes, vocab_size: int, gamma: float) -> np.ndarray:
    return green_mask(key, vocab_size, gamma)  # the same for every account: computed once


@functools.lru_cache(maxsize=8)
def _entry_table(size: int, values: tuple[float, ...]) -> _EntryTable:
    return _EntryTable(size, values)


def build_bias(
    provider: bytes,
    account: bytes,
    vocab_size: int,
    gamma: float,
    delta: float,
    *,
    account_gamma: float | None = None,
    account_delta: float | None = None,
    nested: bool = False,
) -> BiasMap:
    """The summed bias of both lists (token ids as strings, OpenAI's object form).

    The account list takes the provider's ``gamma`` and ``delta`` unless given (:class:`GreenLayout`).
    """
    return build_layout_bias(
        provider, account, vocab_size, GreenLayout.of(gamma, delta, account_gamma, account_delta, nested)
    )


def build_layout_bias(
    provider: bytes,
    account: bytes,
    vocab_size: int,
    layout: GreenLayout,
    end_tokens: tuple[int, ...] = (),
) -> BiasMap:
    """The summed bias of both lists of ``layout``.

    ``end_tokens`` (EOS, end-of-turn) get the layout's neutral level (:func:`neutral_bias`) whatever
    their colour, so the mark changes neither when an answer ends nor detection (which leaves them
    out). Left red, ending loses against the green tokens and marked short answers run on past their
    end (SmolLM2: 11 of 16 one-sentence answers ran to the token limit); at the top level ending
    wins too often (marked prose ended at a median 140 of 300 tokens, unmarked ran to the limit).
    """
    in_provider = _provider_mask(provider, vocab_size, layout.gamma)
    in_account = account_mask(provider, account, vocab_size, layout)
    # level 1: provider list only, 2: account list only, 3: both, 4: neutral (0: neither, not sent)
    level = in_provider.astype(np.uint8) + 2 * in_account.astype(np.uint8)
    ends = np.asarray([t for t in end_tokens if 0 <= t < vocab_size], dtype=np.int64)
    level[ends] = 4
    ids = np.flatnonzero(level)
    values = (
        layout.delta,
        layout.account_delta,
        layout.delta + layout.account_delta,
        round(neutral_bias(layout), 4),
    )
    return BiasMap(ids, level[ids] - 1, values, vocab_size)


def neutral_bias(layout: GreenLayout) -> float:
    """The bias that leaves a token's odds as the layout leaves them on average: the log of the mean
    factor ``exp(bias)`` over the vocabulary, weighted by the share of each level.

    Whatever the model's next-token distribution, its normaliser grows by that factor in
    expectation over keys (each token's colour is independent of the distribution), so a token at
    this level keeps its unmarked probability on average.
    """
    g, a = layout.gamma, layout.account_gamma
    account_only = 0.0 if layout.nested else (1 - g) * a  # nested: the account list is inside
    shares = (g * (1 - a), account_only, g * a)
    factors = (
        math.exp(layout.delta),
        math.exp(layout.account_delta),
        math.exp(layout.delta + layout.account_delta),
    )
    none = 1.0 - sum(shares)
    return math.log(none + sum(share * factor for share, factor in zip(shares, factors, strict=True)))


class BiasCache:
    """Bias maps by (account, vocab size, end tokens); least recently used dropped past ``limit``."""

    def __init__(self, layout: GreenLayout, limit: int = 128) -> None:
        self.layout = layout
        self.limit = limit
        self._maps: OrderedDict[tuple[bytes, bytes, int, tuple[int, ...]], BiasMap] = OrderedDict()

    def get(
        self, provider: bytes, account: bytes, vocab_size: int, end_tokens: tuple[int, ...] = ()
    ) -> BiasMap:
        cache_key = (provider, account, vocab_size, end_tokens)
        found = self._maps.get(cache_key)
        if found is not None:
            self._maps.move_to_end(cache_key)
            return found
        made = self._maps[cache_key] = build_layout_bias(
            provider, account, vocab_size, self.layout, end_tokens
        )
        if len(self._maps) > self.limit:
            self._maps.popitem(last=False)
        return made

"""Exact one-sided tests and multiple-testing corrections (no scipy).

``binomial_sf(h, n, p)`` is P(X >= h) for X ~ Binomial(n, p), summed exactly
in log space (log-gamma coefficients, log-sum-exp), so it neither overflows nor
underflows: ``log10`` values far below 1e-300 are still reported.
``log_weighted_sf`` is the exact tail of a weighted sum of binomials (positions
with different null hit rates, :class:`WeightedTest`), computed under an
exponentially tilted null so that it stays exact in the far tail too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


def _log_pmf(k: int, n: int, log_p: float, log_q: float, log_n_fact: float) -> float:
    return log_n_fact - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p + (n - k) * log_q


def _log_sum(terms_max: float, total: float) -> float:
    return terms_max + math.log(total)


def log_binomial_sf(h: int, n: int, p: float) -> float:
    """Natural log of P(X >= h), X ~ Binomial(n, p)."""
    if h <= 0:
        return 0.0
    if h > n:
        return -math.inf
    if p <= 0:
        return -math.inf
    if p >= 1:
        return 0.0
    log_p, log_q, log_n_fact = math.log(p), math.log1p(-p), math.lgamma(n + 1)
    if h > n * p:
        # upper tail, terms decrease from k = h on: sum until they stop mattering
        first = _log_pmf(h, n, log_p, log_q, log_n_fact)
        total = 0.0
        for k in range(h, n + 1):
            term = _log_pmf(k, n, log_p, log_q, log_n_fact) - first
            total += math.exp(term)
            if term < -50:
                break
        return _log_sum(first, total)
    # the lower tail is the small one: P(X >= h) = 1 - P(X <= h - 1)
    first = _log_pmf(h - 1, n, log_p, log_q, log_n_fact)
    total = 0.0
    for k in range(h - 1, -1, -1):
        term = _log_pmf(k, n, log_p, log_q, log_n_fact) - first
        total += math.exp(term)
        if term < -50:
            break
    lower = math.exp(_log_sum(first, total))
    return math.log(max(0.0, 1.0 - lower)) if lower < 1.0 else -math.inf


def binomial_sf(h: int, n: int, p: float) -> float:
    return math.exp(log_binomial_sf(h, n, p))


@dataclass(frozen=True, slots=True)
class BinomialTest:
    """Hits ``h`` among ``n`` scored positions against a null hit rate ``p0``."""

    hits: int
    n: int
    p0: float = 0.5

    @property
    def z(self) -> float:
        if self.n == 0:
            return 0.0
        return (self.hits - self.p0 * self.n) / math.sqrt(self.n * self.p0 * (1 - self.p0))

    @property
    def log10_p(self) -> float:
        return log_binomial_sf(self.hits, self.n, self.p0) / math.log(10)

    @property
    def p_value(self) -> float:
        return binomial_sf(self.hits, self.n, self.p0)

    def as_dict(self) -> dict[str, float | int]:
        return {
            "hits": self.hits,
            "scored": self.n,
            "hit_rate": round(self.hits / self.n, 4) if self.n else 0.0,
            "z": round(self.z, 3),
            "p_value": self.p_value,
            "log10_p": round(self.log10_p, 3),
        }


def bonferroni(p_values: list[float]) -> list[float]:
    m = len(p_values)
    return [min(1.0, p * m) for p in p_values]


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def adjust(p_values: list[float], method: str) -> list[float]:
    if method == "bonferroni":
        return bonferroni(p_values)
    if method == "holm":
        return holm(p_values)
    raise ValueError(f"unknown correction {method!r}; expected holm or bonferroni")


# ----------------------------------------------------------------------------- weighted test


def hit_weight(k: int) -> int:
    """The weight of a hit at a position with ``k`` interchangeable forms: ``round(2 log2 k)``, 2 to 5.

    A hit where the null hit rate is 1/k is worth about log2(k) bits, so it
    counts for more; integer weights keep the null distribution on a lattice,
    where it can be computed exactly.
    """
    return min(5, max(2, round(2 * math.log2(max(2, k)))))


_TRIM = 45.0  # pmf terms below e^-45 of a class's largest term are dropped (relative error < 1e-17)


def _log_binomial_pmf_vector(n: int, p: float) -> tuple[int, np.ndarray]:
    """(lowest count kept, log pmf of Binomial(n, p) on the counts where it is not negligible)."""
    if p <= 0.0:
        return 0, np.zeros(1)
    if p >= 1.0:
        return n, np.zeros(1)
    counts = np.arange(n + 1, dtype=float)
    log_pmf = (
        math.lgamma(n + 1)
        - _lgamma(counts + 1)
        - _lgamma(n - counts + 1)
        + counts * math.log(p)
        + (n - counts) * math.log1p(-p)
    )
    keep = np.nonzero(log_pmf >= log_pmf.max() - _TRIM)[0]
    lo, hi = int(keep[0]), int(keep[-1])
    return lo, log_pmf[lo : hi + 1]


_lgamma = np.vectorize(math.lgamma, otypes=[float])


def _tilted(p: float, w: int, theta: float) -> float:
    """P(hit) under the exponentially tilted null: p e^{θw} / (1 - p + p e^{θw}), computed stably."""
    return 1.0 / (1.0 + (1.0 - p) / p * math.exp(-theta * w))


def _log_mgf(classes: tuple[tuple[int, float, int], ...], theta: float) -> float:
    """log E[e^{θS}] under the null: Σ n log(1 - p + p e^{θw})."""
    return sum(n * (theta * w + math.log(p + (1.0 - p) * math.exp(-theta * w))) for n, p, w in classes)


def _tilted_mean(classes: tuple[tuple[int, float, int], ...], theta: float) -> float:
    return sum(n * w * _tilted(p, w, theta) for n, p, w in classes)


@lru_cache(maxsize=65536)
def log_weighted_sf(s: int, classes: tuple[tuple[int, float, int], ...]) -> float:
    """Natural log of P(S >= s) for S = Σ_c w_c·Binomial(n_c, p_c), exactly (no normal approximation).

    ``classes`` are ``(n, p, w)`` triples. The distribution is computed under
    an exponentially tilted null whose mean is ``s`` (the tilted classes are
    binomials again), where it is concentrated near ``s`` and can be convolved
    in floating point without underflow; P(S >= s) = M(θ) Σ_{t>=s} e^{-θt}
    P_θ(S = t). This keeps tails far below 1e-300 exact in log space.
    """
    classes = tuple(c for c in classes if c[0] > 0)
    if s <= 0 or not classes:
        return 0.0 if s <= 0 else -math.inf
    top = sum(n * w for n, _, w in classes)
    if s > top:
        return -math.inf
    if len({w for _, _, w in classes}) == 1 and len({p for _, p, _ in classes}) == 1:
        n, p, w = sum(c[0] for c in classes), classes[0][1], classes[0][2]
        return log_binomial_sf(-(-s // w), n, p)
    if s == top:
        return sum(n * math.log(p) for n, p, _ in classes)
    theta = 0.0
    if _tilted_mean(classes, 0.0) < s:
        low, high = 0.0, 1.0
        while _tilted_mean(classes, high) < s and high < 1e4:
            low, high = high, high * 2
        for _ in range(80):
            middle = (low + high) / 2
            if _tilted_mean(classes, middle) < s:
                low = middle
            else:
                high = middle
        theta = low
    total: np.ndarray | None = None
    offset = 0
    for n, p, w in classes:
        lo, log_pmf = _log_binomial_pmf_vector(n, _tilted(p, w, theta))
        lattice = np.zeros((len(log_pmf) - 1) * w + 1)
        lattice[::w] = np.exp(log_pmf - log_pmf.max())
        lattice *= 1.0 / lattice.sum()
        offset += lo * w
        total = lattice if total is None else np.convolve(total, lattice)
    assert total is not None
    start = max(0, s - offset)
    if start >= len(total):
        return -math.inf
    tail = total[start:]
    steps = np.arange(len(tail), dtype=float) + (offset + start - s)
    terms = tail * np.exp(-theta * steps)
    mass = float(terms.sum())
    if mass <= 0.0:
        return -math.inf
    return min(0.0, _log_mgf(classes, theta) - theta * s + math.log(mass))


class _WeightedTail:
    """The z-score, exact tail and report of a weighted hit count S against its null, given by the
    subclass as ``score`` and ``_null()`` ``(scored, p, weight)`` triples (plus ``hits`` and ``n``)."""

    __slots__ = ()

    @property
    def hits(self) -> int:
        raise NotImplementedError

    @property
    def n(self) -> int:
        raise NotImplementedError

    @property
    def score(self) -> int:
        raise NotImplementedError

    def _null(self) -> tuple[tuple[int, float, int], ...]:
        raise NotImplementedError

    @property
    def z(self) -> float:
        null = self._null()
        mean = sum(n * p * w for n, p, w in null)
        var = sum(n * p * (1 - p) * w * w for n, p, w in null)
        return (self.score - mean) / math.sqrt(var) if var else 0.0

    @property
    def log10_p(self) -> float:
        return log_weighted_sf(self.score, self._null()) / math.log(10)

    @property
    def p_value(self) -> float:
        return math.exp(log_weighted_sf(self.score, self._null()))

    def as_dict(self) -> dict[str, float | int]:
        return {
            "hits": self.hits,
            "scored": self.n,
            "hit_rate": round(self.hits / self.n, 4) if self.n else 0.0,
            "score": self.score,
            "z": round(self.z, 3),
            "p_value": self.p_value,
            "log10_p": round(self.log10_p, 3),
        }


@dataclass(frozen=True, slots=True)
class WeightedTest(_WeightedTail):
    """Hits at positions whose null hit rates differ (1/k for a group of k forms), scored with weights.

    ``classes`` are ``(k, scored, hits)`` triples. The statistic is
    S = Σ hit_weight(k)·hits_k and the p-value its exact null tail; with only
    two-form positions it is the plain binomial test.
    """

    classes: tuple[tuple[int, int, int], ...]

    @classmethod
    def of(cls, positions: dict[int, list[int]]) -> WeightedTest:
        """From ``{k: [scored, hits]}``."""
        return cls(tuple(sorted((k, n, h) for k, (n, h) in positions.items() if n)))

    @property
    def hits(self) -> int:
        return sum(h for _, _, h in self.classes)

    @property
    def n(self) -> int:
        return sum(n for _, n, _ in self.classes)

    @property
    def score(self) -> int:
        return sum(hit_weight(k) * h for k, _, h in self.classes)

    def _null(self) -> tuple[tuple[int, float, int], ...]:
        return tuple((n, 1.0 / k, hit_weight(k)) for k, n, _ in self.classes)


@dataclass(frozen=True, slots=True)
class WeightedBinomialTest(_WeightedTail):
    """Hits among positions of one null hit rate ``p0``, each hit counted with a fixed integer weight.

    ``classes`` are ``(weight, scored, hits)`` triples. Each scored position is a hit with
    probability exactly ``p0`` under the null hypothesis, independently of its weight (the weights
    come from the text, not from the key), so S = Σ weight·hits_w has the exact null tail
    :func:`log_weighted_sf`; with every weight 1 it is the plain binomial test.
    """

    classes: tuple[tuple[int, int, int], ...]
    p0: float

    @property
    def hits(self) -> int:
        return sum(h for _, _, h in self.classes)

    @property
    def n(self) -> int:
        return sum(n for _, n, _ in self.classes)

    @property
    def score(self) -> int:
        return sum(w * h for w, _, h in self.classes)

    def _null(self) -> tuple[tuple[int, float, int], ...]:
        return tuple((n, self.p0, w) for w, n, _ in self.classes if n)

"""Exact one-sided binomial tests and multiple-testing corrections (no scipy).

``binomial_sf(h, n, p)`` is P(X >= h) for X ~ Binomial(n, p), summed exactly
in log space (log-gamma coefficients, log-sum-exp), so it neither overflows nor
underflows: ``log10`` values far below 1e-300 are still reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


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

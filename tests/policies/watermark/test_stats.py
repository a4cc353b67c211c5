"""The exact binomial and weighted tails and the multiple-testing corrections."""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.watermark.stats import (
    BinomialTest,
    WeightedTest,
    binomial_sf,
    bonferroni,
    hit_weight,
    holm,
    log_binomial_sf,
    log_weighted_sf,
)


@given(st.integers(0, 60), st.integers(0, 60), st.sampled_from([0.5, 0.25, 0.1, 0.9]))
def test_binomial_tail_matches_exact_fractions(h: int, n: int, p: float) -> None:
    q = Fraction(p)
    exact = sum(math.comb(n, k) * q**k * (1 - q) ** (n - k) for k in range(max(h, 0), n + 1))
    assert math.isclose(binomial_sf(h, n, p), float(exact), rel_tol=1e-9, abs_tol=1e-300)


def test_tiny_p_values_stay_finite_in_log_space() -> None:
    assert binomial_sf(5000, 5000, 0.5) == 0.0  # below the float range...
    assert math.isclose(log_binomial_sf(5000, 5000, 0.5) / math.log(10), -5000 * math.log10(2), rel_tol=1e-12)
    test = BinomialTest(10, 10)
    assert test.p_value == 2**-10 and math.isclose(test.z, math.sqrt(10))


def test_holm_and_bonferroni() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    assert bonferroni(p) == [0.04, 0.16, 0.12, 0.02]
    assert holm(p) == [0.03, 0.06, 0.06, 0.02]


def _brute_weighted_sf(s: int, classes: list[tuple[int, int, int]]) -> Fraction:
    """P(S >= s), S = Σ w·Binomial(n, 1/k), by enumerating the distribution with fractions."""
    dist = {0: Fraction(1)}
    for n, k, w in classes:
        p = Fraction(1, k)
        for _ in range(n):
            step: dict[int, Fraction] = {}
            for total, mass in dist.items():
                step[total] = step.get(total, Fraction(0)) + mass * (1 - p)
                step[total + w] = step.get(total + w, Fraction(0)) + mass * p
            dist = step
    return sum((m for t, m in dist.items() if t >= s), Fraction(0))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 9), st.sampled_from([2, 3, 4, 5])), min_size=1, max_size=3), st.data()
)
def test_weighted_tail_is_exact(raw: list[tuple[int, int]], data: st.DataObject) -> None:
    classes = [(n, k, hit_weight(k)) for n, k in raw]
    top = sum(n * w for n, _, w in classes)
    s = data.draw(st.integers(0, top + 1))
    exact = _brute_weighted_sf(s, classes)
    got = log_weighted_sf(s, tuple((n, 1 / k, w) for n, k, w in classes))
    if exact == 0:
        assert got == -math.inf
    else:
        assert math.isclose(math.exp(got), float(exact), rel_tol=1e-9)


def test_weighted_test_matches_binomial_with_two_forms_and_counts_bits() -> None:
    two = WeightedTest.of({2: [30, 24]})
    assert math.isclose(two.log10_p, BinomialTest(24, 30).log10_p, rel_tol=1e-12)
    # ten hits at four-form positions are twenty bits; the tail stays finite far below 1e-300
    assert math.isclose(WeightedTest.of({4: [10, 10]}).log10_p, -20 * math.log10(2), rel_tol=1e-9)
    big = WeightedTest.of({2: [4000, 4000], 3: [500, 500], 4: [300, 300]})
    expected = -(4000 * math.log10(2) + 500 * math.log10(3) + 300 * math.log10(4))
    assert math.isclose(big.log10_p, expected, rel_tol=1e-9)
    mixed = WeightedTest.of({2: [4000, 2300], 3: [500, 200], 4: [300, 100]})
    assert -60 < mixed.log10_p < -10 and mixed.z > 5

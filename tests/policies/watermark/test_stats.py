"""The exact binomial tail and the multiple-testing corrections."""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from policies.watermark.stats import BinomialTest, binomial_sf, bonferroni, holm, log_binomial_sf


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

"""Keyed noise and grid rounding of single logprob values."""

from __future__ import annotations

import statistics

import pytest

from policies.logprobs.values import Coarsener

KEY = b"a-test-key-of-some-length"


def test_exact_without_grid_or_noise() -> None:
    coarsener = Coarsener(top_k=5)
    assert coarsener.value(-1.2345678901234, 3, " the") == -1.2345678901234
    assert coarsener.value(None, 0, "x") is None


def test_grid_rounds_and_stays_non_positive() -> None:
    coarsener = Coarsener(top_k=5, grid=0.5)
    assert coarsener.value(-1.26, 0, "a") == -1.5
    assert coarsener.value(-0.2, 0, "a") == 0.0
    assert coarsener.value(-0.0001, 0, "a") == 0.0
    assert str(coarsener.value(-0.2, 0, "a")) == "0.0"  # not -0.0
    assert coarsener.value(-9999.0, 0, "a") == -9999.0  # OpenAI's "not in the top 20" sentinel


def test_non_numbers_are_refused() -> None:
    with pytest.raises(ValueError, match="not a number"):
        Coarsener(top_k=1, grid=0.5).value("-1.0", 0, "a")


def test_noise_is_keyed_deterministic_and_context_bound() -> None:
    one = Coarsener(top_k=5, noise_scale=0.5, key=KEY, context=b"acct\x1fprompt")
    again = Coarsener(top_k=5, noise_scale=0.5, key=KEY, context=b"acct\x1fprompt")
    assert one.noise(3, " cat") == again.noise(3, " cat")  # repeats cannot be averaged
    assert one.noise(3, " cat") != one.noise(4, " cat")
    assert one.noise(3, " cat") != one.noise(3, " dog")
    other_account = Coarsener(top_k=5, noise_scale=0.5, key=KEY, context=b"acct2\x1fprompt")
    other_key = Coarsener(top_k=5, noise_scale=0.5, key=b"another-secret-key", context=b"acct\x1fprompt")
    assert other_account.noise(3, " cat") != one.noise(3, " cat")
    assert other_key.noise(3, " cat") != one.noise(3, " cat")


def test_noise_has_the_configured_spread() -> None:
    coarsener = Coarsener(top_k=5, noise_scale=0.5, key=KEY, context=b"c")
    draws = [coarsener.noise(position, "t") for position in range(4000)]
    assert abs(statistics.fmean(draws)) < 0.03
    assert 0.46 < statistics.pstdev(draws) < 0.54


def test_noise_then_grid() -> None:
    coarsener = Coarsener(top_k=5, grid=0.25, noise_scale=0.3, key=KEY, context=b"c")
    value = coarsener.value(-2.0, 7, " x")
    assert value == round(value / 0.25) * 0.25 and value <= 0
    assert value == coarsener.value(-2.0, 7, " x")

"""The distribution-shift statistic: the null's draws, evaluated together, give each draw's own MMD."""

from __future__ import annotations

import numpy as np

from policies.detector.mmd import PROJECTED, ReferenceWindow, _kernel_mean


def test_the_stacked_evaluation_is_each_samples_own_mmd() -> None:
    rng = np.random.default_rng(5)
    window = ReferenceWindow()
    for row in rng.standard_normal((300, PROJECTED)):
        window.add(row.astype(np.float16))
    assert window.shift(rng.standard_normal((8, PROJECTED)).astype(np.float16)) is not None  # refreshed
    sample, gamma = window._sample, window._gamma
    assert sample is not None
    stack = (rng.standard_normal((5, 9, PROJECTED)) + 0.5).astype(np.float32)  # shifted away
    stack[3] = sample[:9]  # one drawn from the reference itself: its MMD is small, not zero
    expected = [
        _kernel_mean(x, x, gamma) + _kernel_mean(sample, sample, gamma) - 2.0 * _kernel_mean(x, sample, gamma)
        for x in stack
    ]
    got = window._mmds(stack)
    assert got.shape == (5,)
    assert np.allclose(got, expected, rtol=1e-4, atol=1e-6)
    assert got[3] < min(np.delete(got, 3))

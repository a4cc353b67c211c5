"""Distribution shift of one account's queries against a benign reference window (kernel MMD).

The reference window is a ring of query embeddings from accounts at ``none`` whose queries carried
no extraction meaning; each account adds only a few of its queries (its first ones, then one in
:data:`REFERENCE_EVERY`), so one busy customer cannot become the reference. An account keeps its last
:data:`ACCOUNT_SAMPLES` query embeddings. Both are stored projected to :data:`PROJECTED` dimensions
(a fixed Gaussian projection, which keeps distances within a few percent) in float16: 2 KB an account.

The statistic is the (biased) squared maximum mean discrepancy with a Gaussian kernel whose width
is the median distance within the reference (the usual heuristic). It is compared with its own null
distribution: the MMD of random subsets of the reference, of the account's sample size, against the
reference. ``shift`` is 0 up to the null's 95th percentile and 1 at twice it: 1 says the account's
queries are unlike benign traffic, 0 that they could have been drawn from it.
"""

from __future__ import annotations

import numpy as np

from policies.detector.embedding import DIM

PROJECTED = 64
ACCOUNT_SAMPLES = 16
MIN_ACCOUNT_SAMPLES = 6
REFERENCE_SIZE = 512
MIN_REFERENCE = 64
REFERENCE_EVERY = 8  # after its first 4 benign queries, an account adds one in this many
_NULL_DRAWS = 40
_SUBSAMPLE = 128  # reference rows the account's sample is compared with

_PROJECTION = (np.random.default_rng(20260).standard_normal((DIM, PROJECTED)) / np.sqrt(PROJECTED)).astype(
    np.float32
)


def project(vector: np.ndarray) -> np.ndarray:
    """The stored form of a query embedding (float16, :data:`PROJECTED` dimensions)."""
    return (vector @ _PROJECTION).astype(np.float16)


def _kernel_mean(a: np.ndarray, b: np.ndarray, gamma: float) -> float:
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return float(np.exp(-gamma * np.maximum(sq, 0.0)).mean())


class ReferenceWindow:
    """The benign reference: a ring of projected embeddings and the statistics derived from it."""

    def __init__(self, size: int = REFERENCE_SIZE, seed: int = 1) -> None:
        self._ring = np.zeros((size, PROJECTED), dtype=np.float16)
        self._count = 0
        self._size = size
        self._rng = np.random.default_rng(seed)
        self._stale = True
        self._sample: np.ndarray | None = None
        self._gamma = 1.0
        self._yy = 0.0
        self._null: dict[int, float] = {}

    def __len__(self) -> int:
        return min(self._count, self._size)

    def add(self, vector: np.ndarray) -> None:
        """Add one projected benign query embedding (the oldest goes when the ring is full)."""
        self._ring[self._count % self._size] = vector
        self._count += 1
        if self._count % 64 == 0 or self._count == MIN_REFERENCE:
            self._stale = True

    @property
    def ready(self) -> bool:
        return len(self) >= MIN_REFERENCE

    def _refresh(self) -> None:
        rows = self._ring[: len(self)].astype(np.float32)
        take = min(len(rows), _SUBSAMPLE)
        sample = rows[self._rng.choice(len(rows), take, replace=False)]
        sq = (sample * sample).sum(1)[:, None] + (sample * sample).sum(1)[None, :] - 2.0 * (sample @ sample.T)
        median = float(np.median(sq[np.triu_indices(take, 1)]))
        self._gamma = 1.0 / max(median, 1e-6)
        self._sample = sample
        self._yy = _kernel_mean(sample, sample, self._gamma)
        self._null = {}
        self._stale = False

    def _mmd(self, x: np.ndarray) -> float:
        return float(self._mmds(x[None])[0])

    def _mmds(self, draws: np.ndarray) -> np.ndarray:
        """The squared MMD against the reference's sample of each of a stack of samples, shape
        ``(draws, n, dim)``, in one evaluation: the null's 40 draws were 80 small kernel evaluations,
        each paying numpy's call overhead."""
        assert self._sample is not None
        y, gamma = self._sample, self._gamma
        norms = (draws * draws).sum(2)
        within = norms[:, :, None] + norms[:, None, :] - 2.0 * (draws @ draws.transpose(0, 2, 1))
        across = norms[:, :, None] + (y * y).sum(1)[None, None, :] - 2.0 * (draws @ y.T)
        xx = np.exp(-gamma * np.maximum(within, 0.0)).mean((1, 2))
        xy = np.exp(-gamma * np.maximum(across, 0.0)).mean((1, 2))
        return xx + self._yy - 2.0 * xy

    def _null_quantile(self, n: int) -> float:
        """The 95th percentile of the MMD of ``n`` reference queries against the reference."""
        quantile = self._null.get(n)
        if quantile is None:
            rows = self._ring[: len(self)].astype(np.float32)
            pick = self._rng.choice
            draws = rows[np.stack([pick(len(rows), n, replace=False) for _ in range(_NULL_DRAWS)])]
            quantile = self._null[n] = max(float(np.quantile(self._mmds(draws), 0.95)), 1e-6)
        return quantile

    def shift(self, samples: np.ndarray) -> float | None:
        """How far an account's projected query embeddings are from the reference, in [0, 1].

        None while the reference or the account's sample is too small to tell.
        """
        if not self.ready or len(samples) < MIN_ACCOUNT_SAMPLES:
            return None
        if self._stale or self._sample is None:
            self._refresh()
        x = samples.astype(np.float32)
        mmd = self._mmd(x)
        null = self._null_quantile(len(x))
        return float(min(1.0, max(0.0, (mmd - null) / null)))

"""The SVD step of Carlini et al. (2024) §4: logit vectors span an h-dimensional subspace.

Stack N logit vectors (rows) over a token set S (columns), each relative to one
reference token so that the softmax's per-prompt constant cancels. With
N, |S| > h the matrix has rank h; its singular values drop by many orders of
magnitude after the h-th. The estimate is the position of the largest drop
(ratio of consecutive singular values) of the doubly centred matrix, searched
over the first 90%: the smallest singular values of a near-square noisy matrix
fall towards zero (Marchenko-Pastur edge), which is no hidden dimension.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HiddenDimension:
    estimate: int  # 0 when there was nothing to decompose
    gap: float  # s[h-1] / s[h]: how sharp the drop is (1e10 for exact logits, ~1 for noise)
    singular_values: np.ndarray
    rows_used: int


def hidden_dimension(logits: np.ndarray) -> HiddenDimension:
    """Estimate h from a (prompts x tokens) matrix; rows with missing values (NaN) are left out."""
    complete = logits[~np.isnan(logits).any(axis=1)] if logits.size else logits
    complete = complete[:, np.abs(complete).max(axis=0) > 0] if complete.size else complete  # the reference
    if complete.shape[0] < 4 or complete.shape[1] < 4:
        return HiddenDimension(0, 1.0, np.zeros(0), int(complete.shape[0]))
    # Row centring removes the softmax/reference offset (a rank-one term), column centring the mean logit.
    centred = complete - complete.mean(axis=1, keepdims=True)
    centred = centred - centred.mean(axis=0, keepdims=True)
    singular = np.linalg.svd(centred, compute_uv=False)
    rank_bound = min(centred.shape) - 2  # centring removes two dimensions
    usable = singular[: max(2, rank_bound - rank_bound // 10)]
    floor = max(float(usable[0]) * 1e-15, 1e-300)
    ratios = usable[:-1] / np.maximum(usable[1:], floor)
    index = int(np.argmax(ratios))
    return HiddenDimension(index + 1, float(ratios[index]), singular, int(complete.shape[0]))


def subspace_residual(logits: np.ndarray, true_rows: np.ndarray, dimension: int) -> float:
    """How far the true output-layer rows (tokens x hidden) lie outside the recovered subspace.

    Carlini et al. recover W only up to an invertible linear map: the top
    ``dimension`` right singular vectors of the logit matrix should span the
    columns of ``true_rows``. Returns the relative least-squares residual
    (about 1e-13 for an exact recovery, near 1 for none).
    """
    complete = logits[~np.isnan(logits).any(axis=1)]
    if complete.shape[0] < dimension or dimension <= 0:
        return 1.0
    _, _, vt = np.linalg.svd(complete, full_matrices=False)
    basis = vt[:dimension].T  # tokens x dimension
    fitted = basis @ (basis.T @ true_rows)
    return float(np.linalg.norm(true_rows - fitted) / np.linalg.norm(true_rows))

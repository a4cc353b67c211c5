"""The robustness attacker of the watermark benchmarks and tests: random token deletions and replacements."""

from __future__ import annotations

import random
from collections.abc import Sequence


def edit(ids: Sequence[int], rate: float, rng: random.Random, vocab_size: int) -> list[int]:
    """Each token deleted (half the time) or replaced by a random id below ``vocab_size`` with
    probability ``rate``."""
    out = []
    for token in ids:
        if rng.random() < rate:
            if rng.random() < 0.5:
                out.append(rng.randrange(vocab_size))
            continue
        out.append(token)
    return out

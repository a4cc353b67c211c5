"""Coarsening of logprob values: keep the top alternatives, add keyed noise, round to a grid.

``Coarsener`` is built once per exchange. Its noise is a pseudo-random function
of (secret key, account, prompt hash, position, token): HMAC-SHA256 gives 64
bits that Box-Muller turns into one standard normal draw, scaled. Nothing in
the context depends on sampling parameters (``logit_bias``, ``temperature``,
``n``, ``seed``), so a caller cannot get a fresh draw for the same quantity by
varying them, and a repeated query gets the same draw, so averaging repeats
removes nothing. The same (position, token) gets the same value whether it is
the sampled token or an alternative, so the two stay consistent.
"""

from __future__ import annotations

import hmac
import math
from typing import Any

# OpenAI reports -9999.0 for a sampled token outside the top 20; it carries no information to hide.
SENTINEL_FLOOR = -9000.0
_TWO_POW_32 = float(2**32)


class Coarsener:
    """Turns one exchange's upstream logprob values into what the client may see."""

    __slots__ = ("_context", "_key", "grid", "noise_scale", "top_k")

    def __init__(
        self,
        *,
        top_k: int,
        grid: float = 0.0,
        noise_scale: float = 0.0,
        key: bytes | None = None,
        context: bytes = b"",
    ) -> None:
        self.top_k = top_k
        self.grid = grid
        self.noise_scale = noise_scale if key else 0.0
        self._key = key if key and noise_scale > 0 else None
        self._context = context

    @property
    def changes_values(self) -> bool:
        return self.grid > 0 or self._key is not None

    def noise(self, position: int, token: str) -> float:
        """The keyed noise for ``token`` at ``position`` (0 without a key)."""
        if self._key is None:
            return 0.0
        message = b"%b\x1f%d\x1f%b" % (self._context, position, token.encode("utf-8", "surrogatepass"))
        digest = hmac.digest(
            self._key, message, "sha256"
        )  # one-shot C HMAC: several times faster than .copy()
        u1 = (int.from_bytes(digest[:4], "big") + 1) / (_TWO_POW_32 + 1)
        u2 = int.from_bytes(digest[4:8], "big") / _TWO_POW_32
        return self.noise_scale * math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)

    def value(self, logprob: Any, position: int, token: Any) -> Any:
        """The client's view of one logprob. Non-numbers are refused (the stream fails closed)."""
        if logprob is None:
            return None
        if not isinstance(logprob, int | float) or isinstance(logprob, bool):
            raise ValueError(f"logprob is not a number: {logprob!r}")
        if logprob <= SENTINEL_FLOOR or not self.changes_values:
            return logprob
        shown = float(logprob)
        if self._key is not None:
            shown += self.noise(position, token if isinstance(token, str) else str(token))
        if self.grid > 0:
            shown = round(round(shown / self.grid) * self.grid, 10)
        return min(shown, 0.0) + 0.0  # logprobs are <= 0; "+ 0.0" turns -0.0 into 0.0

    def keep(self, count: int) -> int:
        return min(count, self.top_k)

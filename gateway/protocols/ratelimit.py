"""The rate-limit headers clients expect, in the format of the API they call.

OpenAI (chat, completions, responses): ``x-ratelimit-limit-requests`` /
``-tokens``: the limit per minute; ``x-ratelimit-remaining-*``: what is left
after this request's reservation; ``x-ratelimit-reset-*``: the time until the
limit is back to full, written as a Go duration the way OpenAI writes it ("1s",
"6m0s", "20ms", "1h2m3.5s").

Anthropic (messages): ``anthropic-ratelimit-requests-limit`` / ``-remaining`` /
``-reset`` and the same for ``tokens``, the reset being the RFC 3339 time at
which the limit is back to full ("2026-12-03T10:41:07Z", rounded up to the
second).
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime


def go_duration(micros: int) -> str:
    """Format a duration like Go's ``time.Duration.String`` at millisecond resolution."""
    millis = max(0, (micros + 999) // 1000)
    if millis == 0:
        return "0s"
    if millis < 1000:
        return f"{millis}ms"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, ms = divmod(rest, 1000)
    text = f"{seconds}.{ms:03d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text


@functools.cache
def _names(template: str, kind: str) -> tuple[str, str, str]:
    """The three header names of ``kind``, built once: a held stream's headers share them."""
    return tuple(template.format(field=field, kind=kind) for field in ("limit", "remaining", "reset"))  # type: ignore[return-value]


def rate_limit_headers(kind: str, limit: int, remaining: int, reset_us: int) -> dict[str, str]:
    """The three headers of one kind ("requests" or "tokens")."""
    limit_name, remaining_name, reset_name = _names("x-ratelimit-{field}-{kind}", kind)
    return {
        limit_name: str(limit),
        remaining_name: str(max(0, remaining)),
        reset_name: go_duration(reset_us),
    }


def anthropic_rate_limit_headers(
    kind: str, limit: int, remaining: int, reset_us: int, now: float
) -> dict[str, str]:
    """The three ``anthropic-ratelimit-{kind}-*`` headers; ``now`` is the Unix time in seconds."""
    full_at = datetime.fromtimestamp(math.ceil(now + max(0, reset_us) / 1_000_000), UTC)
    limit_name, remaining_name, reset_name = _names("anthropic-ratelimit-{kind}-{field}", kind)
    return {
        limit_name: str(limit),
        remaining_name: str(max(0, remaining)),
        reset_name: full_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }

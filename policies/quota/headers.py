"""The rate-limit headers clients expect, in OpenAI's format.

``x-ratelimit-limit-requests`` / ``-tokens``: the limit per minute;
``x-ratelimit-remaining-*``: what is left after this request's reservation;
``x-ratelimit-reset-*``: the time until the limit is back to full, written as
a Go duration the way OpenAI writes it ("1s", "6m0s", "20ms", "1h2m3.5s").
"""

from __future__ import annotations


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


def rate_limit_headers(kind: str, limit: int, remaining: int, reset_us: int) -> dict[str, str]:
    """The three headers of one kind ("requests" or "tokens")."""
    return {
        f"x-ratelimit-limit-{kind}": str(limit),
        f"x-ratelimit-remaining-{kind}": str(max(0, remaining)),
        f"x-ratelimit-reset-{kind}": go_duration(reset_us),
    }

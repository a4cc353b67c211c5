"""OpenAI's x-ratelimit-* header format."""

from __future__ import annotations

import pytest

from policies.quota.headers import go_duration, rate_limit_headers


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (0, "0s"),
        (1, "1ms"),  # rounded up: never tell a client to come back early
        (20_000, "20ms"),
        (999_000, "999ms"),
        (1_000_000, "1s"),
        (1_500_000, "1.5s"),
        (59_999_000, "59.999s"),
        (60_000_000, "1m0s"),
        (360_000_000, "6m0s"),
        (3_723_500_000, "1h2m3.5s"),
        (86_400_000_000, "24h0m0s"),
    ],
)
def test_go_duration(micros: int, text: str) -> None:
    assert go_duration(micros) == text


def test_headers_of_one_kind() -> None:
    assert rate_limit_headers("tokens", 40000, -5, 6_000_000) == {
        "x-ratelimit-limit-tokens": "40000",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "6s",
    }

"""The rate-limit header formats: OpenAI's x-ratelimit-* and Anthropic's anthropic-ratelimit-*."""

from __future__ import annotations

import pytest

from gateway.protocols.ratelimit import anthropic_rate_limit_headers, go_duration, rate_limit_headers


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


def test_anthropic_headers_give_the_time_the_limit_is_full_again() -> None:
    now = 1_764_756_000.25  # 2025-12-03T10:00:00.25Z
    assert anthropic_rate_limit_headers("requests", 60, 3, 6_000_001, now) == {
        "anthropic-ratelimit-requests-limit": "60",
        "anthropic-ratelimit-requests-remaining": "3",
        "anthropic-ratelimit-requests-reset": "2025-12-03T10:00:07Z",  # 6.25 s later, rounded up
    }
    tokens = anthropic_rate_limit_headers("tokens", 10, -1, 0, now)
    assert tokens["anthropic-ratelimit-tokens-remaining"] == "0"

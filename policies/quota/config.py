"""The quota policy's config schema. Every limit is optional (``null`` = no limit of that kind)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from gateway.plugins import (
    FALSE_IS_STRICTER,
    HIGHER_IS_STRICTER,
    KEYED,
    LOWER_IS_STRICTER,
    PolicyConfig,
    Ranked,
)

Limit = Annotated[int, Field(gt=0, le=10**12)]
# A distinct-prompt set holds up to `limit` hashes per account in the store: keep it bounded.
DistinctLimit = Annotated[int, Field(gt=0, le=1_000_000)]
# A limit a risk level can only lower; null (no limit) is the loosest.
Cap = Annotated[Limit | None, LOWER_IS_STRICTER]


class ModelLimits(PolicyConfig):
    """Limits for the models matching one glob, on top of the account-wide ones."""

    requests_per_minute: Cap = None
    tokens_per_minute: Cap = None
    tokens_per_day: Cap = None
    max_concurrent: Cap = None


class QuotaConfig(PolicyConfig):
    """Per-account limits; a tier sets them, ``accounts.<id>.overrides.quota`` and risk levels adjust them.

    Token limits count input + output tokens. Minute limits are rates, day
    limits budgets (GCRA: see ``policies.quota.limiter``).
    """

    requests_per_minute: Cap = None
    tokens_per_minute: Cap = None
    tokens_per_day: Cap = None
    max_concurrent: Cap = None
    models: Annotated[dict[str, ModelLimits], KEYED] = Field(
        default_factory=dict,
        max_length=64,
        description="model glob -> extra limits; the first glob that matches the request's model applies",
    )
    reasoning_tokens_per_day: Cap = None
    logprob_responses_per_day: Cap = None
    distinct_prompts_per_day: Annotated[DistinctLimit | None, LOWER_IS_STRICTER] = None
    # The reservations below are charged up front and reconciled later: a larger one is stricter.
    default_max_output_tokens: Annotated[Limit, HIGHER_IS_STRICTER] = Field(
        4096, description="output tokens reserved when the request sets no max_tokens"
    )
    input_safety_factor: Annotated[float, HIGHER_IS_STRICTER] = Field(
        1.25, ge=1.0, le=10.0, description="multiplies the UTF-8 bytes / 4 input-token estimate"
    )
    media_token_estimate: Annotated[Limit, HIGHER_IS_STRICTER] = Field(
        1600, description="tokens reserved per image, audio or file part of the input"
    )
    # a slot left by a dead replica holds its place longer: stricter
    concurrency_slot_ttl_seconds: Annotated[float, HIGHER_IS_STRICTER] = Field(
        960.0,
        gt=0,
        le=86_400,
        description="an unreleased slot (its replica died) frees itself then; keep above upstream timeouts",
    )
    on_backend_error: Annotated[Literal["fail_open", "fail_closed"], Ranked("fail_open", "fail_closed")] = (
        "fail_open"
    )
    prompt_hash_key_env: str | None = Field(
        None, description="env var with a secret that keys the distinct-prompt hashes (HMAC)"
    )
    # prompt_hash_key_env declares no order: a risk level may not change the key of the distinct-prompt set
    rate_limit_headers: Annotated[bool, FALSE_IS_STRICTER] = True  # off tells the client less

    @field_validator("models")
    @classmethod
    def _globs(cls, value: dict[str, ModelLimits]) -> dict[str, ModelLimits]:
        for pattern in value:
            if not pattern or len(pattern) > 200:
                raise ValueError("model globs must be 1 to 200 characters")
        return value

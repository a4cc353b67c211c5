"""The quota policy's config schema. Every limit is optional (``null`` = no limit of that kind)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from gateway.plugins.base import PolicyConfig

Limit = Annotated[int, Field(gt=0, le=10**12)]
# A distinct-prompt set holds up to `limit` hashes per account in the store: keep it bounded.
DistinctLimit = Annotated[int, Field(gt=0, le=1_000_000)]


class ModelLimits(PolicyConfig):
    """Limits for the models matching one glob, on top of the account-wide ones."""

    requests_per_minute: Limit | None = None
    tokens_per_minute: Limit | None = None
    tokens_per_day: Limit | None = None
    max_concurrent: Limit | None = None


class QuotaConfig(PolicyConfig):
    """Per-account limits; a tier sets them, ``accounts.<id>.overrides.quota`` and risk levels adjust them.

    Token limits count input + output tokens. Minute limits are rates, day
    limits budgets (GCRA: see ``policies.quota.limiter``).
    """

    requests_per_minute: Limit | None = None
    tokens_per_minute: Limit | None = None
    tokens_per_day: Limit | None = None
    max_concurrent: Limit | None = None
    models: dict[str, ModelLimits] = Field(
        default_factory=dict,
        max_length=64,
        description="model glob -> extra limits; the first glob that matches the request's model applies",
    )
    reasoning_tokens_per_day: Limit | None = None
    logprob_responses_per_day: Limit | None = None
    distinct_prompts_per_day: DistinctLimit | None = None
    default_max_output_tokens: Limit = Field(
        4096, description="output tokens reserved when the request sets no max_tokens"
    )
    input_safety_factor: float = Field(
        1.25, ge=1.0, le=10.0, description="multiplies the UTF-8 bytes / 4 input-token estimate"
    )
    media_token_estimate: Limit = Field(
        1600, description="tokens reserved per image, audio or file part of the input"
    )
    concurrency_slot_ttl_seconds: float = Field(
        960.0,
        gt=0,
        le=86_400,
        description="an unreleased slot (its replica died) frees itself then; keep above upstream timeouts",
    )
    on_backend_error: Literal["fail_open", "fail_closed"] = "fail_open"
    prompt_hash_key_env: str | None = Field(
        None, description="env var with a secret that keys the distinct-prompt hashes (HMAC)"
    )
    rate_limit_headers: bool = True

    @field_validator("models")
    @classmethod
    def _globs(cls, value: dict[str, ModelLimits]) -> dict[str, ModelLimits]:
        for pattern in value:
            if not pattern or len(pattern) > 200:
                raise ValueError("model globs must be 1 to 200 characters")
        return value

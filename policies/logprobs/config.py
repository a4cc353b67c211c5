"""The ``logprobs`` policy's config schema (typed, bounded; unknown keys refused)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from gateway.plugins import (
    FALSE_IS_STRICTER,
    HIGHER_IS_STRICTER,
    LOWER_IS_STRICTER,
    NEUTRAL,
    PolicyConfig,
    Ranked,
)


class NoiseConfig(PolicyConfig):
    """Keyed noise added to every returned logprob before rounding.

    The noise is a pseudo-random function (HMAC-SHA256) of a secret read from
    the env var ``key_env``, the account (unless ``per_account`` is false) and
    the context (prompt hash, token position, token): identical on repeats, so
    averaging repeated queries does not remove it.
    """

    scale: Annotated[float, HIGHER_IS_STRICTER] = Field(
        gt=0, le=10, description="standard deviation of the Gaussian noise, in nats"
    )
    key_env: Annotated[str, NEUTRAL] = Field("DISTILLGUARD_LOGPROB_NOISE_KEY", min_length=1)
    # No order: per-account noise differs between sybil accounts (averaging across them), shared
    # noise is the same for all; neither is simply stricter, so a risk level may not change it.
    per_account: bool = True


class LogitBiasConfig(PolicyConfig):
    """What to do with ``logit_bias`` (chat and legacy completions).

    ``mode``: ``allow``; ``exclusive`` refuses it in a request that also asks
    for logprobs of any kind (the published extraction attacks need both);
    ``refuse`` refuses it always (the logprob-free attack needs only the bias).
    When allowed, ``max_entries`` and ``max_magnitude`` bound it.
    """

    mode: Annotated[Literal["allow", "exclusive", "refuse"], Ranked("allow", "exclusive", "refuse")] = (
        "exclusive"
    )
    max_entries: Annotated[int | None, LOWER_IS_STRICTER] = Field(None, ge=0, le=100_000)
    max_magnitude: Annotated[float | None, LOWER_IS_STRICTER] = Field(None, ge=0, le=100)


class LogprobsConfig(PolicyConfig):
    """Limits on logprob-bearing requests and coarsening of the logprobs returned.

    ``on_excess`` decides what happens to a request parameter over a limit:
    ``reject`` (HTTP 400 naming the parameter and the limit) or ``clamp``
    (lowered to the limit, or removed, and the request goes on).
    """

    on_excess: Annotated[Literal["clamp", "reject"], Ranked("clamp", "reject")] = "reject"
    logprobs: Annotated[bool, FALSE_IS_STRICTER] = Field(
        True, description="whether logprobs may be requested at all"
    )
    top_k: Annotated[int, LOWER_IS_STRICTER] = Field(
        5, ge=0, le=20, description="alternatives per position; 0 = the sampled token only"
    )
    grid: Annotated[float, HIGHER_IS_STRICTER] = Field(
        0.0, ge=0, le=10, description="round logprobs to multiples of this (nats); 0 = exact"
    )
    noise: NoiseConfig | None = None  # null (no noise) is the loosest; otherwise by its fields
    max_n: Annotated[int, LOWER_IS_STRICTER] = Field(8, ge=1, le=128, description="cap on n and best_of")
    echo_with_logprobs: Annotated[bool, FALSE_IS_STRICTER] = False
    prompt_logprobs: Annotated[bool, FALSE_IS_STRICTER] = Field(
        False, description="vLLM's prompt_logprobs extension"
    )
    logprob_token_ids: Annotated[bool, FALSE_IS_STRICTER] = Field(
        False, description="vLLM's logprob_token_ids extension"
    )
    logit_bias: LogitBiasConfig = LogitBiasConfig()

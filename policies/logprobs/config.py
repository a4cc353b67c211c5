"""The ``logprobs`` policy's config schema (typed, bounded; unknown keys refused)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.plugins.base import PolicyConfig


class NoiseConfig(PolicyConfig):
    """Keyed noise added to every returned logprob before rounding.

    The noise is a pseudo-random function (HMAC-SHA256) of a secret read from
    the env var ``key_env``, the account (unless ``per_account`` is false) and
    the context (prompt hash, token position, token): identical on repeats, so
    averaging repeated queries does not remove it.
    """

    scale: float = Field(gt=0, le=10, description="standard deviation of the Gaussian noise, in nats")
    key_env: str = Field("DISTILLGUARD_LOGPROB_NOISE_KEY", min_length=1)
    per_account: bool = True


class LogitBiasConfig(PolicyConfig):
    """What to do with ``logit_bias`` (chat and legacy completions).

    ``mode``: ``allow``; ``exclusive`` refuses it in a request that also asks
    for logprobs of any kind (the published extraction attacks need both);
    ``refuse`` refuses it always (the logprob-free attack needs only the bias).
    When allowed, ``max_entries`` and ``max_magnitude`` bound it.
    """

    mode: Literal["allow", "exclusive", "refuse"] = "exclusive"
    max_entries: int | None = Field(None, ge=0, le=100_000)
    max_magnitude: float | None = Field(None, ge=0, le=100)


class LogprobsConfig(PolicyConfig):
    """Limits on logprob-bearing requests and coarsening of the logprobs returned.

    ``on_excess`` decides what happens to a request parameter over a limit:
    ``reject`` (HTTP 400 naming the parameter and the limit) or ``clamp``
    (lowered to the limit, or removed, and the request goes on).
    """

    on_excess: Literal["clamp", "reject"] = "reject"
    logprobs: bool = Field(True, description="whether logprobs may be requested at all")
    top_k: int = Field(5, ge=0, le=20, description="alternatives per position; 0 = the sampled token only")
    grid: float = Field(0.0, ge=0, le=10, description="round logprobs to multiples of this (nats); 0 = exact")
    noise: NoiseConfig | None = None
    max_n: int = Field(8, ge=1, le=128, description="cap on n and best_of")
    echo_with_logprobs: bool = False
    prompt_logprobs: bool = Field(False, description="vLLM's prompt_logprobs extension")
    logprob_token_ids: bool = Field(False, description="vLLM's logprob_token_ids extension")
    logit_bias: LogitBiasConfig = LogitBiasConfig()

"""Request side of the ``logprobs`` policy: clamp or reject logprob-bearing parameters.

The request is read through the protocol adapter's view (``exchange.request``): what it asks of
log-probabilities (sampled tokens, alternatives, prompt tokens, echo, named token ids), how many
samples, what logit bias. Each check either passes, clamps (lowers or removes the parameter,
recorded as ``clamped``) or rejects (a :class:`PolicyViolationError` naming the parameter and the
tier's limit, recorded as ``rejected``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.plugins import LogprobsAsk, PolicyViolationError, RequestView
from policies.logprobs.config import LogprobsConfig

Clamp = Callable[[], None]
Report = Callable[[str, str], None]  # (param, "clamped" | "rejected")


class RequestLimiter:
    """Applies one config's request limits to one request, in place."""

    def __init__(self, config: LogprobsConfig, tier: str, policy: str, report: Report) -> None:
        self.config = config
        self.tier = tier
        self.policy = policy
        self.report = report
        self.edited = False  # whether apply() changed the request (every change goes through _excess)

    def apply(self, request: RequestView) -> LogprobsAsk:
        """Apply the limits; returns what the request asks of log-probabilities once they apply."""
        asked = request.logprobs  # read once: the checks below edit different parameters
        self.edited = False
        self._output(request, asked)
        self._prompt(request, asked)
        self._samples(request)
        self._logit_bias(request)
        return request.logprobs if self.edited else asked

    def _excess(self, param: str, message: str, clamp: Clamp) -> None:
        if self.config.on_excess == "reject":
            self.report(param, "rejected")
            raise PolicyViolationError(message, param=param, policy=self.policy)
        clamp()
        self.edited = True
        self.report(param, "clamped")

    def _cap(self, param: str, value: int, limit: int, lower: Callable[[int], None]) -> None:
        """An integer parameter above ``limit``: lowered to it, or rejected."""
        if value > limit:
            message = f"{param}={value} is above the limit of {limit} for tier '{self.tier}'."
            self._excess(param, message, lambda: lower(limit))

    def _forbidden(self, param: str, what: str, clamp: Clamp) -> None:
        self._excess(param, f"{what} is not allowed for tier '{self.tier}'.", clamp)

    # -- checks -------------------------------------------------------------------------------------

    def _output(self, request: RequestView, asked: LogprobsAsk) -> None:
        if asked.sampled and not self.config.logprobs:
            self._forbidden(request.logprobs_param, "logprobs", request.drop_sampled_logprobs)
            return  # the echo of the prompt carries no log-probabilities any more
        if asked.sampled:
            self._cap(
                request.alternatives_param, asked.alternatives, self.config.top_k, request.set_alternatives
            )
        if asked.echo and not self.config.echo_with_logprobs:
            self._forbidden("echo", "echo together with logprobs", request.drop_echo)

    def _prompt(self, request: RequestView, asked: LogprobsAsk) -> None:
        config = self.config
        if asked.prompt_logprobs is not None:
            if not (config.logprobs and config.prompt_logprobs):
                self._forbidden("prompt_logprobs", "prompt_logprobs", request.drop_prompt_logprobs)
            else:
                self._cap(
                    "prompt_logprobs", asked.prompt_logprobs, config.top_k, request.set_prompt_alternatives
                )
        if asked.token_ids and not (config.logprobs and config.logprob_token_ids):
            self._forbidden("logprob_token_ids", "logprob_token_ids", request.drop_token_ids)

    def _samples(self, request: RequestView) -> None:
        for param, value in list(request.sample_counts()):

            def lower(limit: int, param: str = param) -> None:
                request.set_sample_count(param, limit)

            self._cap(param, value, self.config.max_n, lower)

    def _logit_bias(self, request: RequestView) -> None:
        bias = request.logit_bias
        if not bias:
            return
        rules = self.config.logit_bias
        if rules.mode == "refuse":
            self._forbidden("logit_bias", "logit_bias", request.drop_logit_bias)
            return
        if rules.mode == "exclusive" and request.logprobs.any:
            # Clamping keeps the caller's bias (it shapes the text) and drops the side channel.
            self._excess(
                "logit_bias",
                f"logit_bias cannot be combined with logprobs for tier '{self.tier}'.",
                request.drop_logprobs,
            )
        if rules.max_entries is not None and len(bias) > rules.max_entries:
            limit = rules.max_entries
            self._excess(
                "logit_bias",
                f"logit_bias has {len(bias)} entries, above the limit of {limit} for tier '{self.tier}'.",
                lambda: request.set_logit_bias(dict(list(bias.items())[:limit])),
            )
        if rules.max_magnitude is not None:
            cap = rules.max_magnitude
            current = request.logit_bias or {}
            biggest = max((abs(v) for v in current.values() if isinstance(v, int | float)), default=0.0)
            if biggest > cap:
                self._excess(
                    "logit_bias",
                    f"logit_bias values reach {biggest:g}, above the limit of {cap:g} in magnitude "
                    f"for tier '{self.tier}'.",
                    lambda: request.set_logit_bias({k: _clip(v, cap) for k, v in current.items()}),
                )


def _clip(value: Any, cap: float) -> Any:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return value
    clipped = max(-cap, min(cap, value))
    return int(clipped) if isinstance(value, int) and clipped == int(clipped) else clipped

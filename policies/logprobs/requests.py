"""Request side of the ``logprobs`` policy: clamp or reject logprob-bearing parameters.

Parameters, by operation (OpenAI unless marked):

* chat.completions: ``logprobs`` (bool), ``top_logprobs`` (0-20), ``n``, ``logit_bias``,
  vLLM ``prompt_logprobs`` and ``logprob_token_ids``;
* completions: ``logprobs`` (int: alternatives per position), ``echo``, ``n``, ``best_of``,
  ``logit_bias``, vLLM ``prompt_logprobs`` and ``logprob_token_ids``;
* responses: ``top_logprobs`` and ``include: ["message.output_text.logprobs"]``.

Each check either passes, clamps (lowers or removes the parameter, recorded as
``clamped``) or rejects (a :class:`PolicyViolationError` naming the parameter
and the tier's limit, recorded as ``rejected``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.plugins import PolicyViolationError
from policies.logprobs.config import LogprobsConfig

RESPONSES_LOGPROBS_INCLUDE = "message.output_text.logprobs"

Clamp = Callable[[], None]
Report = Callable[[str, str], None]  # (param, "clamped" | "rejected")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class RequestLimiter:
    """Applies one config's request limits to one request body, in place."""

    def __init__(self, config: LogprobsConfig, tier: str, policy: str, report: Report) -> None:
        self.config = config
        self.tier = tier
        self.policy = policy
        self.report = report

    def apply(self, operation: str, body: dict[str, Any]) -> None:
        if operation == "chat.completions":
            self._chat(body)
        elif operation == "completions":
            self._completions(body)
        elif operation == "responses":
            self._responses(body)
            return
        else:
            return
        self._vllm_extensions(body)
        self._samples(body, operation)
        self._logit_bias(body, operation)

    def _excess(self, param: str, message: str, clamp: Clamp) -> None:
        if self.config.on_excess == "reject":
            self.report(param, "rejected")
            raise PolicyViolationError(message, param=param, policy=self.policy)
        clamp()
        self.report(param, "clamped")

    def _cap(self, body: dict[str, Any], param: str, limit: int) -> None:
        """An integer parameter above ``limit``: lowered to it, or rejected."""
        value = _int(body.get(param))
        if value is not None and value > limit:

            def clamp() -> None:
                body[param] = limit

            message = f"{param}={value} is above the limit of {limit} for tier '{self.tier}'."
            self._excess(param, message, clamp)

    def _forbidden(self, param: str, what: str, clamp: Clamp) -> None:
        self._excess(param, f"{what} is not allowed for tier '{self.tier}'.", clamp)

    # -- per operation ---------------------------------------------------------------------------

    def _chat(self, body: dict[str, Any]) -> None:
        top = _int(body.get("top_logprobs"))
        if (body.get("logprobs") is True or (top or 0) > 0) and not self.config.logprobs:
            self._forbidden("logprobs", "logprobs", lambda: _pop(body, "logprobs", "top_logprobs"))
            return
        if top is not None:
            self._cap(body, "top_logprobs", self.config.top_k)

    def _completions(self, body: dict[str, Any]) -> None:
        count = _int(body.get("logprobs"))
        if count is not None:
            if not self.config.logprobs:
                self._forbidden("logprobs", "logprobs", lambda: _pop(body, "logprobs"))
            else:
                self._cap(body, "logprobs", self.config.top_k)
        echo = body.get("echo") is True and _int(body.get("logprobs")) is not None
        if echo and not self.config.echo_with_logprobs:
            self._forbidden("echo", "echo together with logprobs", lambda: _pop(body, "echo"))

    def _responses(self, body: dict[str, Any]) -> None:
        include = body.get("include")
        wanted = isinstance(include, list) and RESPONSES_LOGPROBS_INCLUDE in include
        top = _int(body.get("top_logprobs"))
        if (wanted or top is not None) and not self.config.logprobs:

            def clamp() -> None:
                if isinstance(include, list):
                    body["include"] = [item for item in include if item != RESPONSES_LOGPROBS_INCLUDE]
                body.pop("top_logprobs", None)

            self._forbidden("include" if wanted else "top_logprobs", "logprobs", clamp)
            return
        if top is not None:
            self._cap(body, "top_logprobs", self.config.top_k)

    def _vllm_extensions(self, body: dict[str, Any]) -> None:
        prompt = body.get("prompt_logprobs")
        if prompt is not None:
            if not (self.config.logprobs and self.config.prompt_logprobs):
                self._forbidden("prompt_logprobs", "prompt_logprobs", lambda: _pop(body, "prompt_logprobs"))
            else:
                self._cap(body, "prompt_logprobs", self.config.top_k)
        if body.get("logprob_token_ids") is not None and not (
            self.config.logprobs and self.config.logprob_token_ids
        ):
            self._forbidden("logprob_token_ids", "logprob_token_ids", lambda: _pop(body, "logprob_token_ids"))

    def _samples(self, body: dict[str, Any], operation: str) -> None:
        params = ("n", "best_of") if operation == "completions" else ("n",)
        for param in params:
            self._cap(body, param, self.config.max_n)

    def _logit_bias(self, body: dict[str, Any], operation: str) -> None:
        bias = body.get("logit_bias")
        if not isinstance(bias, dict) or not bias:
            return
        rules = self.config.logit_bias
        if rules.mode == "refuse":
            self._forbidden("logit_bias", "logit_bias", lambda: _pop(body, "logit_bias"))
            return
        if rules.mode == "exclusive" and logprobs_requested(operation, body):
            # Clamping keeps the caller's bias (it shapes the text) and drops the side channel.
            self._excess(
                "logit_bias",
                f"logit_bias cannot be combined with logprobs for tier '{self.tier}'.",
                lambda: _drop_logprobs(operation, body),
            )
        if rules.max_entries is not None and len(bias) > rules.max_entries:
            limit = rules.max_entries
            self._excess(
                "logit_bias",
                f"logit_bias has {len(bias)} entries, above the limit of {limit} for tier '{self.tier}'.",
                lambda: _set_bias(body, dict(list(bias.items())[:limit])),
            )
        if rules.max_magnitude is not None:
            cap = rules.max_magnitude
            current = body.get("logit_bias") or {}
            biggest = max((abs(v) for v in current.values() if isinstance(v, int | float)), default=0.0)
            if biggest > cap:
                self._excess(
                    "logit_bias",
                    f"logit_bias values reach {biggest:g}, above the limit of {cap:g} in magnitude "
                    f"for tier '{self.tier}'.",
                    lambda: _set_bias(body, {k: _clip(v, cap) for k, v in current.items()}),
                )


def logprobs_requested(operation: str, body: dict[str, Any]) -> bool:
    """Whether ``body`` asks for logprobs of any kind (sampled, alternatives, prompt, by token id)."""
    if body.get("prompt_logprobs") is not None or body.get("logprob_token_ids") is not None:
        return True
    if operation == "chat.completions":
        return body.get("logprobs") is True or (_int(body.get("top_logprobs")) or 0) > 0
    if operation == "completions":
        return _int(body.get("logprobs")) is not None
    if operation == "responses":
        include = body.get("include")
        return _int(body.get("top_logprobs")) is not None or (
            isinstance(include, list) and RESPONSES_LOGPROBS_INCLUDE in include
        )
    return False


def _drop_logprobs(operation: str, body: dict[str, Any]) -> None:
    _pop(body, "logprobs", "top_logprobs", "prompt_logprobs", "logprob_token_ids")
    if operation == "completions":
        body.pop("echo", None)


def _pop(body: dict[str, Any], *keys: str) -> None:
    for key in keys:
        body.pop(key, None)


def _set_bias(body: dict[str, Any], bias: dict[str, Any]) -> None:
    body["logit_bias"] = bias


def _clip(value: Any, cap: float) -> Any:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return value
    clipped = max(-cap, min(cap, value))
    return int(clipped) if isinstance(value, int) and clipped == int(clipped) else clipped

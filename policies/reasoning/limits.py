"""Request-side caps on reasoning parameters, per tier: clamp them or reject the request.

Parameters (checked against the SDK types):

* effort: chat ``reasoning_effort`` and OpenRouter-style chat ``reasoning.effort``; Responses
  ``reasoning.effort``; Anthropic ``output_config.effort`` (whose lowest value is ``low``);
* budget: Anthropic ``thinking.budget_tokens`` (``type: "enabled"``; ``adaptive`` thinking has no
  budget, so with a budget cap it is clamped to ``enabled`` or rejected) and OpenRouter-style
  chat ``reasoning.max_tokens``;
* ``include: ["reasoning.encrypted_content"]`` on Responses.

A limit applies to what a request asks for: a request that names no effort gets the upstream's
default (setting one would break models that take no reasoning parameter).
"""

from __future__ import annotations

from typing import Any

from gateway.plugins import Exchange, PolicyViolationError
from policies.reasoning.config import EFFORT_ORDER, Effort, ReasoningLimits

ENCRYPTED_INCLUDE = "reasoning.encrypted_content"
ANTHROPIC_MIN_BUDGET = 1024  # thinking_config_enabled_param.py: "Must be >= 1024"
_ANTHROPIC_EFFORTS = ("low", "medium", "high", "xhigh", "max")


class LimitEnforcer:
    """Applies one tier's :class:`ReasoningLimits` to a request body; returns the actions taken."""

    def __init__(self, limits: ReasoningLimits, policy: str, tier: str) -> None:
        self.limits = limits
        self.policy = policy
        self.tier = tier

    def apply(self, exchange: Exchange) -> list[str]:
        body = exchange.body
        actions: list[str] = []
        operation = exchange.operation.name
        if operation == "chat.completions":
            self._effort(body, "reasoning_effort", "reasoning_effort", actions)
            reasoning = body.get("reasoning")
            if isinstance(reasoning, dict):
                self._effort(reasoning, "effort", "reasoning.effort", actions)
                self._budget(reasoning, "max_tokens", "reasoning.max_tokens", actions)
        elif operation == "responses":
            reasoning = body.get("reasoning")
            if isinstance(reasoning, dict):
                self._effort(reasoning, "effort", "reasoning.effort", actions)
            self._include(body, actions)
        elif operation == "messages":
            config = body.get("output_config")
            if isinstance(config, dict):
                self._effort(config, "effort", "output_config.effort", actions, floor="low")
            self._thinking(body, actions)
        return actions

    def _reject(self, message: str, param: str) -> PolicyViolationError:
        return PolicyViolationError(message, param=param, policy=self.policy, code="reasoning_limit")

    def _effort(
        self, holder: dict[str, Any], key: str, param: str, actions: list[str], floor: Effort | None = None
    ) -> None:
        limit = self.limits.max_reasoning_effort
        value = holder.get(key)
        if limit is None or not isinstance(value, str):
            return
        rank = EFFORT_ORDER.index(value) if value in EFFORT_ORDER else len(EFFORT_ORDER)
        if rank <= EFFORT_ORDER.index(limit):
            return
        if self.limits.on_limit == "reject":
            raise self._reject(
                f"{param} '{value}' is above the limit of tier '{self.tier}': at most '{limit}'.", param
            )
        target: Effort = limit
        if floor is not None and EFFORT_ORDER.index(limit) < EFFORT_ORDER.index(floor):
            target = floor  # the API's lowest value; the tier's limit is below what the API offers
        holder[key] = target
        actions.append(f"clamped:{param}")

    def _budget(self, holder: dict[str, Any], key: str, param: str, actions: list[str]) -> None:
        limit = self.limits.max_budget_tokens
        value = holder.get(key)
        if limit is None or not isinstance(value, int) or isinstance(value, bool) or value <= limit:
            return
        if self.limits.on_limit == "reject":
            raise self._reject(
                f"{param} {value} is above the limit of tier '{self.tier}': at most {limit}.", param
            )
        holder[key] = limit
        actions.append(f"clamped:{param}")

    def _thinking(self, body: dict[str, Any], actions: list[str]) -> None:
        limit = self.limits.max_budget_tokens
        thinking = body.get("thinking")
        if limit is None or not isinstance(thinking, dict):
            return
        kind = thinking.get("type")
        if kind == "enabled":
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int) or isinstance(budget, bool) or budget <= limit:
                return
            if self.limits.on_limit == "reject":
                raise self._reject(
                    f"thinking.budget_tokens {budget} is above the limit of tier '{self.tier}': "
                    f"at most {limit}.",
                    "thinking.budget_tokens",
                )
        elif kind == "adaptive":
            if self.limits.on_limit == "reject":
                raise self._reject(
                    f"thinking.type 'adaptive' has no token budget, and tier '{self.tier}' allows at most "
                    f'{limit} thinking tokens: use {{"type": "enabled", "budget_tokens": N}} with '
                    f"N <= {limit}.",
                    "thinking.type",
                )
        else:
            return
        max_tokens = body.get("max_tokens")
        budget = limit
        if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
            budget = min(budget, max_tokens - 1)  # the API wants budget_tokens < max_tokens
        if budget < ANTHROPIC_MIN_BUDGET:
            body["thinking"] = {"type": "disabled"}
            actions.append("clamped:thinking.disabled")
            return
        clamped: dict[str, Any] = {"type": "enabled", "budget_tokens": budget}
        if "display" in thinking:
            clamped["display"] = thinking["display"]
        body["thinking"] = clamped
        actions.append("clamped:thinking.budget_tokens")

    def _include(self, body: dict[str, Any], actions: list[str]) -> None:
        include = body.get("include")
        if self.limits.allow_encrypted_include or not isinstance(include, list):
            return
        if ENCRYPTED_INCLUDE not in include:
            return
        if self.limits.on_limit == "reject":
            raise self._reject(
                f"include '{ENCRYPTED_INCLUDE}' is not allowed on tier '{self.tier}'.", "include"
            )
        body["include"] = [entry for entry in include if entry != ENCRYPTED_INCLUDE]
        actions.append("clamped:include")

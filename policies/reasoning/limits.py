"""Request-side caps on reasoning parameters, per tier: clamp them or reject the request.

What a request sets is read through the adapter's view (``exchange.request``): its effort
parameters (each with the lowest value its API accepts), its reasoning budget (a token count, or
a mode with none) and whether it asks for the provider's encrypted reasoning; which parameters
those are in each API is the view's knowledge (gateway/protocols/*_view.py).

A limit applies to what a request asks for: a request that names no effort gets the upstream's
default (setting one would break models that take no reasoning parameter).
"""

from __future__ import annotations

from gateway.plugins import EffortAsk, Exchange, PolicyViolationError, RequestView
from policies.reasoning.config import EFFORT_ORDER, ReasoningLimits

_RANK: dict[str, int] = {effort: rank for rank, effort in enumerate(EFFORT_ORDER)}


class LimitEnforcer:
    """Applies one tier's :class:`ReasoningLimits` to a request; returns the actions taken.

    The request is read and edited through the adapter's view (``exchange.request``): which effort
    parameters it sets, its reasoning budget, whether it asks for encrypted reasoning. The API's own
    rules for lowering a budget (a minimum, a relation to the output cap) are the adapter's.
    """

    def __init__(self, limits: ReasoningLimits, policy: str, tier: str) -> None:
        self.limits = limits
        self.policy = policy
        self.tier = tier

    def apply(self, exchange: Exchange) -> list[str]:
        request = exchange.request
        actions: list[str] = []
        for ask in request.reasoning_efforts():
            self._effort(request, ask, actions)
        self._budget(request, actions)
        self._include(request, actions)
        return actions

    def _reject(self, message: str, param: str) -> PolicyViolationError:
        return PolicyViolationError(message, param=param, policy=self.policy, code="reasoning_limit")

    def _effort(self, request: RequestView, ask: EffortAsk, actions: list[str]) -> None:
        limit = self.limits.max_reasoning_effort
        if limit is None or _RANK.get(ask.value, len(_RANK)) <= _RANK[limit]:
            return
        if self.limits.on_limit == "reject":
            raise self._reject(
                f"{ask.param} '{ask.value}' is above the limit of tier '{self.tier}': at most '{limit}'.",
                ask.param,
            )
        target: str = limit
        if ask.lowest is not None and _RANK[limit] < _RANK.get(ask.lowest, 0):
            target = ask.lowest  # the API's lowest value; the tier's limit is below what the API offers
        request.set_reasoning_effort(ask.param, target)
        actions.append(f"clamped:{ask.param}")

    def _budget(self, request: RequestView, actions: list[str]) -> None:
        limit = self.limits.max_budget_tokens
        ask = request.reasoning_budget
        if limit is None or ask is None or (ask.tokens is not None and ask.tokens <= limit):
            return
        if self.limits.on_limit == "reject":
            if ask.tokens is None:
                raise self._reject(
                    f"{ask.param} has no token budget, and tier '{self.tier}' allows at most {limit} "
                    f"reasoning tokens: set a budget of at most {limit}.",
                    ask.param,
                )
            raise self._reject(
                f"{ask.param} {ask.tokens} is above the limit of tier '{self.tier}': at most {limit}.",
                ask.param,
            )
        actions.append(request.limit_reasoning_budget(limit))

    def _include(self, request: RequestView, actions: list[str]) -> None:
        if self.limits.allow_encrypted_include or not request.asks_encrypted_reasoning:
            return
        if self.limits.on_limit == "reject":
            param = request.encrypted_reasoning_param
            raise self._reject(
                f"{param} '{request.encrypted_reasoning_value}' is not allowed on tier '{self.tier}'.", param
            )
        request.drop_encrypted_reasoning()
        actions.append(f"clamped:{request.encrypted_reasoning_param}")

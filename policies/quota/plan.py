"""Turning a config and a request into the checks of one decision, and a finished exchange into refunds.

A *check* is one limit applied to one request: what it is called (the metric
label and the words of a 429 message), its store key and its op. The decision
runs all of a request's checks in one script; the reservation remembers them
so that the settlement touches exactly what the decision charged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from gateway.plugins import Exchange
from policies.quota.config import ModelLimits, QuotaConfig
from policies.quota.limiter import (
    Decision,
    DistinctOp,
    GcraAdjust,
    GcraOp,
    Op,
    Settlement,
    SlotOp,
    SlotRelease,
    encode_decide,
)

MINUTE_US = 60 * 1_000_000.0
DAY_US = 86_400 * 1_000_000.0

LimitKind = Literal[
    "requests",
    "tokens",
    "daily_tokens",
    "concurrency",
    "reasoning_budget",
    "logprob_budget",
    "distinct_prompts",
    "model",
]
Charge = Literal["request", "tokens", "reasoning", "logprob", "slot", "prompt"]


@dataclass(slots=True)
class Check:
    limit: LimitKind  # the metric label
    what: str  # for messages: "tokens per minute"
    key: str
    op: Op
    charge: Charge  # what the op counts, which decides how it is settled
    header: Literal["requests", "tokens"] | None = None  # minute windows feed the x-ratelimit headers


@dataclass(slots=True)
class RequestCost:
    """What the policy knows about a request before forwarding it."""

    input_tokens: int
    output_tokens: int
    output_field: str  # the request field that set output_tokens (for error messages)
    model_pattern: str | None
    logprobs: bool
    prompt_hash: str | None
    slot_id: str

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def build_checks(config: QuotaConfig, cost: RequestCost, key: Callable[[str], str]) -> list[Check]:
    """The checks ``config`` imposes on a request of ``cost``; ``key(suffix)`` names a store key."""
    checks: list[Check] = []
    slot_ttl_us = config.concurrency_slot_ttl_seconds * 1_000_000
    op: Op
    _rates(checks, config, cost, key, slot_ttl_us, None)
    if cost.model_pattern is not None:
        _rates(checks, config.models[cost.model_pattern], cost, key, slot_ttl_us, cost.model_pattern)
    if config.reasoning_tokens_per_day:
        op = GcraOp(config.reasoning_tokens_per_day, DAY_US, cost.output_tokens, capped=True)
        checks.append(
            Check("reasoning_budget", "reasoning tokens per day", key("reasoning"), op, "reasoning")
        )
    if config.logprob_responses_per_day and cost.logprobs:
        op = GcraOp(config.logprob_responses_per_day, DAY_US, 1)
        checks.append(Check("logprob_budget", "responses with logprobs per day", key("lp"), op, "logprob"))
    if config.distinct_prompts_per_day and cost.prompt_hash is not None:
        op = DistinctOp(config.distinct_prompts_per_day, cost.prompt_hash, DAY_US)
        checks.append(Check("distinct_prompts", "distinct prompts per day", key("prompts"), op, "prompt"))
    return checks


def _rates(
    checks: list[Check],
    limits: QuotaConfig | ModelLimits,
    cost: RequestCost,
    key: Callable[[str], str],
    slot_ttl_us: float,
    model: str | None,
) -> None:
    prefix = f"model:{model}:" if model is not None else ""
    op: Op

    def label(kind: LimitKind) -> LimitKind:
        return "model" if model is not None else kind

    def words(text: str) -> str:
        return f"{text} for models '{model}'" if model is not None else text

    if limits.requests_per_minute:
        op = GcraOp(limits.requests_per_minute, MINUTE_US, 1)
        checks.append(
            Check(
                label("requests"),
                words("requests per minute"),
                key(prefix + "rpm"),
                op,
                "request",
                "requests",
            )
        )
    if limits.tokens_per_minute:
        op = GcraOp(limits.tokens_per_minute, MINUTE_US, cost.tokens)
        checks.append(
            Check(label("tokens"), words("tokens per minute"), key(prefix + "tpm"), op, "tokens", "tokens")
        )
    if limits.tokens_per_day:
        op = GcraOp(limits.tokens_per_day, DAY_US, cost.tokens)
        checks.append(
            Check(label("daily_tokens"), words("tokens per day"), key(prefix + "tpd"), op, "tokens")
        )
    if limits.max_concurrent:
        op = SlotOp(limits.max_concurrent, cost.slot_id, slot_ttl_us)
        checks.append(
            Check(label("concurrency"), words("concurrent requests"), key(prefix + "slots"), op, "slot")
        )


# The ARGV fields a request's own values go into (``encode_decide``: 5 fields per op after 2).
_OWN_VALUE = {"tokens": 3, "reasoning": 3, "slot": 2, "prompt": 2}


class Plan:
    """The checks of one account's requests of one shape, built once and filled in per request.

    What a request's checks are (which limits, their store keys, limits, windows, labels and
    words) depends only on the config, the account, the model pattern the request matches and
    whether it asks for logprobs and has its prompt hashed: ``build_checks`` of such a request
    with placeholder values. Per request only its own values change (its token and reasoning
    reservation, its slot id, its prompt hash), so the decision's ARGV is a copy of a template
    with those filled in (``args``), equal to ``encode_decide`` of the request's own checks.

    ``checks`` carry the placeholders: read them for what does not depend on the request (keys,
    limits, windows, charges, headers); ``checks_for`` builds a request's own, for messages.
    """

    __slots__ = ("_fills", "_template", "charges_tokens", "checks", "keys", "limits", "token_limit")

    def __init__(self, checks: list[Check]) -> None:
        self.checks = checks
        self.keys = [check.key for check in checks]
        self.limits = tuple(check.limit for check in checks)
        self._template = encode_decide([check.op for check in checks])
        self._fills = [
            (2 + 5 * index + _OWN_VALUE[check.charge], check.charge)
            for index, check in enumerate(checks)
            if check.charge in _OWN_VALUE
        ]
        token_limits = [c.op.limit for c in checks if c.charge == "tokens" and isinstance(c.op, GcraOp)]
        self.charges_tokens = bool(token_limits)
        # A request reserving more tokens than this can never fit one of its windows: refused up front.
        self.token_limit = min(token_limits, default=None)

    def args(self, cost: RequestCost) -> list[Any]:
        """The decision's ARGV for a request of ``cost``: ``encode_decide`` of its own checks."""
        args = self._template.copy()
        for index, charge in self._fills:
            if charge == "tokens":
                args[index] = cost.input_tokens + cost.output_tokens
            elif charge == "reasoning":
                args[index] = cost.output_tokens
            elif charge == "slot":
                args[index] = cost.slot_id
            else:
                args[index] = cost.prompt_hash
        return args


def plan_shape(cost: RequestCost) -> RequestCost:
    """A request of the same shape as ``cost`` with placeholder values, to build its ``Plan`` from."""
    return RequestCost(
        0, 0, "", cost.model_pattern, cost.logprobs, "" if cost.prompt_hash is not None else None, ""
    )


@dataclass(slots=True)
class Consumed:
    """What an exchange really cost, as far as the gateway can tell."""

    tokens: int
    reasoning_tokens: int
    served: bool  # a response (whole or partial) reached the client


def consumed(exchange: Exchange, reserved_tokens: int, reserved_reasoning: int) -> Consumed:
    """The real cost of a finished exchange.

    * never reached the upstream, or the upstream answered an error: nothing
      (upstream errors cost the client nothing, whatever usage they report);
    * ended normally with usage reported: the reported usage;
    * anything else (the client went away, the upstream failed mid-stream, no
      usage reported): at least the reservation. The gateway cannot know how
      much the upstream generated, and a cut connection must not be a way to
      get tokens for free.
    """
    outcome = exchange.outcome
    usage = exchange.usage
    if not outcome.upstream_reached:
        return Consumed(0, 0, served=False)
    if not outcome.streamed and outcome.error is None and outcome.status >= 400:
        return Consumed(0, 0, served=False)
    if usage.known and not outcome.aborted and outcome.error is None:
        return Consumed(usage.total_tokens, usage.reasoning_tokens, served=True)
    reported = usage.total_tokens if usage.known else 0
    reasoning = usage.reasoning_tokens if usage.known else 0
    return Consumed(max(reserved_tokens, reported), max(reserved_reasoning, reasoning), served=True)


# What a reservation keeps of one check whose charge the settlement may change: (key, charge, limit,
# window in µs, what the decision charged) of a GCRA window, or (key, "slot", slot id, 0, 0) of a
# concurrency slot. A plain tuple: a held stream keeps a few of them, not the checks, ops and results.
Pending = tuple[str, str, int | str, float, int]

_SETTLED = frozenset({"tokens", "reasoning", "logprob"})


def to_settle(checks: list[Check], decision: Decision, slot_id: str) -> tuple[Pending, ...]:
    """The checks whose charge the settlement may change, with what was charged: all a reservation keeps.

    ``slot_id``: the request's slot (``checks`` may be a plan's, whose slot ops carry a placeholder).
    A request-count or distinct-prompt charge is final once decided; dropping those checks (and the
    request's cost, prompt digest and the decision) leaves a held stream less to keep.
    """
    pending: list[Pending] = []
    for check, result in zip(checks, decision.results, strict=True):
        op = check.op
        if isinstance(op, SlotOp):
            pending.append((check.key, "slot", slot_id, 0.0, 0))
        elif isinstance(op, GcraOp) and check.charge in _SETTLED:
            pending.append((check.key, check.charge, op.limit, op.window_us, result.charged))
    return tuple(pending)


def settlements(pending: tuple[Pending, ...], used: Consumed) -> list[tuple[str, Settlement]]:
    """(key, item) pairs that turn the decision's charges (``to_settle``'s) into the real cost."""
    items: list[tuple[str, Settlement]] = []
    for key, charge, limit, window_us, charged in pending:
        if charge == "slot":
            items.append((key, SlotRelease(str(limit))))
            continue
        if charge == "tokens":
            delta = used.tokens - charged
        elif charge == "reasoning":
            delta = used.reasoning_tokens - charged
        else:  # logprob: refunded when nothing was served
            delta = 0 if used.served else -charged
        if delta:
            items.append((key, GcraAdjust(int(limit), window_us, delta)))
    return items

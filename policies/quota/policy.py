"""The quota policy: one atomic decision before forwarding, one settlement after the response.

Request phase: estimate the request's cost, build its checks (every
configured window, the concurrency slot, the model's limits, the extraction
budgets), run them in one script (one round trip on Redis), set the
``x-ratelimit-*`` headers, and either reserve or raise a 429 with Retry-After.
After-response phase (which the engine runs however the exchange ended):
reconcile the reservation with the usage the upstream reported and release
the concurrency slot, again in one script.

The policy never touches the stream (no stream filter, nothing held back):
the engine reads usage from the upstream's events before policies see them.

When the store is unreachable ``on_backend_error`` decides: ``fail_open``
admits (counted in ``distillguard_quota_backend_errors_total`` and logged at
error level, rate-limited), ``fail_closed`` answers 503. Nothing falls back
to per-replica memory. A settlement that fails leaves the reservation charged
(never a free pass) and the slot to expire.
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import logging
import os
import secrets
import time
from dataclasses import dataclass

from gateway.plugins import (
    ConfigError,
    Exchange,
    Policy,
    PolicyContext,
    PolicyViolationError,
    ProtocolAdapter,
    RateLimitError,
    ServiceUnavailableError,
    StoreUnavailableError,
    go_duration,
)
from policies.quota.config import QuotaConfig
from policies.quota.estimate import (
    estimate_input_tokens,
    output_reservation,
    prompt_digest,
)
from policies.quota.limiter import (
    DECIDE,
    SETTLE,
    Decision,
    GcraOp,
    decode_decide,
    encode_settle,
)
from policies.quota.metrics import BackendHealth, QuotaMetrics
from policies.quota.plan import (
    Check,
    Pending,
    Plan,
    RequestCost,
    build_checks,
    consumed,
    plan_shape,
    settlements,
    to_settle,
)

log = logging.getLogger("distillguard.policy.quota")

# Entries kept in the per-policy name caches (store keys per account, model patterns per model name).
CACHED_NAMES = 65_536
BUDGET_LIMITS = frozenset({"daily_tokens", "reasoning_budget", "logprob_budget", "distinct_prompts"})


# Slot ids: unique across processes and replicas (a random 64-bit prefix per process, drawn again in a
# forked child) without a call to the OS random source per request, which uuid4() makes.
_slot_ids = (secrets.token_hex(8), itertools.count())


def _new_slot_ids() -> None:
    global _slot_ids
    _slot_ids = (secrets.token_hex(8), itertools.count())


os.register_at_fork(after_in_child=_new_slot_ids)


def _next_slot_id() -> str:
    prefix, counter = _slot_ids
    return f"{prefix}{next(counter):x}"


@dataclass(slots=True)
class Reservation:
    """What the decision charged that after_response may settle, kept in ``exchange.scratch`` until
    then (for as long as a stream lasts: only the few fields the settlement reads)."""

    pending: tuple[Pending, ...]  # plan.to_settle: slots and the token charges to settle
    tokens: int  # the request's reserved tokens (RequestCost.tokens)
    reasoning: int  # the reasoning tokens charged (0 without a reasoning budget)
    counts_tokens: bool  # a token window was charged: the consumed/refunded metrics apply


class QuotaPolicy(Policy[QuotaConfig]):
    """Per-account requests, tokens, concurrency and extraction budgets, exact across replicas."""

    config_model = QuotaConfig
    shared_state_required = True

    def __init__(self, config: QuotaConfig, context: PolicyContext) -> None:
        super().__init__(config, context)
        self.metrics = QuotaMetrics(self.services.metrics)
        self.health = self.services.shared.get("quota.backend_health", BackendHealth)
        self._hash_key = b""
        self._patterns = list(config.models)
        # Per request these are the same answers: computed once per config, account and model.
        self._needs_tokens = bool(  # the reasoning budget reserves output tokens only
            config.tokens_per_minute
            or config.tokens_per_day
            or any(m.tokens_per_minute or m.tokens_per_day for m in config.models.values())
        )
        self._keys: dict[tuple[str, str], str] = {}
        self._plans: dict[tuple[str, str | None, bool, bool], Plan] = {}
        self._account_keys: dict[str, bytes] = {}
        self._model_patterns: dict[str, str | None] = {}

    async def startup(self) -> None:
        env = self.config.prompt_hash_key_env
        if env:
            secret = os.environ.get(env, "")
            if not secret:
                raise ConfigError(f"environment variable {env} (prompt_hash_key_env) is not set")
            self._hash_key = _blake2b_key(secret.encode())

    # ---- request phase -----------------------------------------------------------------------

    async def on_request(self, exchange: Exchange) -> None:
        cost = self._cost(exchange)
        plan = self._plan(exchange.account.id, cost)
        if not plan.checks:
            return
        if plan.token_limit is not None and cost.tokens > plan.token_limit:
            self._refuse_impossible(self._checks(exchange, cost), cost, exchange)
        store = self.services.store
        started = time.perf_counter()
        try:
            raw = await store.run_script(DECIDE, plan.keys, plan.args(cost))
        except StoreUnavailableError as exc:
            self.metrics.backend_seconds.labels(store.backend).observe(time.perf_counter() - started)
            self._backend_failed(exchange, exc)
            return
        self.metrics.backend_seconds.labels(store.backend).observe(time.perf_counter() - started)
        self.health.succeeded(store.backend)
        decision = decode_decide(raw)
        if self.config.rate_limit_headers:
            adapter = exchange.operation.adapter
            exchange.response_headers.update(_headers(plan.checks, decision, adapter))
        if not decision.admitted:
            self._reject(exchange, self._checks(exchange, cost), decision)
        checks = plan.checks
        reasoning = next(
            (r.charged for c, r in zip(checks, decision.results, strict=True) if c.charge == "reasoning"), 0
        )
        exchange.scratch[self.name] = Reservation(
            to_settle(checks, decision, cost.slot_id), cost.tokens, reasoning, plan.charges_tokens
        )
        self.metrics.admitted_limits(self.tier, plan.limits)
        if plan.charges_tokens:
            self.metrics.tokens.labels(self.tier, "reserved").inc(cost.tokens)

    def _checks(self, exchange: Exchange, cost: RequestCost) -> list[Check]:
        """The request's own checks (its costs in their ops), for the words of a refusal."""
        account = exchange.account.id
        return build_checks(self.config, cost, lambda suffix: self._key(account, suffix))

    def _plan(self, account: str, cost: RequestCost) -> Plan:
        """The checks of this account's requests of this shape (``Plan``), built once."""
        shape = (account, cost.model_pattern, cost.logprobs, cost.prompt_hash is not None)
        plan = self._plans.get(shape)
        if plan is None:
            plan = Plan(
                build_checks(self.config, plan_shape(cost), lambda suffix: self._key(account, suffix))
            )
            if len(self._plans) >= CACHED_NAMES:  # accounts and model names: bounded
                self._plans.clear()
            self._plans[shape] = plan
        return plan

    def _cost(self, exchange: Exchange) -> RequestCost:
        config = self.config
        request = exchange.request
        output, output_field = output_reservation(request, config.default_max_output_tokens)
        estimate = (
            estimate_input_tokens(request, config.input_safety_factor, config.media_token_estimate)
            if self._needs_tokens
            else 0
        )
        digest = (
            prompt_digest(request, self._hash_key or self._account_hash_key(exchange.account.id))
            if config.distinct_prompts_per_day
            else None
        )
        return RequestCost(
            input_tokens=estimate,
            output_tokens=output,
            output_field=output_field,
            model_pattern=self._model_pattern(exchange.model),
            logprobs=bool(config.logprob_responses_per_day) and request.logprobs.any,
            prompt_hash=digest,
            slot_id=_next_slot_id(),  # never the client's request id: a repeated id must not share a slot
        )

    def _account_hash_key(self, account: str) -> bytes:
        """The prompt-hash key of an account without ``prompt_hash_key_env``: derived once per account."""
        key = self._account_keys.get(account)
        if key is None:
            key = _blake2b_key(account.encode())
            if len(self._account_keys) >= CACHED_NAMES:
                self._account_keys.clear()
            self._account_keys[account] = key
        return key

    def _model_pattern(self, model: str | None) -> str | None:
        if model is None or not self._patterns:
            return None
        cache = self._model_patterns
        if model in cache:
            return cache[model]
        found = next((p for p in self._patterns if fnmatch.fnmatchcase(model, p)), None)
        if len(cache) >= CACHED_NAMES:  # model names are the client's: bounded
            cache.clear()
        cache[model] = found
        return found

    def _key(self, account: str, suffix: str) -> str:
        cache = self._keys
        key = cache.get((account, suffix))
        if key is None:
            # The {account} hash tag keeps all of an account's keys in one Redis Cluster slot (one script).
            tag = (
                account if "{" not in account and "}" not in account else _blake2b_key(account.encode()).hex()
            )
            key = self.services.store.key(self.name, "{" + tag + "}", suffix)
            if len(cache) >= CACHED_NAMES:
                cache.clear()
            cache[(account, suffix)] = key
        return key

    def _refuse_impossible(self, checks: list[Check], cost: RequestCost, exchange: Exchange) -> None:
        """A request that could never fit a token window gets a 400 naming the parameter, not a 429."""
        for check in checks:
            op = check.op
            if check.charge == "tokens" and isinstance(op, GcraOp) and op.cost > op.limit:
                field = cost.output_field
                if cost.input_tokens > op.limit:
                    param = exchange.request.prompt_param
                    message = (
                        f"The prompt (about {cost.input_tokens} tokens) exceeds this account's limit of "
                        f"{op.limit} {check.what}; shorten '{param}'."
                    )
                else:
                    param = field
                    message = (
                        f"The request reserves {cost.tokens} tokens (about {cost.input_tokens} input + "
                        f"{cost.output_tokens} output from '{field}'), over this account's limit of "
                        f"{op.limit} {check.what}; lower '{field}'."
                    )
                self.metrics.decision(self.tier, check.limit, self._rejected_label())
                raise PolicyViolationError(message, param=param, policy=self.name, code="request_too_large")

    def _reject(self, exchange: Exchange, checks: list[Check], decision: Decision) -> None:
        failed = [(c, r) for c, r in zip(checks, decision.results, strict=True) if not r.ok]
        label = self._rejected_label()
        for check, _ in failed:
            self.metrics.decision(self.tier, check.limit, label)
            self.record(exchange, f"{check.limit}_exceeded")
        check, result = max(failed, key=lambda pair: pair[1].retry_us)
        retry = decision.retry_us / 1_000_000
        if isinstance(check.op, GcraOp):
            detail = f"limit {check.op.limit}, remaining {result.remaining}"
            if check.charge in ("tokens", "reasoning"):
                detail += f", requested {check.op.cost}"
        else:
            detail = f"limit {check.op.limit}"
        wait = go_duration(decision.retry_us)
        message = f"Rate limit reached for {check.what} ({detail}). Please try again in {wait}."
        code = "budget_exceeded" if check.limit in BUDGET_LIMITS else "rate_limit_exceeded"
        raise RateLimitError(message, retry_after=retry, code=code)

    def _rejected_label(self) -> str:
        return "shadow_rejected" if self.mode == "shadow" else "rejected"

    def _backend_failed(self, exchange: Exchange, exc: StoreUnavailableError) -> None:
        backend = self.services.store.backend
        mode = self.config.on_backend_error
        self.metrics.backend_errors.labels(backend, mode).inc()
        self.health.failed(backend, mode, exc)
        if mode == "fail_closed":
            raise ServiceUnavailableError(
                "The quota service is temporarily unavailable; please retry shortly.",
                code="quota_backend_unavailable",
                headers={"retry-after": "1"},
            )
        self.record(exchange, "backend_fail_open")

    # ---- after response ------------------------------------------------------------------------

    async def after_response(self, exchange: Exchange) -> None:
        reservation: Reservation | None = exchange.scratch.pop(self.name, None)
        if reservation is None:
            return  # rejected, failed open, or nothing to limit
        used = consumed(exchange, reservation.tokens, reservation.reasoning)
        if reservation.counts_tokens:
            tokens = self.metrics.tokens
            tokens.labels(self.tier, "consumed").inc(used.tokens)
            tokens.labels(self.tier, "refunded").inc(max(0, reservation.tokens - used.tokens))
        items = settlements(reservation.pending, used)
        if not items:
            return
        store = self.services.store
        started = time.perf_counter()
        try:
            await store.run_script(SETTLE, [k for k, _ in items], encode_settle([i for _, i in items]))
        except StoreUnavailableError as exc:
            self.metrics.backend_errors.labels(store.backend, "settle").inc()
            self.health.failed(store.backend, "settle", exc)
        else:
            self.health.succeeded(store.backend)
        finally:
            self.metrics.backend_seconds.labels(store.backend).observe(time.perf_counter() - started)


def _headers(checks: list[Check], decision: Decision, adapter: ProtocolAdapter) -> dict[str, str]:
    """The tightest minute window of each kind (account-wide or the model's) names the headers."""
    best: dict[str, tuple[int, int, int]] = {}
    for check, result in zip(checks, decision.results, strict=True):
        if check.header is None or not isinstance(check.op, GcraOp):
            continue
        current = best.get(check.header)
        if current is None or result.remaining < current[1]:
            best[check.header] = (check.op.limit, result.remaining, result.reset_us)
    headers: dict[str, str] = {}
    now = time.time()
    for kind, (limit, remaining, reset_us) in best.items():
        headers.update(adapter.rate_limit_headers(kind, limit, remaining, reset_us, now))
    return headers


def _blake2b_key(secret: bytes) -> bytes:
    return hashlib.blake2b(secret, digest_size=32).digest()

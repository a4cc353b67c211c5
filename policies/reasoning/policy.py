"""The ``reasoning`` policy: what a client sees of the model's reasoning, in every format, streamed or not.

Phases:

* request: tier limits on reasoning parameters (limits.py); sealed reasoning in the history is
  opened and the original forwarded (history.py; whenever seal keys are available, whatever this
  tier's mode, so a conversation survives a mode change); in drop and summary modes upstreams
  whose API can return reasoning without its text are asked to (``omit_upstream_thinking``).
* response / stream: the adapter's reasoning capability rewrites its format
  (``gateway/protocols/*_reasoning.py`` say what each mode leaves there and what is held back),
  asking this policy's :class:`~policies.reasoning.withhold.Withholder` what to do.
* after response: ``distillguard_reasoning_withheld_tokens_total{mode,format}``.

Put this policy before any policy that reads or changes response text, so that none of them sees
reasoning the client may not see.
"""

from __future__ import annotations

from typing import Any, cast

from gateway.plugins import (
    Exchange,
    MalformedSealError,
    Policy,
    PolicyContext,
    PolicyViolationError,
    ReasoningRewriter,
    StreamFilter,
)
from policies.reasoning.config import ReasoningConfig
from policies.reasoning.history import HistoryError, HistoryUnsealer, malformed
from policies.reasoning.inline import ThinkSettings, think_settings
from policies.reasoning.limits import LimitEnforcer
from policies.reasoning.seal import SealKeyRing
from policies.reasoning.withhold import Ledger, Withholder


class ReasoningPolicy(Policy[ReasoningConfig]):
    """Drop, redact, summarise, seal or allow reasoning traces; cap reasoning parameters."""

    config_model = ReasoningConfig
    # Reasoning in its own parts or inline in text, and the logprobs of withheld tokens.
    needs_parts = frozenset({"text", "reasoning", "logprobs"})

    def __init__(self, config: ReasoningConfig, context: PolicyContext) -> None:
        super().__init__(config, context)
        self.keys: SealKeyRing | None = None
        self.limits = LimitEnforcer(config.limits, self.name, self.tier)
        self._think: dict[str | None, ThinkSettings | None] = {}  # model name -> its think settings
        metrics = self.services.metrics
        self._withheld = metrics.counter(
            "reasoning_withheld_tokens_total",
            "Reasoning tokens the client did not see in clear (upstream count, else estimated), "
            "by mode and format.",
            ("mode", "format"),
        )
        self._unseal_failures = metrics.counter(
            "reasoning_unseal_failures_total",
            "Sealed reasoning sent back by clients that could not be opened, by reason.",
            ("reason",),
        )

    async def startup(self) -> None:
        self.keys = SealKeyRing.from_env(self.config.seal.key_list(), required=self.config.mode == "seal")

    # -- request ---------------------------------------------------------------------------------
    async def on_request(self, exchange: Exchange) -> None:
        for action in self.limits.apply(exchange):
            self.record(exchange, action)
        if self.keys is not None:
            self._unseal(exchange)
        if self._omit_thinking() and exchange.request.hide_upstream_reasoning():
            self.record(exchange, "upstream_thinking_omitted")

    def _unseal(self, exchange: Exchange) -> None:
        assert self.keys is not None
        unsealer = HistoryUnsealer(self.keys, exchange.account.id, self.config.think_tags)
        try:
            removed = exchange.request.restore_sealed_reasoning(unsealer)
        except (HistoryError, MalformedSealError) as failure:
            # MalformedSealError: the blob opened, but not to the shape of where it was found.
            exc = failure if isinstance(failure, HistoryError) else malformed(failure.param)
            self._unseal_failures.labels(exc.reason).inc()
            self.record(exchange, f"unseal_failed:{exc.reason}")
            raise PolicyViolationError(
                exc.message, param=exc.param, policy=self.name, code="invalid_sealed_reasoning"
            ) from None
        self.record(exchange, "unsealed", unsealer.unsealed)
        self.record(exchange, "unverifiable_thinking_removed", removed)

    def _omit_thinking(self) -> bool:
        """Whether to ask the upstream for reasoning without its text (where its API can)."""
        setting = self.config.omit_upstream_thinking
        return setting == "always" or (setting == "auto" and self.config.mode in ("drop", "summary"))

    # -- response --------------------------------------------------------------------------------
    def _rewriter(self, exchange: Exchange) -> ReasoningRewriter:
        """The adapter's reasoning rewriting for this exchange, driven by this policy's treatment."""
        cfg = self.config
        ledger = exchange.scratch.setdefault(self.name, Ledger())
        model = exchange.model
        if model in self._think:
            think = self._think[model]
        else:  # once per model name (bounded: the names are the client's)
            think = think_settings(cfg.think_tags, cfg.assume_open_think, cfg.open_think_models, model)
            if len(self._think) >= 4096:
                self._think.clear()
            self._think[model] = think
        withholder = Withholder(cfg, self.keys, exchange.account.id, ledger, think)
        operation = exchange.operation
        rewriter = operation.adapter.reasoning(operation.name, withholder)
        if rewriter is None:  # fail closed: reasoning this policy cannot see must not pass
            raise ValueError(f"the {operation.name} adapter cannot rewrite reasoning")
        return rewriter

    async def on_response(self, exchange: Exchange, body: dict[str, Any]) -> None:
        if self.config.mode == "allow":
            return
        self._rewriter(exchange).rewrite_body(body)

    def stream_filter(self, exchange: Exchange) -> StreamFilter | None:
        if self.config.mode == "allow":
            return None
        # The adapter's stream is the filter itself: it has the two methods the engine calls (a
        # ReasoningStream), and a held stream keeps no wrapper and no bound methods for it.
        return cast(StreamFilter, self._rewriter(exchange).stream())

    # -- after -----------------------------------------------------------------------------------
    async def after_response(self, exchange: Exchange) -> None:
        ledger = exchange.scratch.get(self.name)
        if not isinstance(ledger, Ledger):
            return
        upstream = ledger.upstream_tokens or exchange.usage.reasoning_tokens
        for fmt, tokens in ledger.tokens_by_format(upstream).items():
            self._withheld.labels(self.config.mode, fmt).inc(tokens)
        self.record(exchange, f"withheld_{self.config.mode}", ledger.spans)
        self.record(exchange, "provider_encrypted_kept", ledger.provider_kept)
        self.record(exchange, "stray_think_close", ledger.stray_closes)

"""The ``reasoning`` policy: what a client sees of the model's reasoning, in every format, streamed or not.

Phases:

* request: tier limits on reasoning parameters (limits.py); sealed reasoning in the history is
  opened and the original forwarded (history.py; whenever seal keys are available, whatever this
  tier's mode, so a conversation survives a mode change); in drop and summary modes Anthropic
  upstreams are asked for ``display: "omitted"`` thinking (``omit_upstream_thinking``).
* response / stream: chat.py, responses.py and messages.py rewrite the formats; their module
  docstrings say what each mode leaves and what is held back.
* after response: ``distillguard_reasoning_withheld_tokens_total{mode,format}``.

Put this policy before any policy that reads or changes response text, so that none of them sees
reasoning the client may not see.
"""

from __future__ import annotations

from typing import Any

from gateway.plugins import Exchange, Policy, PolicyContext, PolicyViolationError, StreamFilter
from policies.reasoning.chat import ChatRewriter, ChatStreamFilter, think_settings
from policies.reasoning.config import ReasoningConfig
from policies.reasoning.history import HistoryError, HistoryUnsealer
from policies.reasoning.limits import LimitEnforcer
from policies.reasoning.messages import MessagesRewriter, MessagesStreamFilter, thinking_tokens
from policies.reasoning.responses import ResponsesRewriter, ResponsesStreamFilter
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
        operation = exchange.operation.name
        try:
            if operation == "chat.completions":
                unsealer.chat(exchange.body)
            elif operation == "responses":
                unsealer.responses(exchange.body)
            elif operation == "messages":
                unsealer.messages(exchange.body)
        except HistoryError as exc:
            self._unseal_failures.labels(exc.reason).inc()
            self.record(exchange, f"unseal_failed:{exc.reason}")
            raise PolicyViolationError(
                exc.message, param=exc.param, policy=self.name, code="invalid_sealed_reasoning"
            ) from None
        self.record(exchange, "unsealed", unsealer.unsealed)
        self.record(exchange, "unverifiable_thinking_removed", unsealer.removed)

    def _omit_thinking(self) -> bool:
        """Whether to ask the upstream for reasoning without its text (Anthropic's ``display: "omitted"``)."""
        setting = self.config.omit_upstream_thinking
        return setting == "always" or (setting == "auto" and self.config.mode in ("drop", "summary"))

    # -- response --------------------------------------------------------------------------------
    def _withholder(self, exchange: Exchange) -> Withholder:
        ledger = exchange.scratch.setdefault(self.name, Ledger())
        return Withholder(self.config, self.keys, exchange.account.id, ledger)

    def _chat(self, exchange: Exchange, withholder: Withholder) -> ChatRewriter:
        cfg = self.config
        think = think_settings(cfg.think_tags, cfg.assume_open_think, cfg.open_think_models, exchange.model)
        return ChatRewriter(withholder, think, chat=exchange.operation.name == "chat.completions")

    async def on_response(self, exchange: Exchange, body: dict[str, Any]) -> None:
        if self.config.mode == "allow":
            return
        withholder = self._withholder(exchange)
        operation = exchange.operation.name
        if operation in ("chat.completions", "completions"):
            self._chat(exchange, withholder).rewrite_body(body)
        elif operation == "responses":
            ResponsesRewriter(withholder).rewrite_body(body)
        elif operation == "messages":
            MessagesRewriter(withholder).rewrite_body(body)
            withholder.ledger.upstream_tokens = thinking_tokens(body.get("usage"))

    def stream_filter(self, exchange: Exchange) -> StreamFilter | None:
        if self.config.mode == "allow":
            return None
        withholder = self._withholder(exchange)
        operation = exchange.operation.name
        if operation in ("chat.completions", "completions"):
            return ChatStreamFilter(self._chat(exchange, withholder))
        if operation == "responses":
            return ResponsesStreamFilter(ResponsesRewriter(withholder))
        if operation == "messages":
            return MessagesStreamFilter(MessagesRewriter(withholder))
        return None

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

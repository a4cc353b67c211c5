"""The ``logprobs`` policy: request limits plus coarsening of every logprob a response carries.

Request phase: :class:`RequestLimiter` clamps or rejects ``logprobs``,
``top_logprobs``, ``n``/``best_of``, ``echo`` with logprobs, vLLM's
``prompt_logprobs``/``logprob_token_ids``, the Responses ``include`` entry, and
``logit_bias`` (refused with logprobs, or bounded). It also hashes the prompt
for the noise context.

Response and stream phases: :class:`LogprobRewriter` caps alternatives to
``top_k``, adds keyed noise, rounds to ``grid``, or drops logprobs the tier may
not have, in every format, through the adapter's response view (see
``rewriter``). Streams are rewritten event by event: nothing is held back and
the result does not depend on chunking.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import orjson

from gateway.plugins import (
    ConfigError,
    Exchange,
    Policy,
    PolicyContext,
    StreamEvent,
    StreamFilter,
    StreamView,
)
from policies.logprobs.config import LogprobsConfig
from policies.logprobs.requests import RequestLimiter
from policies.logprobs.rewriter import LogprobRewriter
from policies.logprobs.values import Coarsener

MIN_KEY_LENGTH = 16
_LOGPROBS = frozenset({"logprobs"})


class LogprobsStreamFilter(StreamFilter):
    __slots__ = ("reader", "rewriter")

    def __init__(self, reader: StreamView, rewriter: LogprobRewriter) -> None:
        self.reader = reader
        self.rewriter = rewriter

    def on_event(self, event: StreamEvent) -> list[StreamEvent]:
        if event.json is not None:
            parts = self.reader.read(event, _LOGPROBS)[0]
            if parts:  # most chunks carry none (the view finds that without building anything)
                self.rewriter.rewrite(parts)  # type: ignore[arg-type]
        return [event]


class LogprobsPolicy(Policy[LogprobsConfig]):
    """Caps, coarsens or drops logprobs and refuses the parameter mixes extraction attacks need."""

    config_model = LogprobsConfig
    # Every logprob a response carries (a format that carries none gives it vacuously).
    needs_parts = frozenset({"logprobs"})

    def __init__(self, config: LogprobsConfig, context: PolicyContext) -> None:
        super().__init__(config, context)
        metrics = self.services.metrics
        self._withheld = metrics.counter(
            "logprobs_alternatives_withheld_total",
            "Logprob alternatives (top_logprobs entries) removed from responses.",
            ("route",),
        )
        self._clamped = metrics.counter(
            "logprobs_requests_clamped_total",
            "Request parameters over a logprobs limit, by parameter and action (clamped, rejected).",
            ("param", "action"),
        )
        self._key: bytes | None = None
        # Without noise a coarsener is the same for every exchange (read only): one for all of them.
        self._plain = Coarsener(top_k=config.top_k, grid=config.grid)

    async def startup(self) -> None:
        noise = self.config.noise
        if noise is None:
            return
        secret = os.environ.get(noise.key_env, "")
        if len(secret) < MIN_KEY_LENGTH:
            raise ConfigError(
                f"policy '{self.name}' needs a logprob noise key of at least {MIN_KEY_LENGTH} characters "
                f"in the environment variable {noise.key_env}",
                path=f"tiers.{self.tier}.policies.{self.name}.config.noise.key_env",
            )
        self._key = secret.encode()

    async def on_request(self, exchange: Exchange) -> None:
        if not exchange.carries("logprobs"):
            return  # the format has no logprobs to ask for (its request view has none either)

        def report(param: str, action: str) -> None:
            self.record(exchange, f"{action}:{param}")
            if self.mode == "enforce":
                self._clamped.labels(param, action).inc()

        asked = RequestLimiter(self.config, self.tier, self.name, report).apply(exchange.request)
        exchange.scratch[self.name] = self._rewriter(exchange, asked.echo)

    def _rewriter(self, exchange: Exchange, echo: bool) -> LogprobRewriter:
        """The exchange's rewriter; ``echo``: whether the request as sent echoes its prompt with logprobs."""
        config = self.config
        context = b""
        noise_scale = 0.0
        if config.noise is not None and self._key is not None:
            noise_scale = config.noise.scale
            account = exchange.account.id if config.noise.per_account else ""
            context = account.encode() + b"\x1f" + prompt_hash(exchange.model, exchange.request.prompt())
        coarsener = (
            Coarsener(
                top_k=config.top_k, grid=config.grid, noise_scale=noise_scale, key=self._key, context=context
            )
            if noise_scale > 0 and self._key is not None
            else self._plain
        )
        return LogprobRewriter(
            coarsener,
            drop=not config.logprobs,
            drop_prompt=not config.prompt_logprobs,
            drop_legacy=echo and not config.echo_with_logprobs,
        )

    def _rewriter_for(self, exchange: Exchange) -> LogprobRewriter | None:
        rewriter = exchange.scratch.get(self.name)  # set by the request phase where logprobs can come
        if rewriter is None:
            if not exchange.carries("logprobs"):
                return None
            # The request phase was skipped (a shadow copy): build it from what we have.
            rewriter = exchange.scratch[self.name] = self._rewriter(exchange, exchange.request.logprobs.echo)
        return rewriter

    async def on_response(self, exchange: Exchange, body: dict[str, Any]) -> None:
        rewriter = self._rewriter_for(exchange)
        if rewriter is not None:
            rewriter.rewrite(exchange.response_view(body).parts(_LOGPROBS))  # type: ignore[arg-type]

    def stream_filter(self, exchange: Exchange) -> StreamFilter | None:
        rewriter = self._rewriter_for(exchange)
        return None if rewriter is None else LogprobsStreamFilter(exchange.stream_view(), rewriter)

    async def after_response(self, exchange: Exchange) -> None:
        rewriter = exchange.scratch.get(self.name)
        if isinstance(rewriter, LogprobRewriter) and rewriter.withheld:
            self.record(exchange, "alternatives_withheld", rewriter.withheld)
            if self.mode == "enforce":
                self._withheld.labels(exchange.operation.name).inc(rewriter.withheld)


def prompt_hash(model: str | None, prompt: dict[str, Any]) -> bytes:
    """SHA-256 of what the model conditions on: the model and the prompt fields (the adapter's reading)."""
    subset = {"model": model, **prompt} if model is not None else prompt
    return hashlib.sha256(orjson.dumps(subset, option=orjson.OPT_SORT_KEYS)).digest()

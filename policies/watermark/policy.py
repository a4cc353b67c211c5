"""The ``watermark`` policy: marks assistant text with the account's key, streaming or not.

For chat and completions requests to a model declared in ``green_list.models`` it marks at
generation time instead: it adds the provider-wide and the account's keyed green-list bias to the
request's ``logit_bias`` (:mod:`policies.watermark.green_list`), and the lexical scheme steps aside
unless ``green_list.with_lexical``. It must run after every policy that reads the request's
``logit_bias`` (the presets put it last): the bias is spliced in as pre-encoded JSON bytes.

Per response it builds one :class:`~policies.watermark.marker.TextMarker` per
text stream (choice, content block, output_text part) with the account's
derived key; the lexical scheme is on by default, canaries and the unicode
tripwire are opt-in. Streaming output equals non-streaming output for the same
upstream text, and a stream holds back at most the trailing partial word (and
the whitespace before it) until the next whitespace arrives or the text ends,
and of it only the characters the tier may still rewrite (:mod:`.early`);
after an ambiguous contraction (``it's``, ``I'd``) also its two-character
clitic, until that next word shows whether the contraction may be split.

Inline reasoning (``<think>...</think>`` in chat and completions text, and
text before the first closing tag when the model's template pre-fills
``<think>``: ``assume_open_think``) is never marked: the reasoning policy
normally removes it first, but it may be configured to allow it.

Evidence (which key ids and canaries each account was served) is written to
the state store after the response; see :mod:`policies.watermark.evidence`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import time
from typing import Any

import orjson

from gateway.plugins import Exchange, Part, Policy, PolicyContext, StoreUnavailableError, StreamFilter
from policies.watermark.canary import canary_for, canary_selected
from policies.watermark.config import UnicodeConfig, WatermarkConfig
from policies.watermark.dictionary import load_dictionary
from policies.watermark.early import triggers_for
from policies.watermark.evidence import RECORD_SCRIPT, script_args
from policies.watermark.green_list import BiasCache, provider_key
from policies.watermark.keys import KeySpec, MasterKey, load_master_keys
from policies.watermark.marker import LexicalSettings, TextMarker
from policies.watermark.streams import WatermarkStreamFilter, mark_body
from policies.watermark.text_stream import Factory, TextStream
from policies.watermark.unicode_mark import UnicodeMarker

_SCRATCH = "watermark"


class _ResponseState:
    """Per-exchange state: the account key, the canary choice, the lexical settings, the streams made."""

    __slots__ = ("canary", "green", "key", "settings", "streams")

    def __init__(self, key: bytes, canary: Any, settings: LexicalSettings | None, green: bool) -> None:
        self.key = key
        self.canary = canary
        self.settings = settings
        self.green = green  # the request went out with the green-list bias
        self.streams: list[TextStream] = []


class _StreamMaker:
    """Makes the text stream of each part of one response (the policy's ``Factory``).

    An object rather than a closure: a held stream keeps one small instance, not a function, its
    cells and a list for the first-part flag.
    """

    __slots__ = ("first", "prefix", "state", "think_open", "think_tags", "unicode")

    def __init__(
        self,
        unicode: UnicodeConfig,
        state: _ResponseState,
        prefix: int,
        think_tags: tuple[str, ...],
        think_open: bool,
    ) -> None:
        self.unicode = unicode
        self.state = state
        self.prefix = prefix
        self.think_tags = think_tags
        self.think_open = think_open
        self.first = True

    def __call__(self, part: Part) -> TextStream:
        state = self.state
        unicode_marker = None
        if self.unicode.enabled:
            unicode_marker = UnicodeMarker(state.key, self.unicode.rate, self.unicode.mode)
        # The first text of choice 0 (whatever order n>1 choices stream in; the first part,
        # block or item where the format has no choices).
        eligible = part.choice == 0 and self.first
        canary = state.canary.sentence if state.canary is not None and eligible else None
        if part.choice == 0:
            self.first = False
        marker = TextMarker(
            state.key, state.settings, unicode_marker, think_tags=self.think_tags, think_open=self.think_open
        )
        stream = TextStream(marker, canary, self.prefix)
        state.streams.append(stream)
        return stream


class WatermarkPolicy(Policy[WatermarkConfig]):
    config_model = WatermarkConfig
    # Visible text to mark, and its logprobs (dropped with strip_logprobs).
    needs_parts = frozenset({"text", "logprobs"})

    def __init__(self, config: WatermarkConfig, context: PolicyContext) -> None:
        super().__init__(config, context)
        lexical = config.lexical
        self._settings = (
            LexicalSettings(lexical.density, lexical.enforce, frozenset(lexical.classes), lexical.strength)
            if lexical.enabled
            else None
        )
        if self._settings is not None:
            # built now rather than on the first stream (the tables of every class take ~0.1 s)
            triggers_for(load_dictionary(self._settings.strength), self._settings)
        self._current: MasterKey | None = None
        self._provider: bytes = b""
        self._account_keys: dict[str, bytes] = {}
        self._think_tags = tuple(config.think_tags)
        self._open_think: dict[str, bool] = {}  # model name -> whether its text starts inside a think span
        green = config.green_list
        self._bias = BiasCache(green.layout(), green.cache_maps)
        metrics = self.services.metrics
        self._responses = metrics.counter(
            "watermark_responses_total", "Responses marked by the watermark, by scheme.", ("scheme",)
        )
        self._substitutions = metrics.counter(
            "watermark_substitutions_total", "Words rewritten or marks inserted, by scheme.", ("scheme",)
        )
        self._canaries = metrics.counter("watermark_canaries_total", "Canary sentences planted.")

    async def startup(self) -> None:
        specs = [KeySpec(k.id, k.env) for k in self.config.keys] or [
            KeySpec(self.config.key_id, self.config.key_env)
        ]
        self._current = load_master_keys(specs)[0]
        self._provider = provider_key(self._current)

    def account_key(self, account: str) -> bytes:
        key = self._account_keys.get(account)
        if key is None:
            assert self._current is not None, "watermark policy not started"
            if len(self._account_keys) > 10_000:
                self._account_keys.clear()
            key = self._account_keys[account] = self._current.account_key(account)
        return key

    async def on_request(self, exchange: Exchange) -> None:
        if exchange.operation.name in self.config.exclude_operations:
            return
        key = self.account_key(exchange.account.id)
        canary = None
        cfg = self.config.canary
        if cfg.enabled and not exchange.request.structured_output:
            index = canary_selected(key, _fingerprint(exchange.body), cfg.fraction, cfg.variants)
            if index is not None:
                assert self._current is not None
                canary = canary_for(key, self._current.id, index)
        green = self._green_list(exchange, key)
        settings = self._settings if not green or self.config.green_list.with_lexical else None
        exchange.scratch[_SCRATCH] = _ResponseState(key, canary, settings, green)

    def _green_list(self, exchange: Exchange, key: bytes) -> bool:
        """Add the green-list bias to a request that carries one, for a declared model; whether it was."""
        request = exchange.request
        if not request.accepts_logit_bias:
            return False
        model = self.config.green_list.model_for(exchange.model)
        if model is None:
            return False
        bias = self._bias.get(self._provider, key, model.vocab_size, tuple(model.end_tokens))
        # The client's entries (bounded by the logprobs policy) are added to ours, never the reverse.
        request.set_logit_bias(bias.merged(request.logit_bias))  # type: ignore[arg-type]
        request.raise_repetition_penalties(model.min_presence_penalty, model.min_frequency_penalty)
        request.penalise_repeated_phrases(model.min_dry_multiplier, model.max_dry_allowed_length)
        return True

    def _think(self, exchange: Exchange, inline_think: bool) -> tuple[tuple[str, ...], bool]:
        """Inline think tags (formats whose text carries them) and whether the text starts inside one."""
        if not inline_think or not self.config.think_tags:
            return (), False
        setting = self.config.assume_open_think
        if setting != "auto":
            return self._think_tags, bool(setting)
        model = exchange.model or ""
        assume = self._open_think.get(model)
        if assume is None:  # once per model name (bounded: the names are the client's)
            lower = model.lower()
            assume = any(fnmatch.fnmatchcase(lower, p.lower()) for p in self.config.open_think_models)
            if len(self._open_think) >= 4096:
                self._open_think.clear()
            self._open_think[model] = assume
        return self._think_tags, assume

    def _factory(self, exchange: Exchange, state: _ResponseState, inline_think: bool) -> Factory:
        think_tags, think_open = self._think(exchange, inline_think)
        return _StreamMaker(
            self.config.unicode, state, exchange.request.echoed_prompt_chars, think_tags, think_open
        )

    async def on_response(self, exchange: Exchange, body: dict[str, Any]) -> None:
        state = exchange.scratch.get(_SCRATCH)
        if state is None:
            return
        view = exchange.response_view(body)
        mark_body(view, self._factory(exchange, state, view.inline_think), self.config.strip_logprobs)

    def stream_filter(self, exchange: Exchange) -> StreamFilter | None:
        state = exchange.scratch.get(_SCRATCH)
        if state is None:
            return None
        reader = exchange.stream_view()
        return WatermarkStreamFilter(
            reader, self._factory(exchange, state, reader.inline_think), self.config.strip_logprobs
        )

    async def after_response(self, exchange: Exchange) -> None:
        state: _ResponseState | None = exchange.scratch.get(_SCRATCH)
        if state is None or not state.streams:
            return
        substitutions = sum(s.marker.substitutions for s in state.streams)
        canary_served = any(s.canary for s in state.streams if s.done)
        schemes = []
        if state.green:
            schemes.append("green_list")
            self.record(exchange, "green_list")
        if state.settings is not None:
            schemes.append("lexical")
            self._substitutions.labels("lexical").inc(substitutions)
            self.record(exchange, "lexical_substitutions", substitutions)
        if self.config.unicode.enabled:
            schemes.append("unicode")
            self._substitutions.labels("unicode").inc(sum(s.marker.unicode_marks for s in state.streams))
        if canary_served:
            schemes.append("canary")
            self._canaries.inc()
            self.record(exchange, "canary")
        for scheme in schemes:
            self._responses.labels(scheme).inc()
        if self.config.record_evidence and self._current is not None:
            canary = state.canary.record() if canary_served and state.canary is not None else None
            store = self.services.store
            try:
                await store.run_script(
                    RECORD_SCRIPT,
                    [store.key("evidence", "watermark", exchange.account.id)],
                    script_args(self._current.id, time.time(), canary, self.config.evidence_ttl_days * 86400),
                )
            except StoreUnavailableError:
                self.services.logger.warning("watermark evidence not recorded: state store unavailable")
                self.record(exchange, "evidence_unrecorded")


def _fingerprint(body: dict[str, Any]) -> bytes:
    """The request minus its transport options: the same prompt gets the same canary decision."""
    relevant = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    return hashlib.sha256(orjson.dumps(relevant, option=orjson.OPT_SORT_KEYS)).digest()

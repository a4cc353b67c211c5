"""The policy's treatment of one exchange's reasoning, as the adapters' rewriters ask for it, and the ledger.

The adapters know where each format keeps reasoning and how a withheld trace is replaced there
(``ReasoningTreatment`` in the plugin interface); the :class:`Withholder` answers their questions:
the mode, the placeholder's words, the seal (this policy's keys), the inline ``<think>`` parser
for text, and the accounting.

Token counts: the metric uses the upstream's own reasoning-token count when it
reports one (read by the adapter: from the usage, or with the content); the
``{tokens}`` of the redact placeholder, and the metric when the upstream
reports nothing (inline ``<think>`` from llama.cpp, most open servers), use
:func:`estimate_tokens`: one token per 4 characters, rounded up (the usual
rule of thumb for English BPE vocabularies; it is computed from the same text
streamed or not, so both paths show the same number).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.plugins import InlineText, ReasoningSource, SealDelivery, SealPlace, WithholdMode
from policies.reasoning.config import ReasoningConfig
from policies.reasoning.inline import ThinkRewriter, ThinkSettings
from policies.reasoning.seal import PLACE_FORMATS, SealKeyRing
from policies.reasoning.think import opens_implicitly

CHARS_PER_TOKEN = 4


def estimate_tokens(chars: int) -> int:
    return -(-chars // CHARS_PER_TOKEN) if chars > 0 else 0


@dataclass(slots=True)
class Ledger:
    """Per exchange: how much reasoning was withheld, by where it was found, and the upstream's count."""

    chars: dict[str, int] = field(default_factory=dict)
    spans: int = 0
    upstream_tokens: int = 0  # a count the adapter reads with the content (treatment.upstream_tokens)
    provider_kept: int = 0
    stray_closes: int = 0

    def withheld(self, source: ReasoningSource, chars: int) -> None:
        self.spans += 1
        self.chars[source] = self.chars.get(source, 0) + max(0, chars)

    def tokens_by_format(self, upstream_tokens: int) -> dict[str, int]:
        """Withheld tokens per format: the upstream's count (given to the largest format) or estimates."""
        if not self.chars:
            return {}
        if upstream_tokens > 0:
            main = max(self.chars, key=lambda fmt: self.chars[fmt])
            return {main: upstream_tokens}
        return {fmt: estimate_tokens(chars) for fmt, chars in self.chars.items()}


class Withholder:
    """The mode's treatment of withheld reasoning for one exchange (one account): a ReasoningTreatment."""

    __slots__ = (
        "account",
        "config",
        "keep_provider_encrypted",
        "keys",
        "ledger",
        "mode",
        "parses_inline",
        "seal_delivery",
        "think",
    )

    def __init__(
        self,
        config: ReasoningConfig,
        keys: SealKeyRing | None,
        account: str,
        ledger: Ledger,
        think: ThinkSettings | None,
    ) -> None:
        if config.mode == "allow":
            raise RuntimeError("allow mode withholds nothing")  # the policy builds no rewriter then
        self.config = config
        self.mode: WithholdMode = config.mode
        self.keys = keys
        self.account = account
        self.ledger = ledger
        self.think = think
        self.keep_provider_encrypted = config.keep_provider_encrypted
        self.seal_delivery: SealDelivery = config.seal.chat
        self.parses_inline = think is not None
        if self.mode == "seal" and keys is None:
            raise RuntimeError("seal mode without keys")  # startup() refuses this configuration

    def placeholder(self, chars: int) -> str:
        return self.config.placeholder(estimate_tokens(chars))

    def seal(self, place: SealPlace, payload: Any) -> str:
        assert self.keys is not None
        return self.keys.seal(PLACE_FORMATS[place], self.account, payload)

    def inline(self, whole: str | None, after_reasoning: bool) -> InlineText:
        think = self.think
        assert think is not None
        # An upstream that parses reasoning into its own fields leaves no open span in the text.
        open_at_start = think.assume_open and not after_reasoning
        if whole is not None and opens_implicitly(whole, think.tags):
            # A complete text is judged whole, whatever the model's name or the reasoning fields:
            # a closing tag before any opening one ends a pre-filled span.
            open_at_start = True
        return ThinkRewriter(think.tags, open_at_start, self)

    def withheld(self, source: ReasoningSource, chars: int) -> None:
        self.ledger.withheld(source, chars)

    def provider_kept(self) -> None:
        self.ledger.provider_kept += 1

    def upstream_tokens(self, tokens: int) -> None:
        self.ledger.upstream_tokens = tokens

    def think_replacement(self, tag: str, raw: str, chars: int) -> str:
        """What stands in the text for one withheld think span (``raw`` is the span with its tags)."""
        self.ledger.withheld("think", chars)
        if self.mode == "redact":
            return f"<{tag}>{self.placeholder(chars)}</{tag}>"
        if self.mode == "seal" and self.seal_delivery == "inline":
            return f"<{tag}>{self.seal('inline', raw)}</{tag}>"
        return ""

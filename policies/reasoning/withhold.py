"""What every format handler shares: the mode's replacement for withheld reasoning, and the ledger.

Token counts: the metric uses the upstream's own reasoning-token count when it
reports one (OpenAI ``reasoning_tokens``, Anthropic ``thinking_tokens``); the
``{tokens}`` of the redact placeholder, and the metric when the upstream
reports nothing (inline ``<think>`` from llama.cpp, most open servers), use
:func:`estimate_tokens`: one token per 4 characters, rounded up (the usual
rule of thumb for English BPE vocabularies; it is computed from the same text
streamed or not, so both paths show the same number).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from policies.reasoning.config import ReasoningConfig, ReasoningMode
from policies.reasoning.seal import SealFormat, SealKeyRing

# Metric label values for where reasoning was found (bounded).
ReasoningFormat = Literal["chat", "think", "responses", "messages"]
CHARS_PER_TOKEN = 4


def estimate_tokens(chars: int) -> int:
    return -(-chars // CHARS_PER_TOKEN) if chars > 0 else 0


@dataclass(slots=True)
class Ledger:
    """Per exchange: how much reasoning was withheld, by format, and the upstream's own count."""

    chars: dict[str, int] = field(default_factory=dict)
    spans: int = 0
    upstream_tokens: int = 0  # counts the policy reads itself (Anthropic thinking_tokens)
    provider_kept: int = 0
    stray_closes: int = 0

    def withheld(self, fmt: ReasoningFormat, chars: int) -> None:
        self.spans += 1
        self.chars[fmt] = self.chars.get(fmt, 0) + max(0, chars)

    def tokens_by_format(self, upstream_tokens: int) -> dict[str, int]:
        """Withheld tokens per format: the upstream's count (given to the largest format) or estimates."""
        if not self.chars:
            return {}
        if upstream_tokens > 0:
            main = max(self.chars, key=lambda fmt: self.chars[fmt])
            return {main: upstream_tokens}
        return {fmt: estimate_tokens(chars) for fmt, chars in self.chars.items()}


class Withholder:
    """The mode's treatment of withheld reasoning for one exchange (one account)."""

    __slots__ = ("account", "config", "keys", "ledger", "mode")

    def __init__(
        self, config: ReasoningConfig, keys: SealKeyRing | None, account: str, ledger: Ledger
    ) -> None:
        self.config = config
        self.mode: ReasoningMode = config.mode
        self.keys = keys
        self.account = account
        self.ledger = ledger
        if self.mode == "seal" and keys is None:
            raise RuntimeError("seal mode without keys")  # startup() refuses this configuration

    @property
    def keep_provider_encrypted(self) -> bool:
        return self.config.keep_provider_encrypted

    def placeholder(self, chars: int) -> str:
        return self.config.placeholder(estimate_tokens(chars))

    def seal(self, fmt: SealFormat, payload: Any) -> str:
        assert self.keys is not None
        return self.keys.seal(fmt, self.account, payload)

    def think_replacement(self, tag: str, raw: str, chars: int) -> str:
        """What stands in the text for one withheld think span (``raw`` is the span with its tags)."""
        self.ledger.withheld("think", chars)
        if self.mode == "redact":
            return f"<{tag}>{self.placeholder(chars)}</{tag}>"
        if self.mode == "seal" and self.config.seal.chat == "inline":
            return f"<{tag}>{self.seal('t', raw)}</{tag}>"
        return ""

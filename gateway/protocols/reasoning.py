"""Withholding reasoning: a capability of each API family, driven by a policy's format-neutral treatment.

Where a format keeps reasoning (chat fields and inline spans, Responses items and their stream
events, Anthropic thinking blocks, Gemini thought parts), how a withheld trace is replaced, where a
sealed blob goes, which opaque provider data must survive, and how a stream is held back and
renumbered are the adapter's knowledge (the family modules ``chat_reasoning``,
``responses_reasoning``, ``messages_reasoning`` and ``gemini_reasoning``). What to withhold, the
placeholder's words, the cryptography of a seal, the parsing of inline ``<think>`` text and the
accounting are the policy's: it hands the adapter a :class:`ReasoningTreatment` and gets back a
:class:`ReasoningRewriter` for the exchange
(:meth:`~gateway.protocols.base.ProtocolAdapter.reasoning`).

Modes (:data:`WithholdMode`), as every family renders them:

* ``drop``: reasoning removed (opaque provider data kept where the treatment says so);
* ``redact``: the placeholder where the reasoning was;
* ``summary``: only the provider's own summaries of the reasoning;
* ``seal``: one blob of the original in the format's place for opaque data (the request view
  restores it when the client sends it back; see :mod:`gateway.protocols.sealed`), provider
  summaries kept.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from gateway.protocols.sealed import SealPlace
from gateway.sse import StreamEvent

WithholdMode = Literal["drop", "redact", "summary", "seal"]
SealDelivery = Literal["inline", "field", "omit"]
# A metric label: where the withheld reasoning was found (bounded).
ReasoningSource = Literal["chat", "think", "responses", "messages", "gemini"]
Interval = tuple[int, int]


class InlineText(Protocol):
    """The policy's rewriting of one text stream that may hold inline reasoning spans (``<think>``).

    ``feed`` returns the text to forward and the intervals of the input it forwards verbatim,
    relative to the start of the text just fed (text held back and released later has negative
    offsets; None: all of it passes unchanged), which is what aligning log-probabilities needs.
    """

    fed: int  # characters fed so far

    def feed(self, text: str) -> tuple[str, list[Interval] | None]:
        """(text to forward, intervals forwarded verbatim)."""

    def close(self, origin: int | None = None) -> tuple[str, list[Interval]]:
        """Flush at the end of the text; ``origin``: the offset the intervals are relative to."""


class ReasoningTreatment(Protocol):
    """What a policy decides about one exchange's reasoning; the adapter's rewriters ask it."""

    mode: WithholdMode
    keep_provider_encrypted: bool  # keep opaque provider continuity data (not in seal mode)
    seal_delivery: SealDelivery  # formats with no opaque field of their own (chat): where a blob goes
    parses_inline: bool  # whether text parts are parsed for inline reasoning spans

    def placeholder(self, chars: int) -> str:
        """The redact placeholder for ``chars`` characters of withheld reasoning."""

    def seal(self, place: SealPlace, payload: Any) -> str:
        """A blob of ``payload`` (anything JSON encodes) for ``place``."""

    def inline(self, whole: str | None, after_reasoning: bool) -> InlineText:
        """The rewriter of one text (``whole``: all of it, when it is in hand at once;
        ``after_reasoning``: the upstream already sent reasoning in its own fields)."""

    def withheld(self, source: ReasoningSource, chars: int) -> None:
        """Account one withheld span of ``chars`` characters."""

    def provider_kept(self) -> None:
        """Account one piece of opaque provider data passed unchanged."""

    def upstream_tokens(self, tokens: int) -> None:
        """The upstream's own count of reasoning tokens, where the format reports it with the content."""


class ReasoningStream(Protocol):
    """One stream's rewriting (the policy's stream filter delegates to it)."""

    def on_event(self, event: StreamEvent) -> list[StreamEvent]:
        """The events to forward in place of ``event`` (malformed content raises ValueError)."""

    def on_end(self) -> list[StreamEvent]:
        """What was held back, at the end of the stream."""


class ReasoningRewriter(Protocol):
    """One exchange's reasoning rewriting in one format."""

    def rewrite_body(self, body: dict[str, Any]) -> None:
        """Rewrite a whole response body in place (malformed content raises ValueError)."""

    def stream(self) -> ReasoningStream:
        """A rewriter of the exchange's response stream."""

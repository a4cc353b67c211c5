"""Anthropic Messages: ``thinking`` and ``redacted_thinking`` blocks, whole and streamed (D.3).

The adapter's reasoning capability for this operation (see :mod:`gateway.protocols.reasoning`).

A ``thinking`` block with text becomes, for the client:

* drop, summary: removed (Claude's "summarized" thinking is still a step-by-step trace written
  by the model, so summary mode treats it as raw reasoning);
* redact: ``{"thinking": placeholder, "signature": ""}`` (an empty signature marks it as ours: the
  gateway removes such blocks from later requests, since the upstream cannot verify them);
* seal: ``{"thinking": "", "signature": blob}``, the shape of ``display: "omitted"`` thinking; the
  blob holds the original block, which the gateway puts back on the way in so the upstream's
  signature verifies.

Blocks without readable text are opaque provider continuity data: a signature-only ``thinking``
block (``display: "omitted"``) and a ``redacted_thinking`` block. Dropping them breaks the next turn,
so with ``keep_provider_encrypted`` they pass unchanged in drop, redact and summary modes (seal
mode seals them like any block). Events keep the upstream's block indexes: the adapter's
renumbering pass (``MessagesNumbering``, run by the engine after every filter) makes them
consecutive for the SDK's index-based accumulation.

Streaming: the SDK accumulates ``content_block_start`` by appending and deltas by ``index``. Hold-
back: in drop and summary modes a thinking block's ``content_block_start`` waits for the block's
``content_block_stop``: only then is it known whether the block had text (withheld) or was
signature-only (released whole, start, signature and stop). Redact and seal modes forward the
start at once and send the replacement as deltas before the stop. Thinking text itself is kept in
memory, never forwarded, to count it and, in seal mode, to seal it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.protocols.anthropic_view import REASONING_BLOCKS
from gateway.protocols.reasoning import ReasoningTreatment
from gateway.sse import StreamEvent


class MessagesReasoning:
    """Rewrites thinking blocks for one exchange; streamed and whole bodies agree."""

    def __init__(self, treatment: ReasoningTreatment) -> None:
        self.treatment = treatment

    def stream(self) -> MessagesReasoningStream:
        return MessagesReasoningStream(self)

    def rewrite_block(self, block: dict[str, Any]) -> dict[str, Any] | None:
        """The block as the client sees it (None: removed)."""
        treatment = self.treatment
        mode = treatment.mode
        if block.get("type") == "redacted_thinking":
            if mode == "seal":
                treatment.withheld("messages", 0)
                return {"type": "redacted_thinking", "data": treatment.seal("block", block)}
            treatment.withheld("messages", 0)  # unreadable either way; the usage count applies
            if treatment.keep_provider_encrypted:
                treatment.provider_kept()
                return block
            return None
        text = block.get("thinking")
        signature = block.get("signature")
        if not isinstance(text, str) or not isinstance(signature, str):
            raise ValueError("thinking block without string 'thinking' and 'signature'")
        if mode == "seal":
            treatment.withheld("messages", len(text))
            return {"type": "thinking", "thinking": "", "signature": treatment.seal("block", block)}
        treatment.withheld("messages", len(text))
        if not text and treatment.keep_provider_encrypted:
            treatment.provider_kept()
            return block
        if mode == "redact":
            return {"type": "thinking", "thinking": treatment.placeholder(len(text)), "signature": ""}
        return None

    def rewrite_content(self, content: Any) -> Any:
        if content is None:
            return None
        if not isinstance(content, list) or not all(isinstance(block, dict) for block in content):
            raise ValueError("message content is not a list of objects")
        out = []
        for block in content:
            if block.get("type") in REASONING_BLOCKS:
                replaced = self.rewrite_block(block)
                if replaced is not None:
                    out.append(replaced)
            else:
                out.append(block)
        return out

    def rewrite_body(self, body: dict[str, Any]) -> None:
        self.rewrite_message(body)
        self.treatment.upstream_tokens(thinking_tokens(body.get("usage")))

    def rewrite_message(self, message: dict[str, Any]) -> None:
        if "content" in message:
            message["content"] = self.rewrite_content(message["content"])


def thinking_tokens(usage: Any) -> int:
    """Anthropic's ``usage.output_tokens_details.thinking_tokens``, when reported."""
    if not isinstance(usage, dict):
        return 0
    details = usage.get("output_tokens_details")
    value = details.get("thinking_tokens") if isinstance(details, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@dataclass(slots=True)
class _Block:
    """A reasoning block being streamed."""

    kind: str
    start: StreamEvent
    text: list[str] = field(default_factory=list)
    signature: str = ""


class MessagesReasoningStream:
    """Anthropic stream events; see the module docstring."""

    __slots__ = ("_current", "_rewriter", "_started")

    def __init__(self, rewriter: MessagesReasoning) -> None:
        self._rewriter = rewriter
        self._started: set[int] = set()  # upstream indexes of the blocks forwarded so far
        self._current: tuple[int, _Block] | None = None  # the reasoning block now streaming

    def on_event(self, event: StreamEvent) -> list[StreamEvent]:
        payload = event.json
        if payload is None:
            raise ValueError("an Anthropic stream event that is not JSON")
        kind = payload.get("type")
        if kind == "content_block_start":
            return self._start(event, payload)
        if kind in ("content_block_delta", "content_block_stop"):
            index = payload.get("index")
            if not isinstance(index, int) or (index not in self._started and not self._is_current(index)):
                raise ValueError(f"{kind} for a content block that was not started")
            if self._is_current(index):
                return self._reasoning_event(event, payload, kind)
            return [event]
        if kind == "message_start":
            message = payload.get("message")
            if isinstance(message, dict):
                self._rewriter.rewrite_body(message)
        elif kind == "message_delta":
            found = thinking_tokens(payload.get("usage"))
            if found:
                self._rewriter.treatment.upstream_tokens(found)
        return [event]

    def on_end(self) -> list[StreamEvent]:
        self._current = None  # a block cut off by the end of the stream is withheld
        return []

    def _is_current(self, index: int) -> bool:
        return self._current is not None and self._current[0] == index

    def _start(self, event: StreamEvent, payload: dict[str, Any]) -> list[StreamEvent]:
        index = payload.get("index")
        block = payload.get("content_block")
        if not isinstance(index, int) or not isinstance(block, dict):
            raise ValueError("content_block_start without an index and a content_block")
        if self._current is not None or index in self._started:
            raise ValueError("content blocks overlap or repeat in the stream")
        if block.get("type") not in REASONING_BLOCKS:
            self._started.add(index)
            return [event]
        if block.get("type") == "redacted_thinking":
            replaced = self._rewriter.rewrite_block(block)
            if replaced is None:
                self._current = (index, _Block("removed", event))
                return []
            self._started.add(index)
            payload["content_block"] = replaced
            return [event]
        state = _Block("thinking", event)
        initial = block.get("thinking")
        if isinstance(initial, str) and initial:
            state.text.append(initial)
        if isinstance(block.get("signature"), str):
            state.signature = block["signature"]
        payload["content_block"] = {"type": "thinking", "thinking": "", "signature": ""}
        self._current = (index, state)
        if self._rewriter.treatment.mode in ("redact", "seal"):
            return [event]
        return []  # held until the block shows text (withheld) or stops (signature-only)

    def _reasoning_event(self, event: StreamEvent, payload: dict[str, Any], kind: str) -> list[StreamEvent]:
        assert self._current is not None
        index, state = self._current
        if state.kind == "removed":
            if kind == "content_block_stop":
                self._current = None
            return []
        mode = self._rewriter.treatment.mode
        if kind == "content_block_delta":
            delta = payload.get("delta")
            if not isinstance(delta, dict):
                raise ValueError("content_block_delta without a delta object")
            if delta.get("type") == "signature_delta":
                signature = delta.get("signature")
                if not isinstance(signature, str):
                    raise ValueError("signature_delta without a string signature")
                state.signature = signature  # a signature overwrites, it does not append
                return []
            text = delta.get("thinking") if delta.get("type") == "thinking_delta" else None
            if text is None:
                text = str(delta)  # an unknown delta in a thinking block is withheld like text
            if text:
                state.text.append(text)
            return []
        # content_block_stop: the block is complete.
        self._current = None
        original = {"type": "thinking", "thinking": "".join(state.text), "signature": state.signature}
        replaced = self._rewriter.rewrite_block(original)
        if replaced is None:
            return []
        self._started.add(index)
        out: list[StreamEvent] = []
        if mode in ("drop", "summary"):
            start = state.start
            assert start.json is not None
            start.json["content_block"] = {"type": "thinking", "thinking": "", "signature": ""}
            out.append(start)
        if replaced["thinking"]:
            out.append(_delta(index, {"type": "thinking_delta", "thinking": replaced["thinking"]}))
        if replaced["signature"]:
            out.append(_delta(index, {"type": "signature_delta", "signature": replaced["signature"]}))
        out.append(event)
        return out


def _delta(index: int, delta: dict[str, Any]) -> StreamEvent:
    payload = {"type": "content_block_delta", "index": index, "delta": delta}
    return StreamEvent.of(payload, "content_block_delta")

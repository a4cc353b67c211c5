"""Anthropic Messages shapes of the mock, with thinking blocks whose signatures the mock checks.

Signatures are an HMAC of the thinking text under the mock's secret, so a
later turn that sends a thinking block back altered (or without its text) is
refused with 400, as Anthropic refuses it. ``redacted_thinking`` blocks appear
when the ``x-mock-redacted`` header is set.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Iterator
from typing import Any

from gateway.mock.generation import Generation
from gateway.mock.text import tokenize

_SECRET = b"distillguard-mock-thinking"
Event = tuple[str | None, dict[str, Any] | str]


def sign(thinking: str) -> str:
    mac = hmac.new(_SECRET, thinking.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(b"EqMB" + mac).decode()


def verify_history(body: dict[str, Any]) -> str | None:
    """An error message if an assistant thinking block in the history is not exactly as served."""
    for m_index, message in enumerate(body.get("messages") or []):
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for b_index, block in enumerate(content):
            if not isinstance(block, dict) or block.get("type") != "thinking":
                continue
            signature, thinking = block.get("signature"), block.get("thinking")
            if not isinstance(signature, str) or not isinstance(thinking, str):
                return (
                    f"messages.{m_index}.content.{b_index}: thinking block needs 'thinking' and 'signature'"
                )
            if not hmac.compare_digest(signature, sign(thinking)):
                return f"messages.{m_index}.content.{b_index}: Invalid `signature` in `thinking` block"
    return None


def thinking_requested(body: dict[str, Any]) -> tuple[bool, bool]:
    """(thinking on, display omitted)."""
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "adaptive"):
        return False, False
    return True, thinking.get("display") == "omitted"


def _blocks(gen: Generation, omitted: bool, redacted: bool) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if gen.reasoning:
        blocks.append(
            {
                "type": "thinking",
                "thinking": "" if omitted else gen.reasoning,
                "signature": sign("" if omitted else gen.reasoning),
            }
        )
        if redacted:
            blocks.append(
                {
                    "type": "redacted_thinking",
                    # Opaque, as Anthropic's encrypted data is: no reasoning text can be read from it.
                    "data": base64.b64encode(
                        hmac.new(_SECRET, b"redacted:" + gen.reasoning.encode(), hashlib.sha256).digest()
                    ).decode(),
                }
            )
    blocks.append({"type": "text", "text": gen.text})
    return blocks


def message(gen: Generation, model: str, omitted: bool, redacted: bool) -> dict[str, Any]:
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _blocks(gen, omitted, redacted),
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": gen.prompt_tokens, "output_tokens": gen.completion_tokens},
    }


def message_stream(
    gen: Generation, model: str, omitted: bool, redacted: bool, per_chunk: int
) -> Iterator[Event]:
    final = message(gen, model, omitted, redacted)
    start = {
        **final,
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": gen.prompt_tokens, "output_tokens": 1},
    }
    yield "message_start", {"type": "message_start", "message": start}
    yield "ping", {"type": "ping"}
    for index, block in enumerate(final["content"]):
        kind = block["type"]
        if kind == "thinking":
            yield (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                },
            )
            pieces = tokenize(block["thinking"])
            for i in range(0, len(pieces), per_chunk):
                yield (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "thinking_delta", "thinking": "".join(pieces[i : i + per_chunk])},
                    },
                )
            yield (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "signature_delta", "signature": block["signature"]},
                },
            )
        elif kind == "redacted_thinking":
            yield (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
        else:
            yield (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            pieces = tokenize(block["text"])
            for i in range(0, len(pieces), per_chunk):
                yield (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "text_delta", "text": "".join(pieces[i : i + per_chunk])},
                    },
                )
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": gen.completion_tokens},
        },
    )
    yield "message_stop", {"type": "message_stop"}

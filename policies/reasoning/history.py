"""On the way in: sealed reasoning in the conversation history is opened and the original restored.

Where blobs are looked for (where seal mode put them):

* chat: an assistant message's ``sealed_reasoning`` (``seal.chat: field``), its
  ``reasoning_content`` / ``reasoning`` (``inline``; the original fields and ``reasoning_details``
  come back), and ``<think>blob</think>`` in its ``content`` (a string or text parts);
* Responses: an ``input`` item of ``type: "reasoning"`` whose ``encrypted_content`` is a blob (the
  whole original item comes back, upstream ``encrypted_content`` and raw text included);
* Anthropic: an assistant ``thinking`` block whose ``signature`` is a blob, or a
  ``redacted_thinking`` block whose ``data`` is one (the original block comes back, so the
  upstream's signature verifies). Thinking blocks with an empty signature (redact mode's
  placeholders) are removed: no upstream can verify them.

A blob that does not open (altered, issued to another account, made for another format, or under a
key the gateway no longer has) rejects the request with a 400 naming where it was.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from policies.reasoning.chat import DETAILS_FIELD, SEALED_FIELD, STRING_FIELDS
from policies.reasoning.seal import SealFormat, SealKeyRing, UnsealError, is_blob

_BLOB = r"dgs1\.[A-Za-z0-9_-]+\.[a-z]\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"


class HistoryError(Exception):
    """An unsealing failure at ``param``."""

    def __init__(self, error: UnsealError, param: str) -> None:
        super().__init__(f"{param}: {error.message}")
        self.reason = error.reason
        self.param = param
        self.message = (
            f"{param}: {error.message}. Send reasoning back exactly as the gateway returned it, "
            "with the account it was returned to."
        )


class HistoryUnsealer:
    """Opens the blobs of one request (one account); counts what it did in ``unsealed`` / ``removed``."""

    def __init__(self, keys: SealKeyRing, account: str, think_tags: Sequence[str]) -> None:
        self.keys = keys
        self.account = account
        self.unsealed = 0
        self.removed = 0
        names = "|".join(re.escape(tag) for tag in think_tags)
        self._think = re.compile(rf"<({names})>({_BLOB})</\1>") if think_tags else None

    def _open(self, blob: str, fmt: SealFormat, param: str, check: Callable[[Any], bool]) -> Any:
        try:
            payload = self.keys.unseal(blob, fmt, self.account)
        except UnsealError as exc:
            raise HistoryError(exc, param) from None
        if not check(payload):
            raise HistoryError(UnsealError("malformed", "the sealed reasoning is malformed"), param)
        self.unsealed += 1
        return payload

    def chat(self, body: dict[str, Any]) -> None:
        for m_index, message in _assistant_messages(body.get("messages")):
            for name in (SEALED_FIELD, *STRING_FIELDS):
                blob = message.get(name)
                if isinstance(blob, str) and is_blob(blob):
                    payload = self._open(blob, "c", f"messages[{m_index}].{name}", _is_chat_payload)
                    for field in (SEALED_FIELD, *STRING_FIELDS, DETAILS_FIELD):
                        message.pop(field, None)
                    message.update(payload["fields"])
                    if payload["details"]:
                        message[DETAILS_FIELD] = payload["details"]
                    break
            message.pop(SEALED_FIELD, None)  # the gateway's own field: never forwarded upstream
            content = message.get("content")
            if isinstance(content, str):
                message["content"] = self._think_spans(content, f"messages[{m_index}].content")
            elif isinstance(content, list):
                for p_index, part in enumerate(content):
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        where = f"messages[{m_index}].content[{p_index}].text"
                        part["text"] = self._think_spans(part["text"], where)

    def _think_spans(self, text: str, param: str) -> str:
        if self._think is None or "dgs1." not in text:
            return text
        return self._think.sub(
            lambda match: self._open(match.group(2), "t", param, lambda p: isinstance(p, str)), text
        )

    def responses(self, body: dict[str, Any]) -> None:
        items = body.get("input")
        if not isinstance(items, list):
            return
        for index, item in enumerate(items):
            if isinstance(item, dict) and item.get("type") == "reasoning":
                blob = item.get("encrypted_content")
                if isinstance(blob, str) and is_blob(blob):
                    items[index] = self._open(
                        blob, "r", f"input[{index}].encrypted_content", lambda p: _is_item(p, "reasoning")
                    )

    def messages(self, body: dict[str, Any]) -> None:
        for m_index, message in _assistant_messages(body.get("messages")):
            content = message.get("content")
            if not isinstance(content, list):
                continue
            kept = []
            for b_index, block in enumerate(content):
                if not isinstance(block, dict):
                    kept.append(block)
                    continue
                kind = block.get("type")
                where = f"messages[{m_index}].content[{b_index}]"
                if kind == "thinking" and is_blob(block.get("signature")):
                    block = self._open(block["signature"], "m", f"{where}.signature", _is_block)
                elif kind == "redacted_thinking" and is_blob(block.get("data")):
                    block = self._open(block["data"], "m", f"{where}.data", _is_block)
                elif kind == "thinking" and block.get("signature") == "":
                    self.removed += 1
                    continue
                kept.append(block)
            message["content"] = kept


def _assistant_messages(messages: Any) -> list[tuple[int, dict[str, Any]]]:
    if not isinstance(messages, list):
        return []
    return [
        (index, message)
        for index, message in enumerate(messages)
        if isinstance(message, dict) and message.get("role") == "assistant"
    ]


def _is_chat_payload(payload: Any) -> bool:
    return (
        isinstance(payload, dict)
        and isinstance(payload.get("fields"), dict)
        and isinstance(payload.get("details"), list)
    )


def _is_item(payload: Any, kind: str) -> bool:
    return isinstance(payload, dict) and payload.get("type") == kind


def _is_block(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("type") in ("thinking", "redacted_thinking")

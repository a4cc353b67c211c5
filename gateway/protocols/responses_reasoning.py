"""OpenAI Responses API: ``reasoning`` output items and their stream events (antidistillation.md D.2).

The adapter's reasoning capability for this operation (see :mod:`gateway.protocols.reasoning`).

A reasoning item ``{id, type: "reasoning", summary: [summary_text...], content: [reasoning_text...],
encrypted_content, status}`` becomes, for the client:

* drop: removed (the adapter's renumbering pass shifts later items' ``output_index`` down so they
  match the final ``output`` list);
* redact: ``summary`` holds one ``summary_text`` with the placeholder, raw ``content`` is removed;
* summary: the provider's ``summary`` only, raw ``content`` removed;
* seal: ``summary`` kept, ``encrypted_content`` is our blob of the whole original item (which the
  gateway puts back when the client sends the item as input);
* redact and summary keep the upstream's ``encrypted_content`` when ``keep_provider_encrypted``.

Streams: ``response.reasoning_text.*`` never pass; ``response.reasoning_summary_part.*`` and
``response.reasoning_summary_text.*`` pass in summary and seal modes only; ``output_item.added`` /
``output_item.done`` of a reasoning item carry the rewritten item (the placeholder and the blob come
with ``done``, which is when the item is complete); every other event about a reasoning item is
withheld. ``sequence_number`` s stay consecutive when events are withheld (the adapter's
``ResponsesNumbering``, run by the engine after every filter), and the ``response`` objects of
lifecycle events (``response.created`` ... ``response.completed``) are rewritten like a whole
body, with the same blob as ``output_item.done`` gave. Nothing is held back.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.protocols.reasoning import ReasoningTreatment
from gateway.sse import StreamEvent

_ITEM_EVENTS = ("response.output_item.added", "response.output_item.done")
_SUMMARY_EVENTS = frozenset(
    {
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_part.done",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
    }
)


def _texts(parts: Any, what: str) -> int:
    if parts is None:
        return 0
    if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
        raise ValueError(f"reasoning item {what} is not a list of objects")
    return sum(len(p["text"]) for p in parts if isinstance(p.get("text"), str))


class ResponsesReasoning:
    """Rewrites reasoning items for one exchange; a streamed item is sealed once."""

    def __init__(self, treatment: ReasoningTreatment) -> None:
        self.treatment = treatment
        self._sealed: dict[str, tuple[bytes, str]] = {}
        self._counted: set[str] = set()

    def rewrite_item(self, item: dict[str, Any], *, complete: bool) -> dict[str, Any] | None:
        """The reasoning item as the client sees it (None: removed). ``complete``: final form."""
        treatment = self.treatment
        mode = treatment.mode
        summary = item.get("summary")
        summary_chars = _texts(summary, "summary")
        raw_chars = _texts(item.get("content"), "content")
        key = str(item.get("id") or "")
        if complete and key not in self._counted:
            self._counted.add(key)
            treatment.withheld("responses", raw_chars or summary_chars)
        if mode == "drop":
            return None
        out: dict[str, Any] = {name: item[name] for name in ("id", "type") if name in item}
        if mode == "redact":
            withheld = raw_chars or summary_chars
            text = treatment.placeholder(withheld)
            out["summary"] = [{"type": "summary_text", "text": text}] if complete and withheld else []
        else:
            out["summary"] = summary if isinstance(summary, list) else []
        if mode == "seal":
            out["encrypted_content"] = self._seal(item) if complete else None
        elif treatment.keep_provider_encrypted and "encrypted_content" in item:
            out["encrypted_content"] = item["encrypted_content"]
            if item["encrypted_content"] and complete:
                treatment.provider_kept()
        if "status" in item:
            out["status"] = item["status"]
        return out

    def _seal(self, item: dict[str, Any]) -> str:
        original = orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
        key = str(item.get("id") or "")
        cached = self._sealed.get(key)
        if cached is not None and cached[0] == original:
            return cached[1]
        blob = self.treatment.seal("item", item)
        self._sealed[key] = (original, blob)
        return blob

    def rewrite_body(self, body: dict[str, Any]) -> None:
        """A whole response object (a body, or the ``response`` of a lifecycle event)."""
        output = body.get("output")
        if output is None:
            return
        if not isinstance(output, list) or not all(isinstance(item, dict) for item in output):
            raise ValueError("response output is not a list of objects")
        rewritten = []
        for item in output:
            if item.get("type") == "reasoning":
                replaced = self.rewrite_item(item, complete=True)
                if replaced is not None:
                    rewritten.append(replaced)
            else:
                rewritten.append(item)
        body["output"] = rewritten

    def stream(self) -> ResponsesReasoningStream:
        return ResponsesReasoningStream(self)


class ResponsesReasoningStream:
    """Responses stream events; see the module docstring."""

    __slots__ = ("_keep_summary", "_reasoning", "_rewriter")

    def __init__(self, rewriter: ResponsesReasoning) -> None:
        self._rewriter = rewriter
        self._keep_summary = rewriter.treatment.mode in ("summary", "seal")
        self._reasoning: set[int] = set()  # upstream output indexes of reasoning items

    def on_event(self, event: StreamEvent) -> list[StreamEvent]:
        payload = event.json
        if payload is None:
            if event.data.strip() == "[DONE]":
                return [event]
            raise ValueError("a Responses stream event that is not JSON")
        return [event] if self._route(payload) else []

    def on_end(self) -> list[StreamEvent]:
        return []

    def _route(self, payload: dict[str, Any]) -> bool:
        """Rewrite ``payload`` in place; False when the event is withheld."""
        kind = payload.get("type")
        index = payload.get("output_index")
        rewriter = self._rewriter
        if kind in _ITEM_EVENTS:
            item = payload.get("item")
            if not isinstance(item, dict):
                raise ValueError(f"{kind} without an item object")
            if item.get("type") == "reasoning":
                if not isinstance(index, int):
                    raise ValueError(f"{kind} of a reasoning item without an output_index")
                self._reasoning.add(index)
                replaced = rewriter.rewrite_item(item, complete=kind == "response.output_item.done")
                if replaced is None:
                    return False
                payload["item"] = replaced
                return True
        if isinstance(index, int) and index in self._reasoning:
            return self._keep_summary and kind in _SUMMARY_EVENTS
        if isinstance(kind, str) and kind.startswith("response.reasoning"):
            return self._keep_summary and kind in _SUMMARY_EVENTS
        response = payload.get("response")
        if isinstance(response, dict):
            rewriter.rewrite_body(response)
        return True

"""Reading response bodies outside an exchange (probes of suspect models, harvested corpora).

Tools that hold a response body without the request that produced it (so without its operation)
use :func:`response_texts`: the shape says which operation's response view reads it.
"""

from __future__ import annotations

from typing import Any

from gateway.protocols.anthropic_response import MessageView
from gateway.protocols.openai_response import ChoicesView
from gateway.protocols.response_view import ResponseView
from gateway.protocols.responses_response import ResponsesBodyView


def _view_of(body: dict[str, Any]) -> ResponseView | None:
    choices = body.get("choices")
    if isinstance(choices, list):
        chat = any(isinstance(c, dict) and "message" in c for c in choices)
        return ChoicesView({"choices": [c for c in choices if isinstance(c, dict)]}, chat=chat)
    if isinstance(body.get("output"), list) and body.get("object") == "response":
        return ResponsesBodyView(body)
    if body.get("type") == "message" and isinstance(body.get("content"), list):
        return MessageView(body)
    return None


def response_texts(body: Any) -> list[str] | None:
    """The visible texts of a response body of any known operation, one per choice, part or block.

    Also a single content part or block (``{"type": "text" | "output_text", "text": ...}``) and
    the Responses SDK's ``output_text`` aggregate. None: ``body`` has none of these shapes.
    """
    if not isinstance(body, dict):
        return None
    view = _view_of(body)
    if view is not None:
        return [part.text for part in view.text_parts()]
    if body.get("type") in ("text", "output_text") and isinstance(body.get("text"), str):
        return [body["text"]]
    if isinstance(body.get("output_text"), str):
        return [body["output_text"]]
    return None

"""Chat Completions upstream shapes cut anywhere, and what a client accumulates from them."""

from __future__ import annotations

from typing import Any

from tests.policies.reasoning.support import cut
from tests.policy_harness import encode_events

STRING_FIELDS = ("reasoning_content", "reasoning")
BASE = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def chat_body(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 9, "total_tokens": 12},
    }


def _chunk(delta: dict[str, Any], finish: str | None = None) -> tuple[None, dict[str, Any]]:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return None, {**BASE, "choices": [choice]}


def chat_stream(message: dict[str, Any], points: list[int], finish: str = "stop") -> bytes:
    """The stream a server would send for ``message``, each text cut at ``points``."""
    events: list[tuple[str | None, dict[str, Any] | str]] = [_chunk({"role": "assistant", "content": ""})]
    fields = [name for name in STRING_FIELDS if isinstance(message.get(name), str)]
    details = message.get("reasoning_details") or []
    texts = [item["text"] for item in details if item.get("type") == "reasoning.text"]
    if fields or texts:
        # vLLM >= 0.11 may send the same text under both names, OpenRouter in reasoning_details too.
        for piece in cut(message[fields[0]] if fields else texts[0], points):
            delta: dict[str, Any] = dict.fromkeys(fields, piece)
            if texts:
                delta["reasoning_details"] = [{"type": "reasoning.text", "text": piece}]
            events.append(_chunk(delta))
    others = [item for item in details if item.get("type") != "reasoning.text"]
    if others:
        events.append(_chunk({"reasoning_details": others}))
    content = message.get("content") or ""
    for piece in cut(content, [p * 3 + 1 for p in points]):
        events.append(_chunk({"content": piece}))
    events.append(_chunk({}, finish))
    events.append((None, {**BASE, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 9}}))
    events.append((None, "[DONE]"))
    return encode_events(events)


def _merge_details(items: list[Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for item in items:
        kind = item.get("type")
        if kind == "reasoning.text":
            merged["text"] = merged.get("text", "") + item["text"]
        elif kind == "reasoning.summary":
            merged["summary"] = merged.get("summary", "") + item["summary"]
        else:
            merged.setdefault("other", []).append(item)
    return merged


def normalise(value: Any) -> Any:
    """Detail lists merged by type (a stream sends text items in pieces), recursively."""
    if isinstance(value, dict):
        return {
            key: _merge_details(item) if key in ("details", "reasoning_details") else normalise(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [normalise(item) for item in value]
    return value


def accumulate(events: list[Any]) -> dict[int, dict[str, Any]]:
    """Per choice: what a client concatenates from the deltas."""
    choices: dict[int, dict[str, Any]] = {}
    for event in events:
        if event.json is None:
            continue
        for choice in event.json.get("choices") or []:
            view = choices.setdefault(choice["index"], {"content": ""})
            for key, value in (choice.get("delta") or {}).items():
                if key == "reasoning_details":
                    view.setdefault(key, []).extend(value)
                elif isinstance(value, str) and key != "role":
                    view[key] = view.get(key, "") + value
            if choice.get("finish_reason"):
                view["finish_reason"] = choice["finish_reason"]
    return choices


def message_view(body: dict[str, Any]) -> dict[int, dict[str, Any]]:
    choices = {}
    for choice in body["choices"]:
        view = {key: value for key, value in choice["message"].items() if key != "role"}
        view["content"] = view.get("content") or ""
        view["finish_reason"] = choice["finish_reason"]
        choices[choice["index"]] = view
    return choices

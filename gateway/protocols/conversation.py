"""Bounded reading of a conversation's text: the last user turn, the system prompt, the user turns.

Only bounded slices of the prompt text are read (``budget`` characters each): the last user turn
(what templates live in) and the system prompt; a longer text keeps its first 70% and last 30% of
the budget, since an instruction may come before or after a long payload. Nothing here parses a
whole long conversation: the walk stops when the character budget is spent.
"""

from __future__ import annotations

from typing import Any


def text_of(value: Any, budget: int, out: list[str]) -> int:
    """Append the text in a content value (string or list of parts) to ``out``; returns budget left."""
    if budget <= 0:
        return 0
    if isinstance(value, str):
        if len(value) <= budget:
            out.append(value)
            return budget - len(value)
        # Head and tail: an instruction can sit before or after a long payload.
        head = budget * 7 // 10
        out.append(f"{value[:head]}\n{value[len(value) - (budget - head) :]}")
        return 0
    if isinstance(value, list):
        for part in value:
            if budget <= 0:
                break
            if isinstance(part, str):
                budget = text_of(part, budget, out)
            elif isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    budget = text_of(text, budget, out)
                elif "content" in part:
                    budget = text_of(part["content"], budget, out)
    return budget


def last_user_and_turns(messages: Any, budget: int) -> tuple[str, int]:
    if not isinstance(messages, list):
        return "", 0
    turns = 0
    last: Any = None
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "user":
            turns += 1
            last = message.get("content")
    out: list[str] = []
    if last is not None:
        text_of(last, budget, out)
    return " ".join(out), turns


def system_from_messages(messages: Any, budget: int) -> str:
    if not isinstance(messages, list):
        return ""
    out: list[str] = []
    for message in messages:
        if isinstance(message, dict) and message.get("role") in ("system", "developer"):
            budget = text_of(message.get("content"), budget, out)
        elif isinstance(message, dict) and message.get("role") == "user":
            break
    return " ".join(out)

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


def _tool_result_parts(content: Any) -> int:
    """How many of a content list's parts are tool results (Anthropic ``tool_result``)."""
    if not isinstance(content, list):
        return 0
    return sum(1 for part in content if isinstance(part, dict) and part.get("type") == "tool_result")


def _only_tool_results(content: Any) -> bool:
    """A user message that only hands back tool results (Anthropic): a step of an agent loop, not a person."""
    return isinstance(content, list) and bool(content) and _tool_result_parts(content) == len(content)


def last_user_and_turns(messages: Any, budget: int) -> tuple[str, int]:
    """(the last turn a person wrote, bounded; how many such turns); tool-result turns are not theirs."""
    if not isinstance(messages, list):
        return "", 0
    turns = 0
    last: Any = None
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if type(content) is not str and _only_tool_results(content):  # most turns are plain text
                continue
            turns += 1
            last = content
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


# Chat: the roles of tool outputs; Responses: the item types of tool outputs.
_TOOL_ROLES = frozenset({"tool", "function"})


def tool_results(messages: Any) -> tuple[int, int]:
    """(tool-result turns, those after the last turn a person wrote) of a message or item list.

    Chat messages with role ``tool``/``function``, Responses items whose type ends in
    ``_call_output``, Anthropic ``tool_result`` parts of user messages each count one.
    """
    if not isinstance(messages, list):
        return 0, 0
    results = depth = 0
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        kind = message.get("type")
        if role in _TOOL_ROLES or (isinstance(kind, str) and kind.endswith("_call_output")):
            count = 1
        elif role == "user":
            count = _tool_result_parts(message.get("content"))
            if not count or not _only_tool_results(message.get("content")):
                depth = 0  # a person wrote this turn: the loop starts again
        else:
            continue
        results += count
        depth += count
    return results, depth

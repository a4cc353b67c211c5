"""What the detector keeps of one request: a small, bounded observation taken in on_request.

Only bounded slices of the prompt text are kept (``max_chars``): the last user
turn (what templates live in) and the system prompt; a longer text keeps its
first 70% and last 30% of the budget, since an extraction instruction may come
before or after a long payload. Nothing here parses a
whole long conversation: the walk stops when the character budget is spent.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from gateway.plugins import Exchange

# Headers whose presence and order describe the client software; volatile ones are left out.
_VOLATILE_HEADERS = frozenset(
    {"content-length", "x-request-id", "x-forwarded-for", "x-real-ip", "forwarded", "traceparent", "cookie"}
)


@dataclass(slots=True)
class Observation:
    """One request as the detector sees it (no raw text survives analysis unless store_prompts)."""

    account: str
    tier: str
    at: float  # wall clock
    mono: float
    operation: str
    model: str
    user_text: str
    system_text: str
    turns: int  # user turns in the request (1 = single-turn)
    tools: bool
    logprobs: bool
    samples: int  # n
    max_reasoning: bool
    client_key: str  # user-agent + header shape (hash)
    ip_prefix: str
    settings: Any = None  # the DetectorConfig of the instance that saw it
    status: int = 0
    response_bytes: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    inline_seconds: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)


def _text_of(value: Any, budget: int, out: list[str]) -> int:
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
                budget = _text_of(part, budget, out)
            elif isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    budget = _text_of(text, budget, out)
                elif "content" in part:
                    budget = _text_of(part["content"], budget, out)
    return budget


def _last_user_and_turns(messages: Any, budget: int) -> tuple[str, int]:
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
        _text_of(last, budget, out)
    return " ".join(out), turns


def _system_from_messages(messages: Any, budget: int) -> str:
    if not isinstance(messages, list):
        return ""
    out: list[str] = []
    for message in messages:
        if isinstance(message, dict) and message.get("role") in ("system", "developer"):
            budget = _text_of(message.get("content"), budget, out)
        elif isinstance(message, dict) and message.get("role") == "user":
            break
    return " ".join(out)


def extract_text(operation: str, body: dict[str, Any], budget: int) -> tuple[str, str, int]:
    """(last user text, system text, user turns) of a request body, each bounded by ``budget`` chars."""
    if operation == "chat.completions":
        messages = body.get("messages")
        user, turns = _last_user_and_turns(messages, budget)
        return user, _system_from_messages(messages, budget), turns
    if operation == "messages":
        user, turns = _last_user_and_turns(body.get("messages"), budget)
        system: list[str] = []
        _text_of(body.get("system"), budget, system)
        return user, " ".join(system), turns
    if operation == "responses":
        raw = body.get("input")
        instructions: list[str] = []
        _text_of(body.get("instructions"), budget, instructions)
        if isinstance(raw, str):
            user, turns = raw[:budget], 1
        else:
            user, turns = _last_user_and_turns(raw, budget)
            if not instructions:
                instructions.append(_system_from_messages(raw, budget))
        if body.get("previous_response_id"):
            turns += 1
        return user, " ".join(instructions), turns
    prompt = body.get("prompt")
    out: list[str] = []
    _text_of(prompt, budget, out)
    return " ".join(out), "", 1


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _asks_logprobs(operation: str, body: dict[str, Any]) -> bool:
    if operation == "completions":
        return _int(body.get("logprobs")) > 0
    if body.get("logprobs") is True or _int(body.get("top_logprobs")) > 0:
        return True
    include = body.get("include")
    return isinstance(include, list) and any(isinstance(item, str) and "logprobs" in item for item in include)


def _max_reasoning(body: dict[str, Any], budget_floor: int) -> bool:
    effort = body.get("reasoning_effort")
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict):
        effort = reasoning.get("effort", effort)
    if effort in ("high", "xhigh", "max"):
        return True
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and _int(thinking.get("budget_tokens")) >= budget_floor


def client_key(headers: Any) -> str:
    """A short hash of the user agent and the order of the headers the client sent."""
    names = [name for name in headers if name not in _VOLATILE_HEADERS]
    return _shape_key(headers.get("user-agent", "") + "\n" + ",".join(names))


@lru_cache(maxsize=4096)  # a few client setups send most traffic: hash each shape once
def _shape_key(shape: str) -> str:
    return hashlib.blake2b(shape.encode("utf-8", "replace"), digest_size=8).hexdigest()


@lru_cache(maxsize=8192)
def ip_prefix(address: str, v4_bits: int, v6_bits: int) -> str:
    """The /24 (IPv4) or /48 (IPv6) network of a client address, as text; '' when not an address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    bits = v4_bits if ip.version == 4 else v6_bits
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


def observe(exchange: Exchange, settings: Any) -> Observation:
    """Take the observation of ``exchange`` (cheap: bounded text slices and a few fields)."""
    body = exchange.body
    operation = exchange.operation.name
    budget = settings.text.max_chars
    user, system, turns = extract_text(operation, body, budget)
    tools = bool(body.get("tools")) or bool(body.get("functions"))
    samples = max(1, _int(body.get("n"), 1))
    return Observation(
        account=exchange.account.id,
        tier=exchange.account.tier,
        at=time.time(),
        mono=time.monotonic(),
        operation=operation,
        model=exchange.model or "",
        user_text=user,
        system_text=system,
        turns=max(1, turns),
        tools=tools,
        logprobs=_asks_logprobs(operation, body),
        samples=samples,
        max_reasoning=_max_reasoning(body, settings.rates.max_reasoning_budget),
        client_key=client_key(exchange.headers),
        ip_prefix=ip_prefix(exchange.client_ip, settings.cluster.ipv4_prefix, settings.cluster.ipv6_prefix),
        settings=settings,
    )

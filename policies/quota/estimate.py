"""What a request will cost, read from its body before it is forwarded.

Input tokens are estimated without a tokenizer: ``ceil(weighted_bytes / 4 x
safety)`` over the text of the prompt fields, plus 4 tokens per message (role
and separators), plus a fixed cost per image, audio or file part, plus one per
token id when a legacy Completions prompt is given as ids. Four bytes per token
is what BPE tokenizers (cl100k, o200k, Claude's) average on English prose, and
code comes out a little under. Other scripts tokenize worse: a CJK character
is 3 UTF-8 bytes and often a whole token (cl100k), so bytes beyond the first
of each character count twice (``2 x utf8_bytes - characters``): a CJK
character weighs 5 bytes (1.25 tokens), a Cyrillic one 3, an emoji 7. The
safety factor (default 1.25) covers the rest. tiktoken would be exact for OpenAI's own
models only, costs a dependency and a vocabulary download, and the estimate
matters only until the upstream reports its usage: every reservation is
reconciled with the real count when the response ends. The estimate is
O(prompt size) in C-speed string operations.

Output tokens are reserved from ``max_tokens`` (the protocol adapter knows which
field), or a configured default when the request sets none, times ``n`` (and
``best_of``) for the APIs that sample several choices.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import orjson

from gateway.protocols import Operation
from gateway.protocols.base import OperationName

BYTES_PER_TOKEN = 4.0
MESSAGE_OVERHEAD_TOKENS = 4

PROMPT_FIELDS: dict[OperationName, tuple[str, ...]] = {
    "chat.completions": ("messages", "tools", "functions"),
    "completions": ("prompt", "suffix"),
    "responses": ("instructions", "input", "tools"),
    "messages": ("system", "messages", "tools"),
    "passthrough": (),
}
MESSAGE_FIELDS = frozenset({"messages", "input"})
MEDIA_PART_TYPES = frozenset(
    {"image_url", "input_image", "image", "input_audio", "audio", "file", "input_file", "document"}
)


def estimate_input_tokens(operation: OperationName, body: dict[str, Any], safety: float, media: int) -> int:
    """An upper-leaning estimate of the prompt's tokens (see the module docstring)."""
    text_bytes = 0  # weighted: see the module docstring
    token_ids = 0
    media_parts = 0
    messages = 0
    for name in PROMPT_FIELDS[operation]:
        value = body.get(name)
        if value is None:
            continue
        if name in MESSAGE_FIELDS and isinstance(value, list):
            messages += len(value)
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                if item.isascii():
                    text_bytes += len(item)
                else:
                    text_bytes += 2 * len(item.encode("utf-8", "replace")) - len(item)
            elif isinstance(item, dict):
                if item.get("type") in MEDIA_PART_TYPES:
                    media_parts += 1
                else:
                    stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, int) and not isinstance(item, bool) and name == "prompt":
                token_ids += 1
    text = math.ceil(text_bytes / BYTES_PER_TOKEN * safety)
    return text + token_ids + media_parts * media + messages * MESSAGE_OVERHEAD_TOKENS


def output_reservation(operation: Operation, body: dict[str, Any], default: int) -> tuple[int, str]:
    """Output tokens to reserve and the request field that sets them (for error messages)."""
    asked = operation.adapter.max_output_tokens(operation.name, body)
    per_choice = asked if asked is not None else default
    field = _max_tokens_field(operation.name, body)
    choices = 1
    if operation.name in ("chat.completions", "completions"):
        for key in ("n", "best_of"):
            value = body.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > choices:
                choices = value
    return per_choice * choices, field


def _max_tokens_field(operation: OperationName, body: dict[str, Any]) -> str:
    if operation == "responses":
        return "max_output_tokens"
    if operation == "chat.completions" and "max_completion_tokens" in body:
        return "max_completion_tokens"
    return "max_tokens"


def asks_for_logprobs(operation: OperationName, body: dict[str, Any]) -> bool:
    """Whether the response will carry token log-probabilities (of the output or of the prompt)."""
    if _positive_or_true(body.get("prompt_logprobs")):  # vLLM's extension
        return True
    if operation == "chat.completions":
        return body.get("logprobs") is True or _positive_or_true(body.get("top_logprobs"))
    if operation == "completions":
        value = body.get("logprobs")
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if operation == "responses":
        include = body.get("include")
        listed = isinstance(include, list) and "message.output_text.logprobs" in include
        return listed or _positive_or_true(body.get("top_logprobs"))
    return False


def _positive_or_true(value: Any) -> bool:
    return value is True or (isinstance(value, int) and not isinstance(value, bool) and value > 0)


def prompt_digest(operation: OperationName, body: dict[str, Any], key: bytes) -> str:
    """A 64-bit keyed hash of the prompt fields (canonical JSON): what "distinct prompt" means.

    64 bits keep the stored set small; collisions are negligible at the sizes
    the limit allows (about n^2 / 2^65: 3e-8 for a million prompts).
    """
    prompt = {name: body[name] for name in PROMPT_FIELDS[operation] if name in body}
    data = orjson.dumps(prompt, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(data, digest_size=8, key=key).hexdigest()

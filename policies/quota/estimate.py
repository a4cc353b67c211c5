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

import orjson

from gateway.plugins import RequestView

BYTES_PER_TOKEN = 4.0
MESSAGE_OVERHEAD_TOKENS = 4


def estimate_input_tokens(request: RequestView, safety: float, media: int) -> int:
    """An upper-leaning estimate of the prompt's tokens (see the module docstring)."""
    size = request.input_size()
    text = math.ceil(size.text_bytes / BYTES_PER_TOKEN * safety)
    return text + size.token_ids + size.media_parts * media + size.messages * MESSAGE_OVERHEAD_TOKENS


def output_reservation(request: RequestView, default: int) -> tuple[int, str]:
    """Output tokens to reserve and the request field that sets them (for error messages)."""
    per_sample = request.max_output_tokens
    return (
        per_sample if per_sample is not None else default
    ) * request.samples, request.max_output_tokens_param


def prompt_digest(request: RequestView, key: bytes) -> str:
    """A 64-bit keyed hash of the prompt fields (canonical JSON): what "distinct prompt" means.

    64 bits keep the stored set small; collisions are negligible at the sizes
    the limit allows (about n^2 / 2^65: 3e-8 for a million prompts).
    """
    data = orjson.dumps(request.prompt(), option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(data, digest_size=8, key=key).hexdigest()

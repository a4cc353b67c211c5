"""The mock's reading of request bodies: the API's logprob-parameter errors, embeddings, lenient JSON."""

from __future__ import annotations

import zlib
from typing import Any

import orjson


def logprob_params_problem(path: str, body: dict[str, Any]) -> str | None:
    """OpenAI's (and vLLM's) 400s for logprob parameters, or None."""
    top = body.get("top_logprobs")
    if top is not None:
        if not _int_between(top, 0, 20):
            return "top_logprobs: must be an integer between 0 and 20"
        if path == "/v1/chat/completions" and body.get("logprobs") is not True:
            return "top_logprobs: logprobs must be set to true if this parameter is used"
    legacy = body.get("logprobs")
    if path == "/v1/completions" and legacy is not None and not _int_between(legacy, 0, 20):
        return "logprobs: must be an integer between 0 and 20"
    prompt = body.get("prompt_logprobs")
    if prompt is not None:
        if path == "/v1/responses" or not isinstance(prompt, int) or isinstance(prompt, bool) or prompt < 0:
            return "prompt_logprobs: must be a non-negative integer (chat and completions only)"
        if body.get("stream") is True:
            return "prompt_logprobs is not supported with stream=True"
    return None


def json_or_none(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """A deterministic 8-dimensional embedding per input string (enough to prove forwarding)."""
    inputs = body.get("input")
    texts = inputs if isinstance(inputs, list) else [inputs]
    data = []
    for index, text in enumerate(texts):
        crc = zlib.crc32(str(text).encode())
        data.append(
            {"object": "embedding", "index": index, "embedding": [((crc >> k) & 255) / 255 for k in range(8)]}
        )
    usage = {"prompt_tokens": len(texts), "total_tokens": len(texts)}
    return {"object": "list", "data": data, "model": body.get("model"), "usage": usage}


def _int_between(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

"""The mock's Gemini API: model listing, ``:generateContent`` and ``:streamGenerateContent``.

Served by :class:`gateway.mock.server.MockUpstream` for paths under ``/v1beta/``; the shapes are in
:mod:`gateway.mock.gemini_shapes`. ``:streamGenerateContent`` without ``alt=sse`` answers one JSON
array of the chunks, as Gemini does (the gateway refuses that form before it gets here).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

from gateway.asgi import Send
from gateway.mock import gemini_shapes
from gateway.mock.generation import generate_memoised
from gateway.mock.replies import json_reply

GEMINI_MODELS = ["gemini-mock", "gemini-mock-flash"]
Streamer = Callable[[Iterator[gemini_shapes.Event]], Awaitable[None]]


def is_gemini_path(path: str) -> bool:
    """Gemini's model calls: ``/v1beta/...`` or ``/v1/models/{model}:verb`` (OpenAI's /v1 has no ':')."""
    return path.startswith("/v1beta/") or (path.startswith("/v1/models/") and ":" in path)


def _model_entry(model: str) -> dict[str, Any]:
    return {
        "name": f"models/{model}",
        "displayName": model,
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent"],
    }


async def models(send: Send, path: str) -> None:
    """``GET /v1beta/models`` and ``GET /v1beta/models/{model}``."""
    if path == "/v1beta/models":
        await json_reply(send, 200, {"models": [_model_entry(m) for m in GEMINI_MODELS]})
        return
    model = path.removeprefix("/v1beta/models/")
    if model in GEMINI_MODELS:
        await json_reply(send, 200, _model_entry(model))
    else:
        await json_reply(send, 404, gemini_shapes.error_body(404, f"models/{model} is not found."))


async def generate(
    path: str, query: str, body: dict[str, Any], headers: dict[str, str], send: Send, stream_to: Streamer
) -> None:
    """One generateContent call (``stream_to`` sends an event stream with the mock's faults and delays)."""
    model, _, verb = path.rpartition("/")[2].partition(":")
    if verb not in ("generateContent", "streamGenerateContent"):
        await json_reply(send, 404, gemini_shapes.error_body(404, f"unknown method {verb}"))
        return
    problem = gemini_shapes.request_problem(body)
    if problem:
        await json_reply(send, 400, gemini_shapes.error_body(400, problem))
        return
    config = body.get("generationConfig") or {}
    thinks, include_thoughts = gemini_shapes.thinking_of(body)
    logprobs = config.get("responseLogprobs") is True
    top_k = config.get("logprobs") or 0
    count = config.get("candidateCount") or 1
    source = gemini_shapes.generation_body(body)
    gens = [
        generate_memoised(
            source,
            max_tokens=config.get("maxOutputTokens"),
            with_reasoning=thinks,
            top_logprobs=top_k,  # always: avgLogprobs is on every candidate
            salt=str(i) if i else "",
        )
        for i in range(count)
    ]
    if verb == "generateContent":
        await json_reply(send, 200, gemini_shapes.response(gens, model, include_thoughts, logprobs, top_k))
        return
    per_chunk = max(1, int(headers.get("x-mock-chunk-tokens", "1")))
    chunks = gemini_shapes.stream(gens, model, include_thoughts, logprobs, top_k, per_chunk)
    if parse_qs(query).get("alt") != ["sse"]:
        await json_reply(send, 200, [data for _, data in chunks])
        return
    await stream_to(chunks)

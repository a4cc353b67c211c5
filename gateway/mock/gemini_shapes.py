"""Gemini API shapes of the mock (``generateContent``, ``streamGenerateContent?alt=sse``).

Read from the ``google-genai`` SDK's response types: ``GenerateContentResponse`` has ``candidates[]``
(``content: {role: "model", parts[]}``, ``finishReason``, ``index``, ``avgLogprobs``, ``logprobsResult:
{chosenCandidates[], topCandidates[{candidates[]}]}`` whose entries are ``{token, tokenId,
logProbability}``), ``usageMetadata`` (``promptTokenCount``, ``candidatesTokenCount``,
``thoughtsTokenCount``, ``totalTokenCount``), ``modelVersion`` and ``responseId``. A thought part is
``{"text": ..., "thought": true}``; the first part after the thoughts carries ``thoughtSignature``.

Like Gemini 2.5 models, the mock thinks unless ``thinkingConfig.thinkingBudget`` is 0, and returns
the thought text only with ``includeThoughts``. A thought signature is opaque base64 the mock can
check: a model turn sent back with a signature it did not issue (or altered) is refused with 400, as
Gemini refuses it. ``avgLogprobs`` is on every candidate, asked or not (as Gemini 2.0 models return
it); ``logprobsResult`` only with ``responseLogprobs``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from collections.abc import Iterator
from typing import Any

from gateway.mock.generation import Generation
from gateway.mock.text import tokenize
from gateway.mock.toymodel import TokenLogprob

_SECRET = b"distillguard-mock-gemini-thought"
Event = tuple[str | None, dict[str, Any] | str]

_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}
_STATUS.update({429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"})


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}}


def sign(reasoning: str) -> str:
    digest = hashlib.sha256(reasoning.encode("utf-8")).digest()[:16]
    tag = hmac.new(_SECRET, digest, hashlib.sha256).digest()[:16]
    return base64.b64encode(digest + tag).decode()


def signature_valid(signature: Any) -> bool:
    if not isinstance(signature, str):
        return False
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = hmac.new(_SECRET, raw[:16], hashlib.sha256).digest()[:16]
    return len(raw) == 32 and hmac.compare_digest(raw[16:], expected)


def generation_body(body: dict[str, Any]) -> dict[str, Any]:
    """The request as the shared generator reads it (``system`` and ``messages`` of text)."""
    messages = []
    for content in body.get("contents") or []:
        if isinstance(content, dict):
            role = "assistant" if content.get("role") == "model" else "user"
            messages.append({"role": role, "content": _text(content)})
    out: dict[str, Any] = {"messages": messages}
    system = body.get("systemInstruction")
    if isinstance(system, dict):
        out["system"] = _text(system)
    return out


def _text(content: dict[str, Any]) -> str:
    parts = content.get("parts")
    return "".join(
        p["text"]
        for p in (parts if isinstance(parts, list) else [])
        if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought")
    )


def request_problem(body: dict[str, Any]) -> str | None:
    """Gemini's 400s the mock reproduces (logprob parameters, thought signatures), or None."""
    config = body.get("generationConfig") or {}
    top = config.get("logprobs")
    if top is not None:
        if not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= 20:
            return "generationConfig.logprobs: must be an integer between 0 and 20"
        if config.get("responseLogprobs") is not True:
            return "generationConfig.logprobs is only valid when responseLogprobs is true"
    for c_index, content in enumerate(body.get("contents") or []):
        parts = content.get("parts") if isinstance(content, dict) else None
        for p_index, part in enumerate(parts if isinstance(parts, list) else []):
            if (
                isinstance(part, dict)
                and "thoughtSignature" in part
                and not signature_valid(part["thoughtSignature"])
            ):
                return f"contents[{c_index}].parts[{p_index}]: Thought signature is not valid."
    return None


def thinking_of(body: dict[str, Any]) -> tuple[bool, bool]:
    """(the model thinks, the thought text is returned)."""
    thinking = (body.get("generationConfig") or {}).get("thinkingConfig") or {}
    return thinking.get("thinkingBudget") != 0, thinking.get("includeThoughts") is True


def _entry(token: str, token_id: int, logprob: float) -> dict[str, Any]:
    return {"token": token, "tokenId": token_id, "logProbability": logprob}


def logprobs_result(steps: list[TokenLogprob], top_k: int) -> dict[str, Any]:
    return {
        "topCandidates": [{"candidates": [_entry(*alt) for alt in step.top[:top_k]]} for step in steps],
        "chosenCandidates": [_entry(step.token, step.token_id, step.logprob) for step in steps],
    }


def _average(steps: list[TokenLogprob]) -> float | None:
    return sum(s.logprob for s in steps) / len(steps) if steps else None


def _usage(gens: list[Generation], thoughts: bool) -> dict[str, Any]:
    candidates = sum(len(g.tokens) for g in gens)
    thought_tokens = sum(g.reasoning_tokens for g in gens) if thoughts else 0
    usage = {
        "promptTokenCount": gens[0].prompt_tokens,
        "candidatesTokenCount": candidates,
        "totalTokenCount": gens[0].prompt_tokens + candidates + thought_tokens,
    }
    if thought_tokens:
        usage["thoughtsTokenCount"] = thought_tokens
    return usage


def _parts(gen: Generation, include_thoughts: bool) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if gen.reasoning and include_thoughts:
        parts.append({"text": gen.reasoning, "thought": True})
    answer: dict[str, Any] = {"text": gen.text}
    if gen.reasoning:
        answer["thoughtSignature"] = sign(gen.reasoning)
    parts.append(answer)
    return parts


def response(
    gens: list[Generation], model: str, include_thoughts: bool, logprobs: bool, top_k: int
) -> dict[str, Any]:
    candidates = []
    for index, gen in enumerate(gens):
        candidate: dict[str, Any] = {
            "content": {"parts": _parts(gen, include_thoughts), "role": "model"},
            "finishReason": "STOP",
            "index": index,
        }
        average = _average(gen.logprobs)
        if average is not None:
            candidate["avgLogprobs"] = average
        if logprobs:
            candidate["logprobsResult"] = logprobs_result(gen.logprobs, top_k)
        candidates.append(candidate)
    return {
        "candidates": candidates,
        "usageMetadata": _usage(gens, any(g.reasoning for g in gens)),
        "modelVersion": model,
        "responseId": uuid.uuid4().hex[:22],
    }


def stream(
    gens: list[Generation], model: str, include_thoughts: bool, logprobs: bool, top_k: int, per_chunk: int
) -> Iterator[Event]:
    """The chunks of ``response``: thoughts, then the answer, candidate by candidate; the last chunk
    carries ``finishReason``, ``avgLogprobs`` and the full usage; no terminal event (EOF ends it)."""
    response_id = uuid.uuid4().hex[:22]
    prompt_usage = {"promptTokenCount": gens[0].prompt_tokens, "totalTokenCount": gens[0].prompt_tokens}

    def chunk(index: int, parts: list[dict[str, Any]], usage: dict[str, Any] | None, **extra: Any) -> Event:
        candidate = {"content": {"parts": parts, "role": "model"}, "index": index, **extra}
        payload = {"candidates": [candidate], "usageMetadata": usage or prompt_usage}
        return None, {**payload, "modelVersion": model, "responseId": response_id}

    for index, gen in enumerate(gens):
        if gen.reasoning and include_thoughts:
            pieces = tokenize(gen.reasoning)
            for i in range(0, len(pieces), per_chunk):
                yield chunk(index, [{"text": "".join(pieces[i : i + per_chunk]), "thought": True}], None)
        for i in range(0, max(1, len(gen.tokens)), per_chunk):
            part: dict[str, Any] = {"text": "".join(gen.tokens[i : i + per_chunk])}
            if i == 0 and gen.reasoning:
                part["thoughtSignature"] = sign(gen.reasoning)
            extra: dict[str, Any] = {}
            usage = None
            if logprobs:
                extra["logprobsResult"] = logprobs_result(gen.logprobs[i : i + per_chunk], top_k)
            last = i + per_chunk >= len(gen.tokens)
            if last:
                extra["finishReason"] = "STOP"
                average = _average(gen.logprobs)
                if average is not None:
                    extra["avgLogprobs"] = average
                if index == len(gens) - 1:
                    usage = _usage(gens, any(g.reasoning for g in gens))
            yield chunk(index, [part], usage, **extra)

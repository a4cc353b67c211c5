"""OpenAI-compatible response shapes of the mock: chat, legacy completions, Responses; whole and streamed.

Chat reasoning comes in the format the ``x-mock-reasoning`` header names:
``reasoning_content`` (DeepSeek, llama.cpp, older vLLM; the default),
``reasoning`` (vLLM >= 0.11, OpenRouter), ``think`` (inline ``<think>`` in
content), ``think-open`` (the stream starts inside an unclosed think block, as
with templates that pre-fill ``<think>``) or ``none``.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

from gateway.mock.generation import Generation, token_bytes
from gateway.mock.text import tokenize
from gateway.mock.toymodel import TokenLogprob

Event = tuple[str | None, dict[str, Any] | str]  # (SSE event name, data)


def _chat_logprob(step: TokenLogprob) -> dict[str, Any]:
    return {
        "token": step.token,
        "bytes": token_bytes(step.token),
        "logprob": step.logprob,
        "top_logprobs": [{"token": t, "bytes": token_bytes(t), "logprob": lp} for t, _, lp in step.top],
    }


def _usage(gen: Generation, reasoning: bool) -> dict[str, Any]:
    completion = gen.completion_tokens if reasoning else len(gen.tokens)
    return {
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": gen.prompt_tokens + completion,
        "completion_tokens_details": {"reasoning_tokens": gen.reasoning_tokens if reasoning else 0},
    }


def chat_completion(gen: Generation, model: str, fmt: str, n: int, gens: list[Generation]) -> dict[str, Any]:
    choices = []
    for index, g in enumerate(gens):
        message: dict[str, Any] = {"role": "assistant", "content": g.text}
        if g.reasoning:
            if fmt in ("reasoning_content", "reasoning"):
                message[fmt] = g.reasoning
            elif fmt == "think":
                message["content"] = f"<think>{g.reasoning}</think>\n\n{g.text}"
            elif fmt == "think-open":
                message["content"] = f"{g.reasoning}</think>\n\n{g.text}"
        choices.append(
            {
                "index": index,
                "message": message,
                "logprobs": {"content": [_chat_logprob(s) for s in g.logprobs]} if g.logprobs else None,
                "finish_reason": "stop",
            }
        )
    usage = _usage(gen, bool(gen.reasoning))
    usage["completion_tokens"] *= n
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    body = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": usage,
        "system_fingerprint": "fp_mock",
    }
    if gen.prompt_logprobs is not None:
        body["prompt_logprobs"] = gen.prompt_logprobs  # vLLM: top level for chat
    return body


def chat_stream(
    gen: Generation, model: str, fmt: str, include_usage: bool, per_chunk: int
) -> Iterator[Event]:
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_mock",
    }

    def chunk(
        delta: dict[str, Any], logprobs: list[TokenLogprob] | None = None, finish: str | None = None
    ) -> Event:
        choice = {
            "index": 0,
            "delta": delta,
            "logprobs": {"content": [_chat_logprob(s) for s in logprobs]} if logprobs else None,
            "finish_reason": finish,
        }
        return None, {**base, "choices": [choice]}

    yield chunk({"role": "assistant", "content": ""})
    reasoning_tokens = tokenize(gen.reasoning) if gen.reasoning else []
    if reasoning_tokens:
        if fmt in ("reasoning_content", "reasoning"):
            for i in range(0, len(reasoning_tokens), per_chunk):
                yield chunk({fmt: "".join(reasoning_tokens[i : i + per_chunk])})
        elif fmt in ("think", "think-open"):
            pieces = (["<think>"] if fmt == "think" else []) + reasoning_tokens + ["</think>", "\n\n"]
            for i in range(0, len(pieces), per_chunk):
                yield chunk({"content": "".join(pieces[i : i + per_chunk])})
    for i in range(0, len(gen.tokens), per_chunk):
        steps = gen.logprobs[i : i + per_chunk] if gen.logprobs else None
        yield chunk({"content": "".join(gen.tokens[i : i + per_chunk])}, steps)
    yield chunk({}, finish="stop")
    if include_usage:
        yield None, {**base, "choices": [], "usage": _usage(gen, bool(gen.reasoning))}
    yield None, "[DONE]"


def _completion_logprobs(gen: Generation, offset: int = 0) -> dict[str, Any]:
    tokens, token_logprobs, top, offsets = [], [], [], []
    position = offset
    for step in gen.logprobs:
        tokens.append(step.token)
        token_logprobs.append(step.logprob)
        alternatives = {t: lp for t, _, lp in step.top}
        alternatives.setdefault(step.token, step.logprob)  # "up to logprobs+1 elements"
        top.append(alternatives)
        offsets.append(position)
        position += len(step.token)
    return {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": top, "text_offset": offsets}


def completion(gen: Generation, model: str, echo: bool, prompt: str) -> dict[str, Any]:
    text = (prompt if echo else "") + gen.text
    logprobs = None
    if gen.logprobs:
        logprobs = _completion_logprobs(gen, len(prompt) if echo else 0)
        if echo:
            prompt_tokens = tokenize(prompt)
            logprobs["tokens"] = prompt_tokens + logprobs["tokens"]
            logprobs["token_logprobs"] = (
                [None] + [-1.0] * (len(prompt_tokens) - 1) + logprobs["token_logprobs"]
            )
            logprobs["top_logprobs"] = [None] * len(prompt_tokens) + logprobs["top_logprobs"]
            starts, pos = [], 0
            for token in prompt_tokens:
                starts.append(pos)
                pos += len(token)
            logprobs["text_offset"] = starts + logprobs["text_offset"]
    choice: dict[str, Any] = {"index": 0, "text": text, "logprobs": logprobs, "finish_reason": "stop"}
    if gen.prompt_logprobs is not None:
        choice["prompt_logprobs"] = gen.prompt_logprobs  # vLLM: per choice for completions
    return {
        "id": f"cmpl-{uuid.uuid4().hex[:24]}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": _usage(gen, False),
    }


def completion_stream(gen: Generation, model: str, include_usage: bool, per_chunk: int) -> Iterator[Event]:
    base = {
        "id": f"cmpl-{uuid.uuid4().hex[:24]}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
    }
    for i in range(0, len(gen.tokens), per_chunk):
        part = Generation(
            gen.prompt, gen.tokens[i : i + per_chunk], "", "", 0, gen.logprobs[i : i + per_chunk]
        )
        logprobs = _completion_logprobs(part) if part.logprobs else None
        yield (
            None,
            {
                **base,
                "choices": [{"index": 0, "text": part.text, "logprobs": logprobs, "finish_reason": None}],
            },
        )
    yield None, {**base, "choices": [{"index": 0, "text": "", "logprobs": None, "finish_reason": "stop"}]}
    if include_usage:
        yield None, {**base, "choices": [], "usage": _usage(gen, False)}
    yield None, "[DONE]"


def _response_logprobs(steps: list[TokenLogprob]) -> list[dict[str, Any]]:
    return [
        {
            "token": s.token,
            "bytes": token_bytes(s.token),
            "logprob": s.logprob,
            "top_logprobs": [{"token": t, "bytes": token_bytes(t), "logprob": lp} for t, _, lp in s.top],
        }
        for s in steps
    ]


def _response_usage(gen: Generation) -> dict[str, Any]:
    return {
        "input_tokens": gen.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": gen.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": gen.reasoning_tokens},
        "total_tokens": gen.prompt_tokens + gen.completion_tokens,
    }


def response_object(
    gen: Generation, model: str, encrypted: bool, status: str = "completed"
) -> dict[str, Any]:
    output: list[dict[str, Any]] = []
    if gen.reasoning:
        output.append(reasoning_item(gen, encrypted))
    output.append(message_item(gen))
    return {
        "id": f"resp_{uuid.uuid4().hex[:24]}",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "usage": _response_usage(gen),
    }


def reasoning_item(gen: Generation, encrypted: bool) -> dict[str, Any]:
    return {
        "id": "rs_mock0001",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": gen.summary}],
        "content": [{"type": "reasoning_text", "text": gen.reasoning}],
        # Opaque, as OpenAI's encryption is: no reasoning text can be read from it.
        "encrypted_content": (
            "gAAAAAB" + hashlib.sha256(b"enc:" + gen.reasoning.encode()).hexdigest() if encrypted else None
        ),
        "status": "completed",
    }


def message_item(gen: Generation) -> dict[str, Any]:
    return {
        "id": "msg_mock0001",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [
            {
                "type": "output_text",
                "text": gen.text,
                "annotations": [],
                "logprobs": _response_logprobs(gen.logprobs),
            }
        ],
    }


def response_stream(gen: Generation, model: str, encrypted: bool, per_chunk: int) -> Iterator[Event]:
    seq = 0

    def ev(kind: str, **fields: Any) -> Event:
        nonlocal seq
        seq += 1
        return kind, {"type": kind, "sequence_number": seq - 1, **fields}

    final = response_object(gen, model, encrypted)
    start = {**final, "status": "in_progress", "output": [], "usage": None}
    yield ev("response.created", response=start)
    yield ev("response.in_progress", response=start)
    index = 0
    if gen.reasoning:
        item = reasoning_item(gen, encrypted)
        rid = item["id"]
        yield ev(
            "response.output_item.added",
            output_index=0,
            item={**item, "summary": [], "content": [], "encrypted_content": None, "status": "in_progress"},
        )
        yield ev(
            "response.reasoning_summary_part.added",
            item_id=rid,
            output_index=0,
            summary_index=0,
            part={"type": "summary_text", "text": ""},
        )
        summary_tokens = tokenize(gen.summary)
        for i in range(0, len(summary_tokens), per_chunk):
            yield ev(
                "response.reasoning_summary_text.delta",
                item_id=rid,
                output_index=0,
                summary_index=0,
                delta="".join(summary_tokens[i : i + per_chunk]),
            )
        yield ev(
            "response.reasoning_summary_text.done",
            item_id=rid,
            output_index=0,
            summary_index=0,
            text=gen.summary,
        )
        yield ev(
            "response.reasoning_summary_part.done",
            item_id=rid,
            output_index=0,
            summary_index=0,
            part={"type": "summary_text", "text": gen.summary},
        )
        reasoning_tokens = tokenize(gen.reasoning)
        for i in range(0, len(reasoning_tokens), per_chunk):
            yield ev(
                "response.reasoning_text.delta",
                item_id=rid,
                output_index=0,
                content_index=0,
                delta="".join(reasoning_tokens[i : i + per_chunk]),
            )
        yield ev(
            "response.reasoning_text.done", item_id=rid, output_index=0, content_index=0, text=gen.reasoning
        )
        yield ev("response.output_item.done", output_index=0, item=item)
        index = 1
    msg = message_item(gen)
    mid = msg["id"]
    yield ev(
        "response.output_item.added", output_index=index, item={**msg, "content": [], "status": "in_progress"}
    )
    yield ev(
        "response.content_part.added",
        item_id=mid,
        output_index=index,
        content_index=0,
        part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
    )
    for i in range(0, len(gen.tokens), per_chunk):
        steps = gen.logprobs[i : i + per_chunk]
        yield ev(
            "response.output_text.delta",
            item_id=mid,
            output_index=index,
            content_index=0,
            delta="".join(gen.tokens[i : i + per_chunk]),
            logprobs=_response_logprobs(steps),
        )
    yield ev(
        "response.output_text.done",
        item_id=mid,
        output_index=index,
        content_index=0,
        text=gen.text,
        logprobs=_response_logprobs(gen.logprobs),
    )
    yield ev(
        "response.content_part.done", item_id=mid, output_index=index, content_index=0, part=msg["content"][0]
    )
    yield ev("response.output_item.done", output_index=index, item=msg)
    yield ev("response.completed", response=final)
